// The counters a node keeps and reports in its status JSON, written once: the table below makes
// both the NodeCounters fields and the list the status writer walks (node_status.cpp). Plain
// integers: the node is one thread, and readers get them through a status request.
//
// The status JSON mixes the counters with other fields (docs/rss_node.md, Status fields), so each
// counter belongs to a group, the run of counters between two of those fields; the table is in
// the order of the JSON. `updates_refused` is not a counter of its own: it is derived.
#pragma once

#include <cstdint>

namespace rhythm::node {

// Where a counter's run of fields goes in the status JSON: after the field named.
enum class CounterGroup {
    kAfterOwnershipDecided,  // ... up to `replicas`
    kAfterReplicas,          // ... up to `updates_refused`
    kAfterUpdatesRefused,    // ... up to `agents`
    kAfterAgents,            // ... up to `curve`
};

// X(group, name): every counter, in the order of the status JSON; docs/rss_node.md says what each
// counts. Among them: `refused_memory`, new sessions and larger versions refused past --max-memory;
// `refused_implausible`, records with an expiry or a version no web server makes
// (SessionStore::apply); `conflicts`, the same version of a session made by two servers;
// `malformed_frames`, messages dropped because they did not decode; `snapshots_requested`, fills of
// gained or offered shards asked of peers; `catch_up_offers_sent` and `_received`, offers of the
// shards a peer missed while counted down (catch_up.h); `replies_dropped`, answers to a requester
// whose queue was full or that was gone; `connections_refused`, connections over --max-connections
// or --max-connections-per-address, hung up at once; `connections_dropped`, connections hung up for
// holding an unfinished message (connection_guard.h); `connections_silent`, connections hung up on
// because nothing came from them for 4 s; `sessions_ended`, sessions an operator ended
// here (rss_node end-session); `end_sessions_refused`, end-session requests past EndSessionRate,
// answered busy; `handovers_asked`, fetches of a session another server made that its agent was
// asked for its copy first (handover_waits.h), `handovers_newer`, those it answered with a newer
// copy, `handovers_unanswered`, those it did not answer in time (the fetches left unanswered),
// `handovers_given_up`, fetches answered without asking a server that left that version of the
// session unanswered for 1.5 s (handover_outcomes.h), `handovers_skipped`, fetches answered
// without asking because too many waited, and `handovers_held_for_restart`, fetches left
// unanswered because the server to ask restarts and its next agent has not reached this node.
#define RSS_NODE_COUNTERS(X)                            \
    X(kAfterOwnershipDecided, ownership_changes)        \
    X(kAfterOwnershipDecided, snapshots_requested)      \
    X(kAfterOwnershipDecided, snapshot_records_applied) \
    X(kAfterOwnershipDecided, catch_up_offers_sent)     \
    X(kAfterOwnershipDecided, catch_up_offers_received) \
    X(kAfterReplicas, updates_applied)                  \
    X(kAfterUpdatesRefused, refused_stale)              \
    X(kAfterUpdatesRefused, refused_memory)             \
    X(kAfterUpdatesRefused, refused_implausible)        \
    X(kAfterUpdatesRefused, conflicts)                  \
    X(kAfterUpdatesRefused, updates_duplicate)          \
    X(kAfterUpdatesRefused, expired_on_arrival)         \
    X(kAfterUpdatesRefused, sessions_expired)           \
    X(kAfterUpdatesRefused, malformed_frames)           \
    X(kAfterUpdatesRefused, version_mismatches)         \
    X(kAfterUpdatesRefused, fetches)                    \
    X(kAfterUpdatesRefused, fetch_hits)                 \
    X(kAfterUpdatesRefused, handovers_asked)            \
    X(kAfterUpdatesRefused, handovers_newer)            \
    X(kAfterUpdatesRefused, handovers_unanswered)       \
    X(kAfterUpdatesRefused, handovers_given_up)         \
    X(kAfterUpdatesRefused, handovers_skipped)          \
    X(kAfterUpdatesRefused, handovers_held_for_restart) \
    X(kAfterUpdatesRefused, sessions_ended)             \
    X(kAfterUpdatesRefused, end_sessions_refused)       \
    X(kAfterUpdatesRefused, heartbeats)                 \
    X(kAfterAgents, snapshots_served)                   \
    X(kAfterAgents, replies_dropped)                    \
    X(kAfterAgents, connections_refused)                \
    X(kAfterAgents, connections_dropped)                \
    X(kAfterAgents, connections_silent)

struct NodeCounters {
#define RSS_NODE_COUNTER_FIELD(group, name) std::uint64_t name = 0;
    RSS_NODE_COUNTERS(RSS_NODE_COUNTER_FIELD)
#undef RSS_NODE_COUNTER_FIELD

    std::uint64_t updates_refused() const {
        return refused_stale + refused_memory + refused_implausible;
    }
};

// One row of the table: a counter's group, its name in the status JSON, and its field.
struct CounterField {
    CounterGroup group;
    const char *name;
    std::uint64_t NodeCounters::*member;
};

inline constexpr CounterField kCounterFields[] = {
#define RSS_NODE_COUNTER_ROW(group, name) {CounterGroup::group, #name, &NodeCounters::name},
    RSS_NODE_COUNTERS(RSS_NODE_COUNTER_ROW)
#undef RSS_NODE_COUNTER_ROW
};

}  // namespace rhythm::node
