// The fetches a node holds while it asks a session's servers for a newer copy: one handover per
// session (asked of one server or two), who may end it, deadlines, and the bounds a flood of
// fetches meets.
#include "rss_node/handover_waits.h"

#include <boost/test/unit_test.hpp>

namespace wire = rhythm::wire;
using rhythm::node::HandoverWaits;
using Answer = HandoverWaits::Answer;

namespace {

wire::SessionKey key_of(std::uint8_t b) {
    wire::SessionKey k;
    k.bytes.fill(b);
    return k;
}

HandoverWaits::HeldFetch fetch(const char *asker, std::uint64_t request_id) {
    return HandoverWaits::HeldFetch{asker, request_id};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(handover_waits)

BOOST_AUTO_TEST_CASE(the_second_fetch_of_a_session_waits_on_the_handover_asked_for_the_first) {
    HandoverWaits waits;
    std::uint64_t id = 0;
    BOOST_TEST((waits.hold(key_of(1), {"web-a"}, fetch("web-b", 7), 1000, &id) ==
                HandoverWaits::Held::kAsk));
    BOOST_TEST(id != 0u);
    std::uint64_t unused = 0;
    BOOST_TEST((waits.hold(key_of(1), {"web-a"}, fetch("web-c", 8), 1010, &unused) ==
                HandoverWaits::Held::kJoined));
    BOOST_TEST(unused == 0u);
    wire::SessionKey key;
    HandoverWaits::Wait ended;
    BOOST_TEST_REQUIRE((waits.answered("web-a", id, &key, &ended) == Answer::kEnded));
    BOOST_TEST((ended.key == key_of(1)));
    BOOST_TEST_REQUIRE(ended.fetches.size() == 2u);
    BOOST_TEST(ended.fetches[0].routing_id == "web-b");
    BOOST_TEST(ended.fetches[1].request_id == 8u);
    BOOST_TEST(waits.size() == 0u);
    // Answered once: a repeat ends nothing.
    BOOST_TEST((waits.answered("web-a", id, &key, &ended) == Answer::kNotAsked));
}

BOOST_AUTO_TEST_CASE(only_the_agent_asked_ends_a_wait) {
    HandoverWaits waits;
    std::uint64_t id = 0;
    waits.hold(key_of(1), {"web-a"}, fetch("web-b", 7), 1000, &id);
    wire::SessionKey key;
    HandoverWaits::Wait ended;
    BOOST_TEST((waits.answered("web-b", id, &key, &ended) == Answer::kNotAsked));
    BOOST_TEST((waits.answered("web-a", id + 1, &key, &ended) == Answer::kNotAsked));
    BOOST_TEST(waits.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_wait_asked_of_two_servers_ends_with_the_second_answer) {
    // The server that took the session over and the one that made the copy, which may not have
    // been told (the fault campaign, s104-97).
    HandoverWaits waits;
    std::uint64_t id = 0;
    BOOST_TEST_REQUIRE((waits.hold(key_of(1), {"web-a", "web-c"}, fetch("web-b", 7), 1000, &id) ==
                        HandoverWaits::Held::kAsk));
    wire::SessionKey key;
    HandoverWaits::Wait ended;
    BOOST_TEST((waits.answered("web-c", id, &key, &ended) == Answer::kMore));
    BOOST_TEST((key == key_of(1)));
    BOOST_TEST((waits.answered("web-c", id, &key, &ended) == Answer::kNotAsked));  // once
    BOOST_TEST(waits.size() == 1u);
    BOOST_TEST((waits.answered("web-a", id, &key, &ended) == Answer::kEnded));
    BOOST_TEST(ended.fetches.size() == 1u);
    BOOST_TEST(waits.size() == 0u);
    // At the deadline the wait names the server that did not answer, which may answer late.
    waits.hold(key_of(2), {"web-a", "web-c"}, fetch("web-b", 8), 2000, &id);
    waits.answered("web-a", id, &key, &ended);
    std::vector<HandoverWaits::Wait> expired;
    waits.expire(2000 + HandoverWaits::kDefaultWaitMs, &expired);
    BOOST_TEST_REQUIRE(expired.size() == 1u);
    BOOST_TEST((expired[0].unanswered == std::vector<std::string>{"web-c"}));
    wire::SessionKey late;
    BOOST_TEST(!waits.answered_late("web-a", id, &late));
    BOOST_TEST(waits.answered_late("web-c", id, &late));
    BOOST_TEST((late == key_of(2)));
    // More than three servers, or none, is refused: the fetch is answered at once.
    BOOST_TEST((waits.hold(key_of(3), {"web-a", "web-c", "web-d", "web-e"}, fetch("web-b", 9), 3000,
                           &id) == HandoverWaits::Held::kFull));
    BOOST_TEST(
        (waits.hold(key_of(3), {}, fetch("web-b", 9), 3000, &id) == HandoverWaits::Held::kFull));
}

BOOST_AUTO_TEST_CASE(a_wait_ends_at_its_deadline_with_its_fetches) {
    HandoverWaits waits;
    std::uint64_t first = 0;
    std::uint64_t second = 0;
    waits.hold(key_of(1), {"web-a"}, fetch("web-b", 7), 1000, &first);
    waits.hold(key_of(2), {"web-a"}, fetch("web-b", 8), 1100, &second);
    BOOST_TEST(waits.next_deadline_ms() == 1000 + HandoverWaits::kDefaultWaitMs);
    std::vector<HandoverWaits::Wait> expired;
    waits.expire(1000 + HandoverWaits::kDefaultWaitMs - 1, &expired);
    BOOST_TEST(expired.empty());
    waits.expire(1000 + HandoverWaits::kDefaultWaitMs, &expired);
    BOOST_TEST_REQUIRE(expired.size() == 1u);
    BOOST_TEST(expired[0].fetches[0].request_id == 7u);
    BOOST_TEST(waits.next_deadline_ms() == 1100 + HandoverWaits::kDefaultWaitMs);
    // The agent's answer after the deadline finds nothing to end, but names its session, once,
    // and only from the agent asked.
    wire::SessionKey late;
    HandoverWaits::Wait ended;
    BOOST_TEST((waits.answered("web-a", first, &late, &ended) == Answer::kNotAsked));
    BOOST_TEST(!waits.answered_late("web-b", first, &late));
    BOOST_TEST_REQUIRE(waits.answered_late("web-a", first, &late));
    BOOST_TEST((late == key_of(1)));
    BOOST_TEST(!waits.answered_late("web-a", first, &late));
    BOOST_TEST(!waits.answered_late("web-a", second, &late));  // still waiting
    waits.expire(100000, &expired);
    BOOST_TEST(expired.size() == 2u);
    BOOST_TEST(waits.next_deadline_ms() == 0u);
}

BOOST_AUTO_TEST_CASE(only_the_last_max_waits_expired_handovers_can_be_answered_late) {
    HandoverWaits waits;
    std::vector<HandoverWaits::Wait> expired;
    std::uint64_t first = 0;
    std::uint64_t id = 0;
    for (std::size_t i = 0; i <= HandoverWaits::kMaxWaits; ++i) {
        waits.hold(key_of(static_cast<std::uint8_t>(i)), {"web-a"}, fetch("web-b", i), 1000, &id);
        first = first == 0 ? id : first;
        waits.expire(100000, &expired);
    }
    wire::SessionKey late;
    BOOST_TEST(!waits.answered_late("web-a", first, &late));
    BOOST_TEST(waits.answered_late("web-a", id, &late));
}

BOOST_AUTO_TEST_CASE(a_flood_of_fetches_is_answered_at_once_past_the_bounds) {
    HandoverWaits waits;
    std::uint64_t id = 0;
    for (std::size_t i = 0; i < HandoverWaits::kMaxFetchesPerWait; ++i) {
        BOOST_TEST((waits.hold(key_of(1), {"web-a"}, fetch("web-b", i), 1000, &id) !=
                    HandoverWaits::Held::kFull));
    }
    BOOST_TEST((waits.hold(key_of(1), {"web-a"}, fetch("web-b", 99), 1000, &id) ==
                HandoverWaits::Held::kFull));
    for (std::size_t i = 1; i < HandoverWaits::kMaxWaits; ++i) {
        wire::SessionKey k;
        k.bytes[0] = static_cast<std::uint8_t>(i);
        k.bytes[1] = static_cast<std::uint8_t>(i >> 8);
        k.bytes[2] = 1;
        BOOST_TEST_REQUIRE(
            (waits.hold(k, {"web-a"}, fetch("web-b", i), 1000, &id) == HandoverWaits::Held::kAsk));
    }
    BOOST_TEST(waits.size() == HandoverWaits::kMaxWaits);
    BOOST_TEST((waits.hold(key_of(7), {"web-a"}, fetch("web-b", 1), 1000, &id) ==
                HandoverWaits::Held::kFull));
}

BOOST_AUTO_TEST_SUITE_END()
