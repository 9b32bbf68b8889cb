// Catching up a peer that comes back: what is offered to it (the shards owned here while it was
// counted down, however ownership changed meanwhile), when, and which offered shards the
// receiving node fills from whom.
#include "rss_node/catch_up.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "tests/unit/rss_node/test_values.h"

namespace wire = rhythm::wire;
using rhythm::node::CatchUp;
using rhythm::node::Membership;
using rhythm::node::PeerState;
using rhythm::node::test::peer;
using rhythm::node::test::shards;

namespace {

bool same(const wire::ShardSet &a, const wire::ShardSet &b) {
    return a.bits == b.bits;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(catch_up)

BOOST_AUTO_TEST_CASE(a_peer_that_was_never_down_is_offered_nothing) {
    CatchUp c;
    std::vector<Membership::Peer> peers = {peer("b", PeerState::kUp), peer("c", PeerState::kUp)};
    c.on_ownership(peers, shards({1, 2}));
    c.on_ownership(peers, shards({1, 2, 3}));
    BOOST_TEST(c.offer_for(0).empty());
    BOOST_TEST(c.offer_for(1).empty());
    BOOST_TEST(c.offer_for(7).empty());  // no such peer
}

BOOST_AUTO_TEST_CASE(a_peer_back_is_offered_every_shard_owned_while_it_was_down) {
    CatchUp c;
    std::vector<Membership::Peer> peers = {peer("b", PeerState::kUp), peer("c", PeerState::kUp)};
    c.on_ownership(peers, shards({1}));
    peers[1].state = PeerState::kDown;
    c.on_ownership(peers, shards({1, 2}));  // c's shards taken over
    c.on_ownership(peers, shards({2, 5}));  // and b's view changed meanwhile
    BOOST_TEST(c.offer_for(1).empty());     // not while it is down
    peers[1].state = PeerState::kUp;
    c.on_ownership(peers, shards({1}));  // shard 2 goes back to c: offered all the same
    BOOST_TEST(same(c.offer_for(1), shards({1, 2, 5})));
    BOOST_TEST(c.offer_for(0).empty());
    c.offer_sent(1);
    BOOST_TEST(c.offer_for(1).empty());
    c.on_ownership(peers, shards({1}));
    BOOST_TEST(c.offer_for(1).empty());  // once
}

BOOST_AUTO_TEST_CASE(an_offer_not_sent_before_the_peer_went_down_again_is_kept) {
    CatchUp c;
    std::vector<Membership::Peer> peers = {peer("b", PeerState::kDown)};
    c.on_ownership(peers, shards({4}));
    peers[0].state = PeerState::kUp;
    c.on_ownership(peers, shards({3}));
    BOOST_TEST(same(c.offer_for(0), shards({4})));
    peers[0].state = PeerState::kDown;
    c.on_ownership(peers, shards({6}));
    BOOST_TEST(c.offer_for(0).empty());
    peers[0].state = PeerState::kUp;
    c.on_ownership(peers, shards({3}));
    BOOST_TEST(same(c.offer_for(0), shards({4, 6})));
}

BOOST_AUTO_TEST_CASE(a_peer_not_yet_heard_at_start_up_is_offered_what_was_owned_since) {
    CatchUp c;
    std::vector<Membership::Peer> peers = {peer("b", PeerState::kUp),
                                           peer("c", PeerState::kUnknown)};
    peers[1].name.clear();
    c.on_ownership(peers, shards({8, 9}));
    peers[1].name = "c";
    peers[1].state = PeerState::kUp;
    c.on_ownership(peers, shards({8}));
    BOOST_TEST(same(c.offer_for(1), shards({8, 9})));
}

BOOST_AUTO_TEST_CASE(offered_shards_owned_here_are_filled_from_the_offering_peer) {
    CatchUp c;
    std::vector<Membership::Peer> peers = {peer("b", PeerState::kUp), peer("c", PeerState::kUp)};
    BOOST_TEST(c.offered(peers, "c", shards({1, 2, 3, 4})));
    auto due = c.fills_due(peers, shards({2, 3, 4, 9}), shards({4}));
    BOOST_TEST(due.size() == 1u);
    BOOST_TEST(same(due["c"], shards({2, 3})));  // not 1 (not owned), not 4 (being filled)
    BOOST_TEST(c.fills_due(peers, shards({1, 2, 3, 4}), {}).empty());  // taken once
}

BOOST_AUTO_TEST_CASE(the_offers_of_a_peer_not_up_wait_for_it) {
    CatchUp c;
    std::vector<Membership::Peer> peers = {peer("b", PeerState::kDown)};
    BOOST_TEST(c.offered(peers, "b", shards({1})));
    BOOST_TEST(c.offered(peers, "b", shards({2})));
    BOOST_TEST(c.fills_due(peers, shards({1, 2}), {}).empty());
    peers[0].state = PeerState::kUp;
    auto due = c.fills_due(peers, shards({1, 2}), {});
    BOOST_TEST(same(due["b"], shards({1, 2})));
}

BOOST_AUTO_TEST_CASE(an_offer_from_no_peer_is_refused) {
    CatchUp c;
    std::vector<Membership::Peer> peers = {peer("b", PeerState::kUp)};
    peers.push_back(peer("", PeerState::kUnknown));  // a peer not heard from: no name yet
    BOOST_TEST(!c.offered(peers, "mallory", shards({1})));
    BOOST_TEST(!c.offered(peers, "", shards({1})));
    BOOST_TEST(c.fills_due(peers, wire::ShardSet::all(), {}).empty());
}

BOOST_AUTO_TEST_CASE(nothing_due_when_no_offered_shard_is_owned_here) {
    CatchUp c;
    std::vector<Membership::Peer> peers = {peer("b", PeerState::kUp)};
    BOOST_TEST(c.offered(peers, "b", shards({1})));
    BOOST_TEST(c.fills_due(peers, shards({2}), {}).empty());
    BOOST_TEST(c.fills_due(peers, shards({1}), {}).empty());  // dropped, not kept
}

BOOST_AUTO_TEST_SUITE_END()
