// What a membership means for this node's shards: the shards it owns (rendezvous hashing over the
// live members, `replicas` owners each), what it gains and loses when the membership changes,
// and which live peer to fill each gained shard from.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "wire/messages.h"

namespace rhythm::node {

// The shards `self` owns among `members` (which include it).
wire::ShardSet owned_shards(const std::string &self, const std::vector<std::string> &members,
                            std::size_t replicas);

struct OwnershipChange {
    wire::ShardSet gained;
    wire::ShardSet lost;
};

OwnershipChange ownership_change(const wire::ShardSet &before, const wire::ShardSet &after);

// For each shard of `gained`, the peer to ask for a snapshot of it: the best-scoring owner it had
// among `previous` members that is still among `live` and is not `self`. A shard whose previous
// owners are all gone has no source (the agents re-send it). Keyed by peer name.
std::map<std::string, wire::ShardSet> snapshot_sources(const wire::ShardSet &gained,
                                                       const std::string &self,
                                                       const std::vector<std::string> &previous,
                                                       const std::vector<std::string> &live,
                                                       std::size_t replicas);

// A shard set in a compact text form: ranges and single shards, "0-3,7,9-12" ("" when empty).
std::string shard_ranges(const wire::ShardSet &shards);

}  // namespace rhythm::node
