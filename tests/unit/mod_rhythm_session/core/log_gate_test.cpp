// The rate limit of the RS0106/RS0107 lines: the first event is logged at once, the next ones at
// most once per interval and with their count, none when nothing happened.
#include "core/log_gate.h"

#include <boost/test/unit_test.hpp>

using rhythm::kLogIntervalUs;
using rhythm::LogGate;
using rhythm::LogLine;

namespace {

constexpr std::int64_t kNow = 1'700'000'000'000'000;

}  // namespace

BOOST_AUTO_TEST_SUITE(log_gate)

BOOST_AUTO_TEST_CASE(the_first_event_is_logged_at_once) {
    LogGate gate{};
    LogLine line;
    BOOST_TEST(!rhythm::log_gate_take(gate, 0, kNow, &line));  // nothing happened
    gate.unlogged += 1;
    BOOST_TEST(rhythm::log_gate_take(gate, 1, kNow, &line));
    BOOST_TEST(line.count == 1u);
    BOOST_TEST(line.total == 1u);
    BOOST_TEST(line.previous_line_us == 0);
    BOOST_TEST(gate.unlogged == 0u);
}

BOOST_AUTO_TEST_CASE(later_events_wait_for_the_interval_and_are_counted) {
    LogGate gate{};
    LogLine line;
    gate.unlogged = 1;
    BOOST_REQUIRE(rhythm::log_gate_take(gate, 1, kNow, &line));
    for (int n = 0; n < 500; ++n) {
        gate.unlogged += 1;
        LogLine none;
        BOOST_TEST(!rhythm::log_gate_take(gate, 2 + n, kNow + n * 1000, &none));
        BOOST_TEST(none.count == 0u);
    }
    BOOST_TEST(!rhythm::log_gate_take(gate, 501, kNow + kLogIntervalUs - 1, &line));
    BOOST_TEST(rhythm::log_gate_take(gate, 501, kNow + kLogIntervalUs, &line));
    BOOST_TEST(line.count == 500u);
    BOOST_TEST(line.total == 501u);
    BOOST_TEST(line.previous_line_us == kNow);
    // Nothing since: no line, however long after.
    BOOST_TEST(!rhythm::log_gate_take(gate, 501, kNow + 100 * kLogIntervalUs, &line));
}

BOOST_AUTO_TEST_CASE(a_clock_set_back_does_not_silence_the_log) {
    LogGate gate{};
    LogLine line;
    gate.unlogged = 1;
    BOOST_REQUIRE(rhythm::log_gate_take(gate, 1, kNow, &line));
    gate.unlogged = 3;
    BOOST_TEST(rhythm::log_gate_take(gate, 4, kNow - 3600'000'000LL, &line));
    BOOST_TEST(line.count == 3u);
}

BOOST_AUTO_TEST_SUITE_END()
