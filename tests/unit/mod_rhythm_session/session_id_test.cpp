// Session ID generation and the strict text form.
#include "core/session_id.h"

#include <boost/test/unit_test.hpp>
#include <set>
#include <string>

using rhythm::SessionId;

BOOST_AUTO_TEST_SUITE(session_id)

BOOST_AUTO_TEST_CASE(round_trip_of_random_ids) {
    for (int i = 0; i < 1000; ++i) {
        SessionId id;
        BOOST_REQUIRE(rhythm::generate_session_id(&id));
        char text[SessionId::kTextLength + 1];
        rhythm::format_session_id(id, text);
        BOOST_TEST(std::string(text).size() == SessionId::kTextLength);
        SessionId back;
        BOOST_REQUIRE(rhythm::parse_session_id(text, &back));
        BOOST_TEST((back == id));
    }
}

BOOST_AUTO_TEST_CASE(ids_do_not_repeat) {
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) {
        SessionId id;
        BOOST_REQUIRE(rhythm::generate_session_id(&id));
        char text[SessionId::kTextLength + 1];
        rhythm::format_session_id(id, text);
        BOOST_TEST(seen.insert(text).second);
    }
}

BOOST_AUTO_TEST_CASE(known_encoding) {
    SessionId id;
    id.bytes.fill(0xFF);
    char text[SessionId::kTextLength + 1];
    rhythm::format_session_id(id, text);
    BOOST_TEST(std::string(text) == "_____________________w");
    id.bytes.fill(0);
    rhythm::format_session_id(id, text);
    BOOST_TEST(std::string(text) == "AAAAAAAAAAAAAAAAAAAAAA");
}

BOOST_AUTO_TEST_CASE(malformed_text_is_refused) {
    SessionId id;
    BOOST_TEST(!rhythm::parse_session_id("", &id));
    BOOST_TEST(!rhythm::parse_session_id("AAAAAAAAAAAAAAAAAAAAA", &id));    // 21
    BOOST_TEST(!rhythm::parse_session_id("AAAAAAAAAAAAAAAAAAAAAAA", &id));  // 23
    BOOST_TEST(!rhythm::parse_session_id("AAAAAAAAAAAAAAAAAAAA+A", &id));   // standard base64
    BOOST_TEST(!rhythm::parse_session_id("AAAAAAAAAAAAAAAAAAAA=A", &id));
    BOOST_TEST(!rhythm::parse_session_id("AAAAAAAAAAAAAAAAAAAA A", &id));
    BOOST_TEST(!rhythm::parse_session_id(std::string("AAAAAAAAAA\0AAAAAAAAAAA", 22), &id));
    // The last character carries two bits: any other value is not canonical.
    BOOST_TEST(!rhythm::parse_session_id("AAAAAAAAAAAAAAAAAAAAAB", &id));
    BOOST_TEST(rhythm::parse_session_id("AAAAAAAAAAAAAAAAAAAAAQ", &id));
}

BOOST_AUTO_TEST_CASE(log_prefix_is_short) {
    SessionId id;
    id.bytes.fill(0);
    char prefix[7];
    rhythm::session_id_log_prefix(id, prefix);
    BOOST_TEST(std::string(prefix) == "AAAAAA");
}

BOOST_AUTO_TEST_SUITE_END()
