// The rate limiter of repeated log lines, and log levels.
#include "rss_node/log.h"

#include <boost/test/unit_test.hpp>

using rhythm::node::LogLevel;
using rhythm::node::RateLimitedLog;

BOOST_AUTO_TEST_SUITE(node_log)

BOOST_AUTO_TEST_CASE(one_line_per_interval_with_the_count_held_back) {
    RateLimitedLog limiter(1000);
    std::uint64_t suppressed = 99;
    BOOST_TEST(limiter.admit(5000, &suppressed));
    BOOST_TEST(suppressed == 0u);
    BOOST_TEST(!limiter.admit(5001, &suppressed));
    BOOST_TEST(!limiter.admit(5999, &suppressed));
    BOOST_TEST(limiter.admit(6000, &suppressed));
    BOOST_TEST(suppressed == 2u);
}

BOOST_AUTO_TEST_CASE(levels_parse) {
    LogLevel level;
    BOOST_TEST(rhythm::node::parse_log_level("warn", &level));
    BOOST_TEST((level == LogLevel::kWarn));
    BOOST_TEST(!rhythm::node::parse_log_level("loud", &level));
}

BOOST_AUTO_TEST_SUITE_END()
