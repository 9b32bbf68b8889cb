// How the httpd parent judges its backup agent: a rule with no clock or process of its own, fed
// once a second with the time and the agent's last sign of progress (the time of its last loop
// turn, which it writes in the segment).
//
// An agent that makes no progress for warn_after_us is hung (or starved of CPU): changes are not
// backed up, and the parent says so. After restart_after_us it is killed, and the parent forks
// another, which finds every change the bank has not acknowledged. A watcher that did not run
// itself for own_stall_us (the whole server was stopped: SIGSTOP, a paused virtual machine)
// gives the agent a fresh allowance from then, rather than blaming it for the stop.
#pragma once

#include <cstdint>

#include "common/clock.h"

namespace rhythm {

class AgentWatch {
  public:
    struct Settings {
        std::int64_t warn_after_us = 4000000;
        std::int64_t restart_after_us = 30000000;
        std::int64_t own_stall_us = 2000000;
    };
    enum class Verdict {
        kRunning,
        kHung,       // no progress for warn_after_us: warn, once
        kStillHung,  // hung and warned already
        kRestart,    // no progress for restart_after_us: kill it (the next gets a new allowance)
        kResumed,    // it makes progress again after it was hung
    };

    explicit AgentWatch(const Settings &settings) : settings_(settings) {}

    // `agent_turn`: the agent's last loop turn (0: none yet).
    Verdict check(MonotonicTime now, MonotonicTime agent_turn);

    // How long the agent has made no progress, as of the last check.
    std::int64_t idle_us() const { return idle_us_; }

  private:
    Settings settings_;
    MonotonicTime last_check_;
    MonotonicTime allowance_from_;  // when it was started or excused
    std::int64_t idle_us_ = 0;
    bool warned_ = false;
};

}  // namespace rhythm
