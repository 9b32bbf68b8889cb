// What the backup agent writes into the segment for server-status, every kReportEveryMs (or at
// the next turn when a reader must see a change at once: a node up, down or full): how many
// nodes answer, one row per node (its state, what it lacks and since when, what it refused), the
// oldest change in flight, and the turn of the lag window. The figures come from the replication
// window and from when each node last answered.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backup/replication_window.h"
#include "core/backup_feed.h"

namespace rhythm {

class AgentReport {
  public:
    static constexpr std::uint64_t kReportEveryMs = 100;
    static constexpr std::uint64_t kLagWindowMs = 10000;

    // The agent's view of a node besides the window's figures.
    struct NodeView {
        const std::string *endpoint;   // as configured
        const std::string *name;       // as it names itself
        std::uint64_t last_answer_ms;  // monotonic; 0: never answered
    };

    explicit AgentReport(BackupFeed &feed) : feed_(feed) {}

    // The next write() writes, whenever it comes.
    void soon() { last_ms_ = 0; }

    // Writes the figures if they are due. `now_ms` is the agent's monotonic clock, `wall_us` the
    // wall clock, which server-status compares the answers' times with.
    void write(std::uint64_t now_ms, std::int64_t wall_us, const ReplicationWindow &window,
               const std::vector<NodeView> &nodes);

    // One node's row.
    static NodeReport row(const NodeView &node, const ReplicationWindow::NodeFigures &figures,
                          bool up, std::uint64_t now_ms, std::int64_t wall_us);

  private:
    BackupFeed &feed_;
    std::uint64_t last_ms_ = 0;
    std::uint64_t last_lag_rotation_ms_ = 0;
};

}  // namespace rhythm
