// The parent's judgement of its backup agent (see agent_watch.h).
#include "agent_watch.h"

#include <algorithm>

namespace rhythm {

AgentWatch::Verdict AgentWatch::check(MonotonicTime now, MonotonicTime agent_turn) {
    if (last_check_ == MonotonicTime() || now - last_check_ > Duration(settings_.own_stall_us)) {
        allowance_from_ = now;  // the first look, or the watcher itself was stopped
    }
    last_check_ = now;
    idle_us_ = (now - std::max(agent_turn, allowance_from_)).count();
    if (idle_us_ < settings_.warn_after_us) {
        bool was_hung = warned_;
        warned_ = false;
        return was_hung ? Verdict::kResumed : Verdict::kRunning;
    }
    if (idle_us_ >= settings_.restart_after_us) {
        // The next agent gets a whole allowance of its own from now.
        allowance_from_ = now;
        warned_ = false;
        return Verdict::kRestart;
    }
    if (!warned_) {
        warned_ = true;
        return Verdict::kHung;
    }
    return Verdict::kStillHung;
}

}  // namespace rhythm
