// The backup agent told to stop goes on until the bank holds every change, within a bound: long
// at the server's end (what is left is lost), short at a restart (the next agent sends it), and
// not at all at a restart while no node answers (the restart would only wait).
#include "backup/stop_drain.h"

#include <boost/test/unit_test.hpp>
#include <chrono>

using rhythm::MonotonicTime;
using rhythm::StopDrain;
using std::chrono::milliseconds;

BOOST_AUTO_TEST_SUITE(stop_drain)

BOOST_AUTO_TEST_CASE(nothing_unacknowledged_ends_it_at_once) {
    MonotonicTime t0(1000000);
    for (StopDrain::Stop stop : {StopDrain::Stop::kEnd, StopDrain::Stop::kRestart}) {
        StopDrain drain(stop, t0);
        BOOST_TEST(!drain.go_on(t0, 0, true));
        BOOST_TEST(drain.go_on(t0, 1, true));
    }
}

BOOST_AUTO_TEST_CASE(at_the_end_it_waits_two_seconds_even_for_a_silent_bank) {
    MonotonicTime t0(1000000);
    StopDrain drain(StopDrain::Stop::kEnd, t0);
    BOOST_TEST(drain.go_on(t0, 3, false));
    BOOST_TEST(drain.go_on(t0 + milliseconds(1999), 3, false));
    BOOST_TEST(!drain.go_on(t0 + milliseconds(2000), 3, true));
    BOOST_TEST(drain.bound_ms() == 2000u);
}

BOOST_AUTO_TEST_CASE(at_a_restart_it_waits_half_a_second_and_only_while_a_node_answers) {
    MonotonicTime t0(1000000);
    StopDrain drain(StopDrain::Stop::kRestart, t0);
    BOOST_TEST(!drain.go_on(t0, 3, false));
    BOOST_TEST(drain.go_on(t0 + milliseconds(499), 3, true));
    BOOST_TEST(!drain.go_on(t0 + milliseconds(500), 3, true));
    BOOST_TEST(drain.bound_ms() == 500u);
}

BOOST_AUTO_TEST_SUITE_END()
