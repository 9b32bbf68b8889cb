// Duration directives: accepted forms, ranges and the reasons given for refusals (sizes, counts,
// endpoints and names are tested with common/, in tests/unit/common).
#include "core/config_value.h"

#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_SUITE(config_value)

BOOST_AUTO_TEST_CASE(durations) {
    std::uint64_t ms = 0;
    std::string why;
    BOOST_TEST(rhythm::parse_duration_ms("10", 1, 3600000, &ms, &why));
    BOOST_TEST(ms == 10000u);
    BOOST_TEST(rhythm::parse_duration_ms("10s", 1, 3600000, &ms, &why));
    BOOST_TEST(ms == 10000u);
    BOOST_TEST(rhythm::parse_duration_ms("250ms", 1, 3600000, &ms, &why));
    BOOST_TEST(ms == 250u);
    BOOST_TEST(!rhythm::parse_duration_ms("0ms", 1, 3600000, &ms, &why));
    BOOST_TEST(why.find("out of range") != std::string::npos);
    BOOST_TEST(!rhythm::parse_duration_ms("5min", 1, 3600000, &ms, &why));
    BOOST_TEST(why.find("unknown unit") != std::string::npos);
    BOOST_TEST(!rhythm::parse_duration_ms("1.5s", 1, 3600000, &ms, &why));
}

BOOST_AUTO_TEST_CASE(idle_timeouts) {
    std::uint64_t s = 7;
    std::string why;
    BOOST_TEST(rhythm::parse_idle_timeout_s("1800", 86400, &s, &why));
    BOOST_TEST(s == 1800u);
    BOOST_TEST(rhythm::parse_idle_timeout_s("30s", 86400, &s, &why));
    BOOST_TEST(s == 30u);
    BOOST_TEST(rhythm::parse_idle_timeout_s("2000ms", 86400, &s, &why));
    BOOST_TEST(s == 2u);
    for (const char *off : {"Off", "off", "OFF", "0", "0s"}) {
        s = 7;
        BOOST_TEST(rhythm::parse_idle_timeout_s(off, 86400, &s, &why), off);
        BOOST_TEST(s == 0u, off);
    }
}

BOOST_AUTO_TEST_CASE(bad_idle_timeouts_say_why) {
    std::uint64_t s = 7;
    std::string why;
    BOOST_TEST(!rhythm::parse_idle_timeout_s("1500ms", 86400, &s, &why));
    BOOST_TEST(why == "'1500ms' is not a whole number of seconds");
    BOOST_TEST(!rhythm::parse_idle_timeout_s("86401", 86400, &s, &why));
    BOOST_TEST(why.find("out of range") != std::string::npos);
    BOOST_TEST(!rhythm::parse_idle_timeout_s("30min", 86400, &s, &why));
    BOOST_TEST(why.find("unknown unit") != std::string::npos);
    BOOST_TEST(!rhythm::parse_idle_timeout_s("of", 86400, &s, &why));
    BOOST_TEST(!rhythm::parse_idle_timeout_s("", 86400, &s, &why));
    BOOST_TEST(s == 7u);
}

BOOST_AUTO_TEST_SUITE_END()
