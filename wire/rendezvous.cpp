// Rendezvous hashing of shards over member names.
#include "wire/rendezvous.h"

#include <algorithm>

#include "wire/session_key.h"

namespace rhythm::wire {
namespace {}  // namespace

std::uint64_t rendezvous_score(std::uint32_t shard, const std::string &node_name) {
    // mix64: FNV-1a alone spreads short names poorly over the high bits.
    return mix64(fnv1a64(node_name.data(), node_name.size(), kFnvOffsetBasis ^ mix64(shard + 1)));
}

std::vector<std::string> shard_owners(std::uint32_t shard, const std::vector<std::string> &members,
                                      std::size_t replicas) {
    std::vector<std::pair<std::uint64_t, const std::string *>> scored;
    scored.reserve(members.size());
    for (const auto &m : members) {
        scored.emplace_back(rendezvous_score(shard, m), &m);
    }
    std::sort(scored.begin(), scored.end(), [](const auto &a, const auto &b) {
        return a.first != b.first ? a.first > b.first : *a.second < *b.second;
    });
    std::vector<std::string> owners;
    for (std::size_t i = 0; i < scored.size() && i < replicas; ++i) {
        owners.push_back(*scored[i].second);
    }
    return owners;
}

bool owns_shard(std::uint32_t shard, const std::string &node_name,
                const std::vector<std::string> &members, std::size_t replicas) {
    auto owners = shard_owners(shard, members, replicas);
    return std::find(owners.begin(), owners.end(), node_name) != owners.end();
}

}  // namespace rhythm::wire
