// Session ID generation. (The text form is the wire's: tests/unit/wire/session_key_test.cpp.)
#include "core/session_id.h"

#include <boost/test/unit_test.hpp>
#include <set>
#include <string>

using rhythm::SessionId;

BOOST_AUTO_TEST_SUITE(session_id)

BOOST_AUTO_TEST_CASE(generated_ids_round_trip_through_their_text_form) {
    for (int i = 0; i < 1000; ++i) {
        SessionId id;
        BOOST_REQUIRE(rhythm::generate_session_id(&id));
        std::string text = rhythm::wire::format_session_key(id);
        BOOST_TEST(text.size() == SessionId::kTextLength);
        SessionId back;
        BOOST_REQUIRE(rhythm::wire::parse_session_key(text, &back));
        BOOST_TEST((back == id));
    }
}

BOOST_AUTO_TEST_CASE(ids_do_not_repeat) {
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) {
        SessionId id;
        BOOST_REQUIRE(rhythm::generate_session_id(&id));
        BOOST_TEST(seen.insert(rhythm::wire::format_session_key(id)).second);
    }
}

BOOST_AUTO_TEST_CASE(log_prefix_is_short) {
    SessionId id;
    id.bytes.fill(0);
    char prefix[7];
    rhythm::session_id_log_prefix(id, prefix);
    BOOST_TEST(std::string(prefix) == "AAAAAA");
}

BOOST_AUTO_TEST_SUITE_END()
