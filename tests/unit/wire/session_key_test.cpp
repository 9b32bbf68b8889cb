// Session keys: the strict text form and the fixed shard mapping.
#include "wire/session_key.h"

#include <boost/test/unit_test.hpp>
#include <random>
#include <set>

using rhythm::wire::format_session_key;
using rhythm::wire::kShardCount;
using rhythm::wire::parse_session_key;
using rhythm::wire::SessionKey;
using rhythm::wire::shard_of;

BOOST_AUTO_TEST_SUITE(session_key)

BOOST_AUTO_TEST_CASE(text_form_round_trips) {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 1000; ++i) {
        SessionKey k;
        for (auto &b : k.bytes) {
            b = static_cast<std::uint8_t>(rng());
        }
        std::string text = format_session_key(k);
        BOOST_TEST(text.size() == 22u);
        SessionKey back;
        BOOST_TEST(parse_session_key(text, &back));
        BOOST_TEST((back == k));
    }
}

BOOST_AUTO_TEST_CASE(known_spellings) {
    SessionKey zero;
    BOOST_TEST(format_session_key(zero) == "AAAAAAAAAAAAAAAAAAAAAA");
    SessionKey ones;
    ones.bytes.fill(0xff);
    BOOST_TEST(format_session_key(ones) == "_____________________w");
}

BOOST_AUTO_TEST_CASE(rejects_malformed_text) {
    SessionKey k;
    BOOST_TEST(!parse_session_key("", &k));
    BOOST_TEST(!parse_session_key("AAAAAAAAAAAAAAAAAAAAA", &k));    // 21
    BOOST_TEST(!parse_session_key("AAAAAAAAAAAAAAAAAAAAAAA", &k));  // 23
    BOOST_TEST(!parse_session_key("AAAAAAAAAAAAAAAAAAAA+A", &k));   // not url-safe
    BOOST_TEST(!parse_session_key("AAAAAAAAAAAAAAAAAAAA=A", &k));
    BOOST_TEST(!parse_session_key("AAAAAAAAAAAAAAAAAAAAAB", &k));  // non-canonical last char
    BOOST_TEST(!parse_session_key(std::string("AAAAAAAAAA\0AAAAAAAAAAA", 22), &k));
}

BOOST_AUTO_TEST_CASE(shard_is_fixed_and_in_range) {
    // Pinned: these values are part of protocol version 1 (docs/protocol.md).
    SessionKey zero;
    BOOST_TEST(shard_of(zero) == 101u);
    SessionKey ones;
    ones.bytes.fill(0xff);
    BOOST_TEST(shard_of(ones) == 85u);
    std::mt19937_64 rng(11);
    std::set<std::uint32_t> seen;
    for (int i = 0; i < 100000; ++i) {
        SessionKey k;
        for (auto &b : k.bytes) {
            b = static_cast<std::uint8_t>(rng());
        }
        std::uint32_t s = shard_of(k);
        BOOST_TEST_REQUIRE(s < kShardCount);
        seen.insert(s);
    }
    BOOST_TEST(seen.size() == kShardCount);
}

BOOST_AUTO_TEST_SUITE_END()
