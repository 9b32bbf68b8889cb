// Membership: peers up on a pong, down after 3 s of silence, back on the next pong; the start-up
// grace; a stall of the node itself not held against its peers; any message as a sign of life.
#include "rss_node/membership.h"

#include <boost/test/unit_test.hpp>

using rhythm::node::Membership;
using rhythm::node::PeerState;

namespace {

constexpr std::uint64_t kStart = 1000000;

Membership three() {
    return Membership("node-a", {"tcp://b", "tcp://c"}, kStart);
}

std::vector<std::string> names(std::initializer_list<const char *> list) {
    return std::vector<std::string>(list.begin(), list.end());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(membership)

BOOST_AUTO_TEST_CASE(peers_are_unknown_until_they_answer) {
    Membership m = three();
    BOOST_TEST((m.peers()[0].state == PeerState::kUnknown));
    BOOST_TEST(m.live_members() == names({"node-a"}));
    BOOST_TEST(m.on_pong(0, "node-b", kStart + 10));
    BOOST_TEST((m.peers()[0].state == PeerState::kUp));
    BOOST_TEST(m.peers()[0].name == "node-b");
    BOOST_TEST(m.live_members() == names({"node-a", "node-b"}));
    BOOST_TEST(!m.on_pong(0, "node-b", kStart + 1010));  // no change
}

BOOST_AUTO_TEST_CASE(a_node_with_peers_none_of_them_up_is_cut_off) {
    Membership m = three();
    BOOST_TEST(m.cut_off());  // none has answered yet
    m.on_pong(1, "node-c", kStart);
    BOOST_TEST(!m.cut_off());
    m.expire(kStart + Membership::kDeadAfterMs + 1);
    BOOST_TEST(m.cut_off());
    BOOST_TEST(!Membership("alone", {}, kStart).cut_off());  // a bank of one node
}

BOOST_AUTO_TEST_CASE(the_start_up_grace_ends_when_every_peer_answered_or_after_a_ping_round) {
    Membership m = three();
    BOOST_TEST(!m.settled(kStart));
    m.on_pong(0, "node-b", kStart + 5);
    BOOST_TEST(!m.settled(kStart + 5));
    m.on_pong(1, "node-c", kStart + 6);
    BOOST_TEST(m.settled(kStart + 6));

    Membership silent = three();
    BOOST_TEST(!silent.settled(kStart + Membership::kStartupGraceMs - 1));
    BOOST_TEST(silent.settled(kStart + Membership::kStartupGraceMs));
    BOOST_TEST(Membership("alone", {}, kStart).settled(kStart));
}

BOOST_AUTO_TEST_CASE(a_silent_peer_is_down_after_3_s_and_back_on_its_next_pong) {
    Membership m = three();
    m.on_pong(0, "node-b", kStart);
    m.on_pong(1, "node-c", kStart);
    m.on_pong(0, "node-b", kStart + 2000);
    BOOST_TEST(m.expire(kStart + Membership::kDeadAfterMs).empty());
    auto gone = m.expire(kStart + Membership::kDeadAfterMs + 1);
    BOOST_TEST_REQUIRE(gone.size() == 1u);
    BOOST_TEST(gone[0] == 1u);
    BOOST_TEST((m.peers()[1].state == PeerState::kDown));
    BOOST_TEST(m.live_members() == names({"node-a", "node-b"}));
    BOOST_TEST(m.expire(kStart + 4500).empty());  // reported once
    BOOST_TEST(m.on_pong(1, "node-c", kStart + 9000));
    BOOST_TEST(m.live_members() == names({"node-a", "node-b", "node-c"}));
}

BOOST_AUTO_TEST_CASE(any_message_from_an_up_peer_keeps_it_up_but_brings_none_back) {
    Membership m = three();
    m.on_pong(0, "node-b", kStart);
    m.on_pong(1, "node-c", kStart);
    m.on_heard(0, kStart + 2500);  // a snapshot record while its pong waits behind the snapshot
    BOOST_TEST(m.expire(kStart + Membership::kDeadAfterMs + 1).size() == 1u);  // node-c only
    BOOST_TEST((m.peers()[0].state == PeerState::kUp));
    m.on_heard(1, kStart + 5000);  // down: only a pong brings it back (with its name)
    BOOST_TEST((m.peers()[1].state == PeerState::kDown));
}

BOOST_AUTO_TEST_CASE(a_peer_answering_under_another_name_changes_the_membership) {
    Membership m = three();
    m.on_pong(0, "node-b", kStart);
    BOOST_TEST(m.on_pong(0, "node-b2", kStart + 1000));
    BOOST_TEST(m.live_members() == names({"node-a", "node-b2"}));
}

BOOST_AUTO_TEST_CASE(a_name_is_a_member_once) {
    Membership m("node-a", {"tcp://b", "tcp://b-again", "tcp://self"}, kStart);
    m.on_pong(0, "node-b", kStart);
    m.on_pong(1, "node-b", kStart);
    m.on_pong(2, "node-a", kStart);
    BOOST_TEST(m.live_members() == names({"node-a", "node-b"}));
}

BOOST_AUTO_TEST_CASE(the_nodes_own_stall_does_not_count_against_its_peers) {
    Membership m = three();
    m.on_pong(0, "node-b", kStart);
    m.on_pong(1, "node-c", kStart);
    // Stopped for 20 s right after those pongs: on resuming, its peers are still up.
    m.excuse_stall(20000);
    BOOST_TEST(m.expire(kStart + 20000 + 100).empty());
    BOOST_TEST(m.live_members().size() == 3u);
    // Silence after it resumed counts as usual.
    BOOST_TEST(m.expire(kStart + 20000 + Membership::kDeadAfterMs + 1).size() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
