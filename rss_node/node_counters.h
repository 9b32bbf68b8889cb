// The counters a node keeps and reports in its status JSON. Plain integers: the node is one
// thread, and readers get them through a status request.
#pragma once

#include <cstdint>

namespace rhythm::node {

struct NodeCounters {
    std::uint64_t updates_applied = 0;
    std::uint64_t updates_duplicate = 0;
    std::uint64_t refused_stale = 0;   // an older version than the one held
    std::uint64_t refused_memory = 0;  // a new session, or a larger version, past --max-memory
    std::uint64_t conflicts = 0;       // the same version of a session from two servers
    std::uint64_t expired_on_arrival = 0;
    std::uint64_t sessions_expired = 0;  // freed by the sweep
    std::uint64_t malformed_frames = 0;  // messages dropped because they did not decode
    std::uint64_t version_mismatches = 0;
    std::uint64_t fetches = 0;
    std::uint64_t fetch_hits = 0;
    std::uint64_t heartbeats = 0;
    std::uint64_t snapshots_served = 0;
    std::uint64_t snapshots_requested = 0;       // fills of gained shards asked of peers
    std::uint64_t snapshot_records_applied = 0;  // records from those fills that were stored
    std::uint64_t ownership_changes = 0;
    std::uint64_t replies_dropped = 0;  // the requester's queue was full or it was gone

    std::uint64_t updates_refused() const { return refused_stale + refused_memory; }
};

}  // namespace rhythm::node
