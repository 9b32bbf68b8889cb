// The httpd parent's judgement of its backup agent: hung after warn_after_us without progress
// (said once), killed after restart_after_us, running again when it turns; a watcher that was
// stopped itself does not blame the agent for the stop.
#include "core/agent_watch.h"

#include <boost/test/unit_test.hpp>

using rhythm::AgentWatch;
using rhythm::Duration;
using rhythm::MonotonicTime;
using Verdict = AgentWatch::Verdict;

namespace {

constexpr Duration kSecond = std::chrono::seconds(1);
constexpr MonotonicTime kStart = MonotonicTime() + 1000 * kSecond;

// Checks once a second from `from` to `to` (inclusive) with the agent's last turn at `turn`;
// returns the verdicts.
std::vector<Verdict> watch_each_second(AgentWatch &w, MonotonicTime from, MonotonicTime to,
                                       MonotonicTime turn) {
    std::vector<Verdict> out;
    for (MonotonicTime t = from; t <= to; t += kSecond) {
        out.push_back(w.check(t, turn));
    }
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(agent_watch)

BOOST_AUTO_TEST_CASE(an_agent_that_turns_is_running) {
    AgentWatch w(AgentWatch::Settings{});
    for (MonotonicTime t = kStart; t < kStart + 60 * kSecond; t += kSecond) {
        BOOST_TEST((w.check(t, t - Duration(20000)) == Verdict::kRunning));
    }
}

BOOST_AUTO_TEST_CASE(hung_is_said_once_then_it_is_killed_and_the_next_agent_starts_afresh) {
    AgentWatch w(AgentWatch::Settings{});
    BOOST_TEST((w.check(kStart, kStart) == Verdict::kRunning));
    // It stops turning at kStart.
    auto v = watch_each_second(w, kStart + kSecond, kStart + 3 * kSecond, kStart);
    BOOST_TEST((v == std::vector<Verdict>(3, Verdict::kRunning)));
    BOOST_TEST((w.check(kStart + 4 * kSecond, kStart) == Verdict::kHung));
    BOOST_TEST(w.idle_us() == (4 * kSecond).count());
    v = watch_each_second(w, kStart + 5 * kSecond, kStart + 29 * kSecond, kStart);
    BOOST_TEST((v == std::vector<Verdict>(25, Verdict::kStillHung)));
    BOOST_TEST((w.check(kStart + 30 * kSecond, kStart) == Verdict::kRestart));
    // The next agent has not turned yet: a whole allowance from the kill.
    v = watch_each_second(w, kStart + 31 * kSecond, kStart + 33 * kSecond, kStart);
    BOOST_TEST((v == std::vector<Verdict>(3, Verdict::kRunning)));
    BOOST_TEST((w.check(kStart + 34 * kSecond, kStart + 33 * kSecond) == Verdict::kRunning));
}

BOOST_AUTO_TEST_CASE(an_agent_that_turns_again_has_resumed) {
    AgentWatch w(AgentWatch::Settings{});
    w.check(kStart, kStart);
    watch_each_second(w, kStart + kSecond, kStart + 5 * kSecond, kStart);
    BOOST_TEST((w.check(kStart + 6 * kSecond, kStart + 6 * kSecond) == Verdict::kResumed));
    BOOST_TEST((w.check(kStart + 7 * kSecond, kStart + 7 * kSecond) == Verdict::kRunning));
}

BOOST_AUTO_TEST_CASE(a_watcher_that_was_stopped_itself_gives_the_agent_a_new_allowance) {
    AgentWatch w(AgentWatch::Settings{});
    w.check(kStart, kStart);
    // The whole server was stopped for 60 s: the agent's last turn is that old, and so is the
    // watcher's last look.
    MonotonicTime resumed = kStart + 60 * kSecond;
    BOOST_TEST((w.check(resumed, kStart) == Verdict::kRunning));
    BOOST_TEST((w.check(resumed + kSecond, resumed + Duration(500000)) == Verdict::kRunning));
}

BOOST_AUTO_TEST_SUITE_END()
