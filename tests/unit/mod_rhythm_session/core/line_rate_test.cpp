// The per-process rate limit of a log line: one line per interval, the rest counted and named in
// the next line; threads' times out of order are held back, a clock that went back is not.
#include "core/line_rate.h"

#include <boost/test/unit_test.hpp>

using rhythm::LineRate;

BOOST_AUTO_TEST_SUITE(line_rate)

BOOST_AUTO_TEST_CASE(one_line_per_interval_and_the_next_says_how_many_were_held_back) {
    LineRate rate(1'000'000);
    std::uint64_t held = 99;
    BOOST_TEST(rate.admit(5'000'000, &held));
    BOOST_TEST(held == 0u);
    for (int i = 0; i < 4426; ++i) {
        BOOST_TEST_REQUIRE(!rate.admit(5'000'001 + i * 200, &held));
    }
    BOOST_TEST(rate.admit(6'000'000, &held));
    BOOST_TEST(held == 4426u);
    BOOST_TEST(!rate.admit(6'500'000, &held));
    BOOST_TEST(rate.admit(7'000'000, &held));
    BOOST_TEST(held == 1u);
}

BOOST_AUTO_TEST_CASE(a_time_a_little_before_the_last_lines_is_held_back_too) {
    // Another thread's request that started just before the one that wrote the line.
    LineRate rate(1'000'000);
    std::uint64_t held = 0;
    BOOST_TEST(rate.admit(9'000'000, &held));
    BOOST_TEST(!rate.admit(8'999'000, &held));
    // A clock that went back by more than the interval does not silence the line.
    BOOST_TEST(rate.admit(2'000'000, &held));
    BOOST_TEST(held == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
