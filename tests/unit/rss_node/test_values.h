// Values the node's unit tests share: a wall-clock "now" for session expiry, a series of distinct
// session keys spread over the shards, shard sets written as lists, and peers.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "rss_node/membership.h"
#include "wire/messages.h"
#include "wire/session_key.h"

namespace rhythm::node::test {

constexpr std::uint64_t kNow = 1800000000000ULL;
constexpr std::uint64_t kHour = 3600 * 1000;

// The nth key of the series.
inline wire::SessionKey key_of(std::uint64_t n) {
    wire::SessionKey k;
    for (int i = 0; i < 8; ++i) {
        k.bytes[i] = static_cast<std::uint8_t>(n >> (8 * i));
        k.bytes[8 + i] = static_cast<std::uint8_t>((n * 0x9e3779b97f4a7c15ULL) >> (8 * i));
    }
    return k;
}

// The first key of the series from the `*n`th on that falls in `shard`; `*n` moves past it.
inline wire::SessionKey next_key_in(std::uint32_t shard, std::uint64_t *n) {
    for (;; ++*n) {
        wire::SessionKey key = key_of(*n);
        if (wire::shard_of(key) == shard) {
            ++*n;
            return key;
        }
    }
}

inline wire::ShardSet shards(std::initializer_list<std::uint32_t> list) {
    wire::ShardSet set;
    for (std::uint32_t s : list) {
        set.add(s);
    }
    return set;
}

// A peer of the membership, by name (its endpoint made up from it), in `state`.
inline Membership::Peer peer(const char *name, PeerState state) {
    Membership::Peer p;
    p.endpoint = std::string("tcp://") + name;
    p.name = name;
    p.state = state;
    return p;
}

}  // namespace rhythm::node::test
