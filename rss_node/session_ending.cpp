#include "rss_node/session_ending.h"

#include <vector>

#include "wire/protocol.h"
#include "wire/session_key.h"

namespace rhythm::node {
namespace {

constexpr char kOperatorOrigin[] = "operator";

// Stores the tombstone that ends `key`; false when the store refused it (full).
bool end_one(const wire::SessionKey &key, std::uint64_t now_wall_ms,
             std::uint64_t unheld_lifetime_ms, SessionStore *store, std::uint64_t *version) {
    wire::SessionRecord held;
    bool holds = store->find(key, now_wall_ms, &held);
    wire::SessionRecord tombstone;
    tombstone.key = key;
    // The top of the next term: a server that continues an older copy (a failover: the next
    // term, from its first version) makes a lower version whatever its name, since of equal
    // versions the higher name wins.
    tombstone.version =
        wire::last_version_of_term((holds ? wire::version_term(held.version) : 0) + 1);
    tombstone.expires_at_ms = holds ? held.expires_at_ms : now_wall_ms + unheld_lifetime_ms;
    tombstone.tombstone = true;
    tombstone.origin = kOperatorOrigin;
    *version = tombstone.version;
    return store->apply(tombstone, now_wall_ms).result == ApplyResult::kApplied;
}

}  // namespace

bool EndSessionRate::admit(wire::EndScope scope, std::uint64_t now_mono_ms) {
    if (scope == wire::EndScope::kAll) {
        if (all_seen_ && now_mono_ms - last_all_ms_ < kAllIntervalMs) {
            return false;
        }
        all_seen_ = true;
        last_all_ms_ = now_mono_ms;
        return true;
    }
    if (now_mono_ms - second_start_ms_ >= 1000) {
        second_start_ms_ = now_mono_ms;
        ones_this_second_ = 0;
    }
    return ++ones_this_second_ <= kOnePerSecond;
}

bool parse_end_session_target(std::string_view text, wire::EndSession *request) {
    request->scope = wire::EndScope::kOne;
    return wire::parse_session_key(text.substr(0, text.find('.')), &request->key);
}

EndedSessions end_sessions(const wire::EndSession &request, const wire::ShardSet &owned,
                           std::uint64_t now_wall_ms, std::uint64_t unheld_lifetime_ms,
                           SessionStore *store) {
    EndedSessions ended;
    if (request.scope == wire::EndScope::kOne) {
        if (!owned.contains(wire::shard_of(request.key))) {
            return ended;
        }
        bool stored = end_one(request.key, now_wall_ms, unheld_lifetime_ms, store, &ended.version);
        ended.outcome =
            stored ? wire::EndSessionOutcome::kEnded : wire::EndSessionOutcome::kRefused;
        ended.count = stored ? 1 : 0;
        return ended;
    }
    bool owns_any = false;
    bool refused = false;
    std::vector<wire::SessionKey> live;
    for (std::uint32_t shard = 0; shard < wire::kShardCount; ++shard) {
        if (!owned.contains(shard)) {
            continue;
        }
        owns_any = true;
        live.clear();
        store->for_each_in_shard(shard, now_wall_ms, [&](const wire::SessionRecord &record) {
            if (!record.tombstone) {
                live.push_back(record.key);
            }
        });
        for (const wire::SessionKey &key : live) {
            std::uint64_t version;
            if (end_one(key, now_wall_ms, unheld_lifetime_ms, store, &version)) {
                ++ended.count;
            } else {
                refused = true;
            }
        }
    }
    if (owns_any) {
        ended.outcome =
            refused ? wire::EndSessionOutcome::kRefused : wire::EndSessionOutcome::kEnded;
    }
    return ended;
}

}  // namespace rhythm::node
