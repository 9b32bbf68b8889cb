// What the backup agent does once told to stop, before it closes its connections: it goes on as
// before (publishing, sending again, answering the nodes' handovers and the workers' fetches)
// until the bank has acknowledged every change, for a bounded time.
//
// At the end of the server (a stop, or its parent gone) the segment goes with it, so what the bank
// has not acknowledged then is lost: the bound is long, 2 s, below the 3 s after which APR kills
// the subprocesses of a pool being destroyed (it looks 1.5 s and 3 s into its wait, so such a stop
// takes 3 s), and a node silent as the stop began, or hung and not yet counted silent (1.5 s),
// may answer or be counted out within it. At a restart the segment stays and the next agent sends
// what is left, so the drain only narrows the time in which the bank lacks this server's last
// changes while no agent of it can answer a handover (docs/backup.md, Failover): the parent waits
// for it before it reads its configuration again, and new connections wait in the listen queue
// meanwhile, so it is short, 500 ms, and none at all while no node answers.
#pragma once

#include <cstdint>

#include "common/clock.h"

namespace rhythm {

class StopDrain {
  public:
    enum class Stop { kRestart, kEnd };
    static constexpr std::uint64_t kRestartMs = 500;
    static constexpr std::uint64_t kEndMs = 2000;

    StopDrain(Stop stop, MonotonicTime now);

    // Whether the agent takes another turn, with `unacknowledged` sessions and deletions the bank
    // does not hold yet, and `any_node_up` (one answered lately).
    bool go_on(MonotonicTime now, std::uint64_t unacknowledged, bool any_node_up) const;

    std::uint64_t bound_ms() const { return stop_ == Stop::kEnd ? kEndMs : kRestartMs; }

  private:
    Stop stop_;
    MonotonicTime started_;
};

}  // namespace rhythm
