// The sessions agents fetched lately: who was answered which version, for how long, and the
// bound on what a peer can make the node remember.
#include "rss_node/recent_takeovers.h"

#include <boost/test/unit_test.hpp>
#include <string>

#include "tests/unit/rss_node/test_values.h"

using rhythm::node::RecentTakeovers;
using rhythm::node::test::key_of;

BOOST_AUTO_TEST_SUITE(recent_takeovers)

BOOST_AUTO_TEST_CASE(the_last_two_servers_answered_a_version_are_its_takers) {
    RecentTakeovers t;
    BOOST_TEST(t.takers(key_of(1), 5, 1000)[0].empty());
    t.note(key_of(1), "web-a", 5, 1000);
    BOOST_TEST(t.takers(key_of(1), 5, 1000)[1].empty());
    // s109-80all-b: web-a took the session over, web-b's fetch came right after (a 503).
    t.note(key_of(1), "web-b", 5, 1010);
    BOOST_TEST(t.takers(key_of(1), 5, 1020)[0] == "web-b");
    BOOST_TEST(t.takers(key_of(1), 5, 1020)[1] == "web-a");
    t.note(key_of(1), "web-a", 5, 1015);  // again: to the front, not twice
    BOOST_TEST(t.takers(key_of(1), 5, 1020)[0] == "web-a");
    BOOST_TEST(t.takers(key_of(1), 5, 1020)[1] == "web-b");
    t.note(key_of(1), "web-c", 5, 1016);  // the oldest makes room
    BOOST_TEST(t.takers(key_of(1), 5, 1020)[0] == "web-c");
    BOOST_TEST(t.takers(key_of(1), 5, 1020)[1] == "web-a");
    BOOST_TEST(t.takers(key_of(1), 6, 1020)[0].empty());  // the bank has moved on since
    BOOST_TEST(t.takers(key_of(2), 5, 1020)[0].empty());
}

BOOST_AUTO_TEST_CASE(a_taker_is_kept_for_a_while_only) {
    RecentTakeovers t;
    t.note(key_of(1), "web-a", 5, 1000);
    BOOST_TEST(t.takers(key_of(1), 5, 1000 + RecentTakeovers::kKeepMs)[0] == "web-a");
    BOOST_TEST(t.takers(key_of(1), 5, 1001 + RecentTakeovers::kKeepMs)[0].empty());
    t.note(key_of(2), "web-b", 1, 2000 + RecentTakeovers::kKeepMs);
    BOOST_TEST(t.size() == 1u);  // the old one forgotten
}

BOOST_AUTO_TEST_CASE(a_key_noted_again_is_kept_from_its_last_note) {
    RecentTakeovers t;
    t.note(key_of(1), "web-a", 5, 1000);
    t.note(key_of(1), "web-b", 6, 5000);
    t.note(key_of(2), "web-c", 1, 1001 + RecentTakeovers::kKeepMs);  // forgets the first note
    BOOST_TEST(t.takers(key_of(1), 6, 1001 + RecentTakeovers::kKeepMs)[0] == "web-b");
    // A new version starts a new list: web-a was answered the one before.
    BOOST_TEST(t.takers(key_of(1), 6, 1001 + RecentTakeovers::kKeepMs)[1].empty());
}

BOOST_AUTO_TEST_CASE(at_most_kmaxentries_sessions_are_remembered) {
    RecentTakeovers t;
    for (std::uint32_t i = 0; i < RecentTakeovers::kMaxEntries + 10; ++i) {
        t.note(key_of(i), "web-a", 1, 1000);
    }
    BOOST_TEST(t.size() == RecentTakeovers::kMaxEntries);
    BOOST_TEST(t.takers(key_of(0), 1, 1000)[0].empty());  // the oldest went first
    BOOST_TEST(t.takers(key_of(RecentTakeovers::kMaxEntries + 9), 1, 1000)[0] == "web-a");
    for (int i = 0; i < 100000; ++i) {  // one key noted over and over: bounded too
        t.note(key_of(7), "web-b", 2, 1000);
    }
    BOOST_TEST(t.size() <= RecentTakeovers::kMaxEntries);
    BOOST_TEST(t.takers(key_of(7), 2, 1000)[0] == "web-b");
}

BOOST_AUTO_TEST_SUITE_END()
