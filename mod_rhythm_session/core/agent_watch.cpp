// The parent's judgement of its backup agent (see agent_watch.h).
#include "agent_watch.h"

#include <algorithm>

namespace rhythm {

AgentWatch::Verdict AgentWatch::check(std::int64_t now_us, std::int64_t agent_turn_us) {
    if (last_check_us_ == 0 || now_us - last_check_us_ > settings_.own_stall_us) {
        allowance_from_us_ = now_us;  // the first look, or the watcher itself was stopped
    }
    last_check_us_ = now_us;
    idle_us_ = now_us - std::max(agent_turn_us, allowance_from_us_);
    if (idle_us_ < settings_.warn_after_us) {
        bool was_hung = warned_;
        warned_ = false;
        return was_hung ? Verdict::kResumed : Verdict::kRunning;
    }
    if (idle_us_ >= settings_.restart_after_us) {
        // The next agent gets a whole allowance of its own from now.
        allowance_from_us_ = now_us;
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
