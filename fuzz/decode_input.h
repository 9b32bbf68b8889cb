// The decoder fuzz target's body, shared by the libFuzzer executable and the regression unit
// test: bytes become a list of frames, which go through decode_published or decode_message. A
// frame that decodes must encode back to exactly the same bytes (the encoding is canonical), or
// the target aborts.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rhythm::wire {

// Input layout: byte 0 picks the decoder (even: published, odd: message); then frames, each a
// 2-byte big-endian length and that many bytes (a short last frame takes what is left).
// Returns true when the frames decoded.
bool fuzz_decode_input(const std::uint8_t *data, std::size_t size);

}  // namespace rhythm::wire
