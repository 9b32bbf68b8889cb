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
#include "common/clock.h"
#include "core/backup_feed.h"

namespace rhythm {

class AgentReport {
  public:
    static constexpr std::uint64_t kReportEveryMs = 100;
    static constexpr std::uint64_t kLagWindowMs = 10000;

    // The agent's view of a node besides the window's figures.
    struct NodeView {
        const std::string *endpoint;  // as configured
        const std::string *name;      // as it names itself
        MonotonicTime last_answer;    // 0: never answered
    };

    explicit AgentReport(BackupFeed &feed) : feed_(feed) {}

    // The next write() writes, whenever it comes.
    void soon() { last_written_ = MonotonicTime(); }

    // Writes the figures if they are due at `now`. `wall` is the same moment on the wall clock,
    // which server-status compares the answers' times with.
    void write(MonotonicTime now, WallTime wall, const ReplicationWindow &window,
               const std::vector<NodeView> &nodes);

    // One node's row.
    static NodeReport row(const NodeView &node, const ReplicationWindow::NodeFigures &figures,
                          bool up, MonotonicTime now, WallTime wall);

  private:
    BackupFeed &feed_;
    MonotonicTime last_written_;
    MonotonicTime last_lag_rotation_;
};

}  // namespace rhythm
