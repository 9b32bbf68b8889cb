// The operator-command fuzz target's body (`rss_node end-session`), shared by the libFuzzer
// executable and the regression unit test: the session argument the command parses, and the
// end-session request a node decodes and applies to a store that holds a few sessions. Aborts
// when a guarantee breaks: an ID that parses formats back to the text given; a node ends only
// sessions of shards it owns, leaves each one it ended a tombstone above every version a web
// server could still save, and never ends a shard it does not own.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rhythm::node {

// Input layout: byte 0 even: the rest is the command's session argument. Odd: byte 1 picks the
// owned shards (bit i: shards congruent to i mod 8), the rest is one frame pair as in
// fuzz/decode_input.h (2-byte big-endian length, bytes; twice). Returns true when the input
// reached the store (an end-session request that decoded).
bool fuzz_end_session_input(const std::uint8_t *data, std::size_t size);

}  // namespace rhythm::node
