// The figures the agent writes for server-status (see agent_report.h).
#include "backup/agent_report.h"

#include <algorithm>
#include <cstdio>

namespace rhythm {

void AgentReport::write(MonotonicTime now, WallTime wall, const ReplicationWindow &window,
                        const std::vector<NodeView> &nodes) {
    if (now - last_written_ < std::chrono::milliseconds(kReportEveryMs)) {
        return;
    }
    last_written_ = now;
    NodeReport reports[kReportedNodes] = {};
    std::uint32_t up = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        up += window.up(i) ? 1 : 0;
        if (i < kReportedNodes) {
            reports[i] = row(nodes[i], window.figures(i), window.up(i), now, wall);
        }
    }
    feed_.set_nodes(static_cast<std::uint32_t>(nodes.size()), up);
    feed_.set_node_reports(reports, std::min(nodes.size(), kReportedNodes));
    feed_.set_oldest_in_flight(window.oldest_saved_at());
    if (now - last_lag_rotation_ >= std::chrono::milliseconds(kLagWindowMs)) {
        feed_.rotate_lag_window();
        last_lag_rotation_ = now;
    }
}

NodeReport AgentReport::row(const NodeView &node, const ReplicationWindow::NodeFigures &f, bool up,
                            MonotonicTime now, WallTime wall) {
    NodeReport r = {};
    std::snprintf(r.endpoint, sizeof r.endpoint, "%s", node.endpoint->c_str());
    bool answered = node.last_answer != MonotonicTime();
    if (answered) {
        std::snprintf(r.name, sizeof r.name, "%s", node.name->c_str());
        // As long before `wall` as it was before `now`.
        r.last_answer_us = (wall - (now - node.last_answer)).us();
    }
    r.state = up         ? (f.full ? NodeState::kFull : NodeState::kUp)
              : answered ? NodeState::kDown
                         : NodeState::kUnknown;
    r.unacknowledged = f.unacknowledged;
    r.refused = f.refused;
    // What it lacks that is no longer in flight (settled while it was down or refusing) is dated
    // from its last answer: it is behind since then at least.
    std::int64_t oldest = f.oldest_saved_at.us();
    if (f.lacks_settled && r.last_answer_us != 0 && (oldest == 0 || r.last_answer_us < oldest)) {
        oldest = r.last_answer_us;
    }
    r.oldest_unacknowledged_us = f.unacknowledged == 0 ? 0 : oldest;
    return r;
}

}  // namespace rhythm
