// The backup agent's tick pacing: it ticks every tick_us; ticks with work after the agent waited
// for a CPU stretch the interval up to busy_tick_us, ticks without that wait bring it back; a
// quiet agent ticks seldom. And CpuWait, the wait it reads from the kernel.
#include "backup/tick_pacer.h"

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <sched.h>
#include <thread>

#include "backup/cpu_wait.h"

using rhythm::TickPacer;

namespace {

TickPacer::Settings settings() {
    TickPacer::Settings s;
    s.tick_us = 1000;
    s.busy_tick_us = 16000;
    s.contended_us = 1000;
    s.quiet_tick_us = 10000;
    s.quiet_after_us = 1000000;
    return s;
}

// Ticks `pacer` `times` times, each when it falls due, after the agent waited `waited_us` for a
// CPU; returns when the last tick ran.
std::uint64_t tick(TickPacer &pacer, std::uint64_t now_us, std::uint64_t waited_us, int times,
                   bool worked = true) {
    for (int i = 0; i < times; ++i) {
        now_us += pacer.wait_ms(now_us) * 1000;
        BOOST_REQUIRE(pacer.due(now_us));
        pacer.ticked(now_us, worked, waited_us);
    }
    return now_us;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(tick_pacer)

BOOST_AUTO_TEST_CASE(it_ticks_every_tick_and_waits_whole_milliseconds) {
    TickPacer pacer(settings());
    BOOST_TEST(pacer.due(5000000));
    BOOST_TEST(pacer.wait_ms(5000000) == 0u);
    pacer.ticked(5000000, true, 0);
    BOOST_TEST(!pacer.due(5000999));
    BOOST_TEST(pacer.due(5001000));
    BOOST_TEST(pacer.wait_ms(5000000) == 1u);
    BOOST_TEST(pacer.wait_ms(5000400) == 1u);  // 600 us rounded up, never a busy 0
    tick(pacer, 5000000, 300, 50);
    BOOST_TEST(pacer.interval_us() == 1000u);
}

BOOST_AUTO_TEST_CASE(waiting_for_a_cpu_doubles_the_interval_up_to_busy_tick) {
    TickPacer pacer(settings());
    std::uint64_t now = tick(pacer, 1000000, 0, 1);
    std::uint64_t expected[] = {2000, 4000, 8000, 16000, 16000, 16000};
    for (std::uint64_t interval : expected) {
        now = tick(pacer, now, 3000, 1);
        BOOST_TEST(pacer.interval_us() == interval);
    }
    // No more waiting: one tick_us shorter per tick, back to tick_us.
    now = tick(pacer, now, 0, 10);
    BOOST_TEST(pacer.interval_us() == 6000u);
    tick(pacer, now, 0, 10);
    BOOST_TEST(pacer.interval_us() == 1000u);
}

BOOST_AUTO_TEST_CASE(one_wait_costs_one_longer_interval) {
    TickPacer pacer(settings());
    std::uint64_t now = tick(pacer, 1000000, 0, 5);
    now = tick(pacer, now, 2500, 1);
    BOOST_TEST(pacer.interval_us() == 2000u);
    tick(pacer, now, 0, 1);
    BOOST_TEST(pacer.interval_us() == 1000u);
}

BOOST_AUTO_TEST_CASE(a_wait_without_work_is_not_counted) {
    TickPacer pacer(settings());
    tick(pacer, 1000000, 5000, 20, false);
    BOOST_TEST(pacer.interval_us() == 1000u);
}

BOOST_AUTO_TEST_CASE(a_quiet_agent_ticks_every_quiet_tick_until_work_returns) {
    TickPacer pacer(settings());
    std::uint64_t now = tick(pacer, 1000000, 0, 1);
    now = tick(pacer, now, 0, 999, false);  // 999 ms without work: not quiet yet
    BOOST_TEST(pacer.wait_ms(now) == 1u);
    now = tick(pacer, now, 0, 1, false);
    BOOST_TEST(pacer.wait_ms(now) == 10u);
    now = tick(pacer, now, 0, 1, true);
    BOOST_TEST(pacer.wait_ms(now) == 1u);
}

BOOST_AUTO_TEST_CASE(cpu_wait_counts_the_time_another_thread_held_the_only_cpu) {
    cpu_set_t allowed;
    BOOST_REQUIRE(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &allowed)) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    BOOST_REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
    rhythm::CpuWait wait;
    std::atomic<bool> stop{false};
    std::thread spinner([&] {
        sched_setaffinity(0, sizeof one, &one);
        while (!stop) {
        }
    });
    // Both spin on one CPU: this thread waits for it while the other runs.
    std::uint64_t waited = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (waited < 20000 && std::chrono::steady_clock::now() < deadline) {
        waited += wait.since_last_us();
    }
    stop = true;
    spinner.join();
    sched_setaffinity(0, sizeof allowed, &allowed);
    BOOST_TEST(waited >= 20000u);
}

BOOST_AUTO_TEST_SUITE_END()
