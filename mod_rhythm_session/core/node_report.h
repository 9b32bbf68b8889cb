// The backup agent's view of one rss_node, kept in the segment for server-status. A plain struct
// of fixed size: it lives in shared memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rhythm {

// The first kReportedNodes nodes of SessionBackupNode, in order, are reported.
constexpr std::size_t kReportedNodes = 16;

// kFull: up, but it has refused changes for lack of memory and has had no room since.
enum class NodeState : std::uint8_t { kUnknown = 0, kUp = 1, kDown = 2, kFull = 3 };

struct NodeReport {
    char endpoint[128];            // its query endpoint as configured, cut to fit
    char name[64];                 // as the node names itself; empty until it answers
    NodeState state;               // unknown until it first answers
    std::int64_t last_answer_us;   // wall clock of its last heartbeat answer, 0: never
    std::uint64_t unacknowledged;  // changes published in this epoch it has not acknowledged
    std::int64_t oldest_unacknowledged_us;  // wall clock: save time of the oldest of those, 0: none
    std::uint64_t refused;                  // changes it refused for lack of memory in this epoch
};

}  // namespace rhythm
