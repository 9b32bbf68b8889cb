// Shard ownership from membership, by rendezvous hashing.
#include "rss_node/shard_ownership.h"

#include <algorithm>

#include "wire/rendezvous.h"

namespace rhythm::node {

wire::ShardSet owned_shards(const std::string &self, const std::vector<std::string> &members,
                            std::size_t replicas) {
    wire::ShardSet owned;
    for (std::uint32_t shard = 0; shard < wire::kShardCount; ++shard) {
        if (wire::owns_shard(shard, self, members, replicas)) {
            owned.add(shard);
        }
    }
    return owned;
}

OwnershipChange ownership_change(const wire::ShardSet &before, const wire::ShardSet &after) {
    OwnershipChange change;
    for (std::uint32_t shard = 0; shard < wire::kShardCount; ++shard) {
        if (after.contains(shard) && !before.contains(shard)) {
            change.gained.add(shard);
        } else if (before.contains(shard) && !after.contains(shard)) {
            change.lost.add(shard);
        }
    }
    return change;
}

std::map<std::string, wire::ShardSet> snapshot_sources(const wire::ShardSet &gained,
                                                       const std::string &self,
                                                       const std::vector<std::string> &previous,
                                                       const std::vector<std::string> &live,
                                                       std::size_t replicas) {
    std::map<std::string, wire::ShardSet> sources;
    for (std::uint32_t shard = 0; shard < wire::kShardCount; ++shard) {
        if (!gained.contains(shard)) {
            continue;
        }
        for (const auto &owner : wire::shard_owners(shard, previous, replicas)) {
            if (owner != self && std::find(live.begin(), live.end(), owner) != live.end()) {
                sources[owner].add(shard);
                break;
            }
        }
    }
    return sources;
}

std::string shard_ranges(const wire::ShardSet &shards) {
    std::string text;
    std::uint32_t shard = 0;
    while (shard < wire::kShardCount) {
        if (!shards.contains(shard)) {
            ++shard;
            continue;
        }
        std::uint32_t last = shard;
        while (last + 1 < wire::kShardCount && shards.contains(last + 1)) {
            ++last;
        }
        if (!text.empty()) {
            text += ',';
        }
        text += std::to_string(shard);
        if (last > shard) {
            text += '-' + std::to_string(last);
        }
        shard = last + 1;
    }
    return text;
}

}  // namespace rhythm::node
