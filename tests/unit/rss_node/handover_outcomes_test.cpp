// What became of the handovers a node asked: when it asks again, when it need not, when it gives
// up on a server, and the bound on what a peer can make it remember.
#include "rss_node/handover_outcomes.h"

#include <boost/test/unit_test.hpp>

#include "tests/unit/rss_node/test_values.h"

using rhythm::node::HandoverOutcomes;
using rhythm::node::test::key_of;
using Verdict = HandoverOutcomes::Verdict;

namespace {

// The server's agent, on its first connection.
HandoverOutcomes::Asked by(std::string_view server, std::string_view agent = "agent-1") {
    return {server, agent};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(handover_outcomes)

BOOST_AUTO_TEST_CASE(a_server_that_answered_is_not_asked_again_while_the_version_stays) {
    HandoverOutcomes h;
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 5, 1000) == Verdict::kAsk));
    h.answered(key_of(1), by("web-b"), 5, 1000);
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 5, 1500) == Verdict::kAnswered));
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 6, 1500) == Verdict::kAsk));  // changed since
    BOOST_TEST((h.verdict(key_of(1), by("web-c"), 5, 1500) == Verdict::kAsk));
    BOOST_TEST((h.verdict(key_of(2), by("web-b"), 5, 1500) == Verdict::kAsk));
    // Kept for a while only.
    BOOST_TEST(
        (h.verdict(key_of(1), by("web-b"), 5, 1001 + HandoverOutcomes::kKeepMs) == Verdict::kAsk));
}

BOOST_AUTO_TEST_CASE(a_server_that_fetches_the_session_itself_may_take_it_back) {
    HandoverOutcomes h;
    h.answered(key_of(1), by("web-b"), 5, 1000);
    h.fetched_by(key_of(1), "web-a", 1050);  // another server: nothing changes
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 5, 1100) == Verdict::kAnswered));
    h.fetched_by(key_of(1), "web-b", 1150);
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 5, 1200) == Verdict::kAsk));
}

BOOST_AUTO_TEST_CASE(a_server_that_leaves_a_version_unanswered_long_enough_is_given_up) {
    HandoverOutcomes h;
    h.unanswered(key_of(1), by("web-b"), 5, 1000);
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 5, 1100) == Verdict::kAsk));
    h.unanswered(key_of(1), by("web-b"), 5, 1200);  // counted from the first time
    BOOST_TEST(
        (h.verdict(key_of(1), by("web-b"), 5, 999 + HandoverOutcomes::kGiveUpMs) == Verdict::kAsk));
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 5, 1000 + HandoverOutcomes::kGiveUpMs) ==
                Verdict::kGiveUp));
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 6, 1000 + HandoverOutcomes::kGiveUpMs) ==
                Verdict::kAsk));  // a newer version: asked again
    // An answer, even late, settles it.
    h.answered(key_of(1), by("web-b"), 6, 3000);
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 6, 3100) == Verdict::kAnswered));
}

BOOST_AUTO_TEST_CASE(the_outcomes_of_two_servers_asked_about_one_session_are_kept_apart) {
    // The server that took the session over and the one that made the copy (handover_waits.h).
    HandoverOutcomes h;
    h.answered(key_of(1), by("web-a"), 5, 1000);
    h.unanswered(key_of(1), by("web-c"), 5, 1000);
    BOOST_TEST((h.verdict(key_of(1), by("web-a"), 5, 1100) == Verdict::kAnswered));
    BOOST_TEST((h.verdict(key_of(1), by("web-c"), 5, 1100) == Verdict::kAsk));
    BOOST_TEST((h.verdict(key_of(1), by("web-c"), 5, 1000 + HandoverOutcomes::kGiveUpMs) ==
                Verdict::kGiveUp));
    h.fetched_by(key_of(1), "web-c", 1200);  // web-c may take it back: web-a's answer stands
    BOOST_TEST((h.verdict(key_of(1), by("web-c"), 5, 1300) == Verdict::kAsk));
    BOOST_TEST((h.verdict(key_of(1), by("web-a"), 5, 1300) == Verdict::kAnswered));
    // A third server takes the slot noted first.
    h.answered(key_of(1), by("web-c"), 5, 1400);
    h.answered(key_of(1), by("web-d"), 5, 1500);
    BOOST_TEST((h.verdict(key_of(1), by("web-a"), 5, 1600) == Verdict::kAsk));
    BOOST_TEST((h.verdict(key_of(1), by("web-c"), 5, 1600) == Verdict::kAnswered));
    BOOST_TEST((h.verdict(key_of(1), by("web-d"), 5, 1600) == Verdict::kAnswered));
}

BOOST_AUTO_TEST_CASE(a_servers_next_agent_is_asked_whatever_its_last_one_answered) {
    // s106-97: web-1's agent answered at 5; its next agent (a graceful restart) checked the
    // session with another node only and served it on.
    HandoverOutcomes h;
    h.answered(key_of(1), by("web-b"), 5, 1000);
    BOOST_TEST((h.verdict(key_of(1), by("web-b"), 5, 1100) == Verdict::kAnswered));
    BOOST_TEST((h.verdict(key_of(1), by("web-b", "agent-2"), 5, 1100) == Verdict::kAsk));
    // Nor does what one agent left unanswered count against the next.
    h.unanswered(key_of(2), by("web-b"), 5, 1000);
    BOOST_TEST((h.verdict(key_of(2), by("web-b", "agent-2"), 5,
                          1000 + HandoverOutcomes::kGiveUpMs) == Verdict::kAsk));
    h.unanswered(key_of(2), by("web-b", "agent-2"), 5, 2000);
    BOOST_TEST((h.verdict(key_of(2), by("web-b", "agent-2"), 5, 2100) == Verdict::kAsk));
    BOOST_TEST((h.verdict(key_of(2), by("web-b", "agent-2"), 5,
                          2000 + HandoverOutcomes::kGiveUpMs) == Verdict::kGiveUp));
}

BOOST_AUTO_TEST_CASE(at_most_max_entries_are_remembered) {
    HandoverOutcomes h;
    for (std::size_t i = 0; i < HandoverOutcomes::kMaxEntries + 10; ++i) {
        h.answered(key_of(i), by("web-b"), 1, 1000);
    }
    BOOST_TEST(h.size() == HandoverOutcomes::kMaxEntries);
    BOOST_TEST((h.verdict(key_of(0), by("web-b"), 1, 1000) == Verdict::kAsk));  // the oldest gone
    BOOST_TEST((h.verdict(key_of(HandoverOutcomes::kMaxEntries + 9), by("web-b"), 1, 1000) ==
                Verdict::kAnswered));
}

BOOST_AUTO_TEST_SUITE_END()
