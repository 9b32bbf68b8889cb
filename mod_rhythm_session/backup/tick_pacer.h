// When the backup agent next takes changes from the segment: its tick.
//
// Each tick that publishes costs a round of wake-ups (the agent, its ZeroMQ thread, each node's
// two threads) whatever it carries: eight to ten context switches, 300-500 us of CPU in the agent
// and the node together on a saturated 2-core virtual machine. The agent runs below httpd's CPU
// priority, so when it has to wait for a CPU (cpu_wait.h) the CPUs are busy with requests, and
// those wake-ups would be taken from them. A tick that finds the agent waited more than
// contended_us since the previous one therefore doubles the interval, up to busy_tick_us: changes
// wait a little longer and go in bigger batches (a session changed meanwhile goes once). Each
// tick without that wait shortens it by tick_us again. After quiet_after_us without work the agent
// ticks every quiet_tick_us: an idle server's agent barely runs, and the first change after a
// quiet spell waits at most that long.
//
// Why the wait for a CPU and not the tick's lateness: on a virtual machine an idle CPU itself
// wakes late (several milliseconds after a quiet spell), which says nothing about requests.
//
// Times are the monotonic clock's microseconds (MonotonicTime::us(), common/clock.h).
#pragma once

#include <cstdint>

namespace rhythm {

class TickPacer {
  public:
    struct Settings {
        std::uint64_t tick_us = 1000;
        std::uint64_t busy_tick_us = 16000;
        std::uint64_t contended_us = 1000;  // this much waiting for a CPU per tick
        std::uint64_t quiet_tick_us = 10000;
        std::uint64_t quiet_after_us = 1000000;
    };

    explicit TickPacer(const Settings &settings)
        : settings_(settings), interval_us_(settings.tick_us) {}

    bool due(std::uint64_t now_mono_us) const { return now_mono_us >= next_us_; }
    // How long to wait for the next tick, in whole milliseconds (rounded up: 0 only when due).
    std::uint64_t wait_ms(std::uint64_t now_mono_us) const;
    // A tick ran at `now_mono_us`; `worked` says it had something to do (changes to publish or in
    // flight, a scan under way); `waited_us` is how long the agent waited for a CPU since the
    // previous tick.
    void ticked(std::uint64_t now_mono_us, bool worked, std::uint64_t waited_us);
    // The interval while there is work (between tick_us and busy_tick_us).
    std::uint64_t interval_us() const { return interval_us_; }

  private:
    Settings settings_;
    std::uint64_t interval_us_;
    std::uint64_t next_us_ = 0;  // 0: the first tick is due at once
    std::uint64_t last_worked_us_ = 0;
};

}  // namespace rhythm
