// Which nodes own a shard: rendezvous (highest random weight) hashing of (shard, node name) over
// the bank's members. Every party computes the same answer from the same member list, and when a
// member leaves only its shards move, to the next-highest members.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rhythm::wire {

// The score of `node_name` for `shard`: FNV-1a 64 of the name, seeded by the shard, then mixed.
std::uint64_t rendezvous_score(std::uint32_t shard, const std::string &node_name);

// The `replicas` highest-scoring members for `shard`, best first (all of them when fewer).
// Ties, which need equal names, break by name.
std::vector<std::string> shard_owners(std::uint32_t shard, const std::vector<std::string> &members,
                                      std::size_t replicas);

// True when `node_name` is among the owners of `shard`.
bool owns_shard(std::uint32_t shard, const std::string &node_name,
                const std::vector<std::string> &members, std::size_t replicas);

}  // namespace rhythm::wire
