// Directive value parsing: accepted forms, ranges and the reasons given for refusals.
#include "core/config_value.h"

#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_SUITE(config_value)

BOOST_AUTO_TEST_CASE(sizes) {
    std::uint64_t v = 0;
    std::string why;
    BOOST_TEST(rhythm::parse_size("65536", 1, 1ULL << 40, &v, &why));
    BOOST_TEST(v == 65536u);
    BOOST_TEST(rhythm::parse_size("64K", 1, 1ULL << 40, &v, &why));
    BOOST_TEST(v == 65536u);
    BOOST_TEST(rhythm::parse_size("64m", 1, 1ULL << 40, &v, &why));
    BOOST_TEST(v == 64ULL << 20);
    BOOST_TEST(rhythm::parse_size("2G", 1, 1ULL << 40, &v, &why));
    BOOST_TEST(v == 2ULL << 30);
}

BOOST_AUTO_TEST_CASE(counts) {
    std::uint64_t v = 99;
    std::string why;
    BOOST_TEST(rhythm::parse_count("0", 0, 19, &v, &why));
    BOOST_TEST(v == 0u);
    BOOST_TEST(rhythm::parse_count("19", 0, 19, &v, &why));
    BOOST_TEST(v == 19u);
    BOOST_TEST(!rhythm::parse_count("20", 0, 19, &v, &why));
    BOOST_TEST(why == "'20' is out of range (0 to 19)");
    BOOST_TEST(!rhythm::parse_count("-1", 0, 19, &v, &why));
    BOOST_TEST(why == "'-1' is not a whole number (0 to 19)");
    BOOST_TEST(!rhythm::parse_count("5x", 0, 19, &v, &why));
    BOOST_TEST(!rhythm::parse_count("", 0, 19, &v, &why));
    BOOST_TEST(v == 19u);  // untouched by a refusal
}

BOOST_AUTO_TEST_CASE(bad_sizes_say_why) {
    std::uint64_t v = 7;
    std::string why;
    BOOST_TEST(!rhythm::parse_size("lots", 1, 100, &v, &why));
    BOOST_TEST(why.find("not a size") != std::string::npos);
    BOOST_TEST(!rhythm::parse_size("64X", 1, 1ULL << 30, &v, &why));
    BOOST_TEST(why.find("unknown unit") != std::string::npos);
    BOOST_TEST(!rhythm::parse_size("1K", 2048, 4096, &v, &why));
    BOOST_TEST(why.find("out of range (2K to 4K)") != std::string::npos);
    BOOST_TEST(!rhythm::parse_size("99999999999999999999999", 1, 100, &v, &why));
    BOOST_TEST(!rhythm::parse_size("20000000000G", 1, ~0ULL, &v, &why));
    BOOST_TEST(!rhythm::parse_size("-5", 1, 100, &v, &why));
    BOOST_TEST(v == 7u);
}

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

BOOST_AUTO_TEST_CASE(endpoints) {
    std::string why;
    BOOST_TEST(rhythm::check_endpoint("tcp://10.0.0.5:7301", &why));
    BOOST_TEST(rhythm::check_endpoint("tcp://node-1.example:1", &why));
    BOOST_TEST(rhythm::check_endpoint("tcp://[::1]:65535", &why));
    BOOST_TEST(rhythm::check_endpoint("ipc:///run/rhythm/node.sock", &why));
    BOOST_TEST(!rhythm::check_endpoint("10.0.0.5:7301", &why));
    BOOST_TEST(why.find("not an endpoint") != std::string::npos);
    BOOST_TEST(!rhythm::check_endpoint("tcp://10.0.0.5", &why));
    BOOST_TEST(!rhythm::check_endpoint("tcp://:7301", &why));
    BOOST_TEST(!rhythm::check_endpoint("tcp://10.0.0.5:0", &why));
    BOOST_TEST(!rhythm::check_endpoint("tcp://10.0.0.5:65536", &why));
    BOOST_TEST(!rhythm::check_endpoint("tcp://10.0.0.5:7301x", &why));
    BOOST_TEST(!rhythm::check_endpoint("tcp://bad host:7301", &why));
    BOOST_TEST(!rhythm::check_endpoint("ipc://", &why));
}

BOOST_AUTO_TEST_CASE(server_names) {
    std::string why;
    BOOST_TEST(rhythm::check_server_name("web1.example:443", &why));
    BOOST_TEST(!rhythm::check_server_name("", &why));
    BOOST_TEST(!rhythm::check_server_name(std::string(256, 'a'), &why));
    BOOST_TEST(!rhythm::check_server_name("web one", &why));
    BOOST_TEST(why.find("space") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
