// Agent tracking: the highest contiguous sequence, gaps and their filling, epochs, refusals.
#include "rss_node/agent_tracker.h"

#include <boost/test/unit_test.hpp>

namespace wire = rhythm::wire;
using rhythm::node::AgentTracker;

namespace {

wire::SenderStamp stamp(std::uint64_t epoch, std::uint64_t sequence) {
    wire::SenderStamp s;
    s.agent_id.fill(1);
    s.epoch = epoch;
    s.sequence = sequence;
    return s;
}

wire::Heartbeat heartbeat(std::uint64_t epoch, std::uint64_t next) {
    wire::Heartbeat hb;
    hb.agent_id.fill(1);
    hb.epoch = epoch;
    hb.next_sequence = next;
    hb.server_name = "web1";
    return hb;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(agent_tracker)

BOOST_AUTO_TEST_CASE(acks_the_highest_contiguous_sequence) {
    AgentTracker t;
    t.on_published(stamp(1, 1), 0);
    t.on_published(stamp(1, 2), 0);
    t.on_published(stamp(1, 4), 0);  // 3 lost
    t.on_published(stamp(1, 5), 0);
    auto id = stamp(1, 1).agent_id;
    BOOST_TEST(t.find(id)->acked == 2u);
    t.on_published(stamp(1, 3), 0);  // re-sent
    BOOST_TEST(t.find(id)->acked == 5u);
    t.on_published(stamp(1, 2), 0);  // duplicate
    BOOST_TEST(t.find(id)->acked == 5u);
}

BOOST_AUTO_TEST_CASE(refusals_reach_the_agents_of_a_server_by_its_name) {
    AgentTracker t;
    t.on_heartbeat(heartbeat(1, 1), "rid", 0);
    wire::SessionKey key;
    key.bytes.fill(7);
    t.add_refusal_for_server("web2", wire::Refusal{key, 9});
    BOOST_TEST(t.find(stamp(1, 1).agent_id)->refusals.empty());
    t.add_refusal_for_server("web1", wire::Refusal{key, 9});
    BOOST_TEST_REQUIRE(t.find(stamp(1, 1).agent_id)->refusals.size() == 1u);
    BOOST_TEST(t.find(stamp(1, 1).agent_id)->refusals[0].version == 9u);
}

BOOST_AUTO_TEST_CASE(gained_shards_are_to_be_asked_of_every_known_agent) {
    AgentTracker t;
    t.on_heartbeat(heartbeat(1, 1), "rid", 0);
    wire::ShardSet gained;
    gained.add(3);
    gained.add(700);
    t.request_resend(gained);
    wire::ShardSet more;
    more.add(4);
    t.request_resend(more);
    const auto *a = t.find(stamp(1, 1).agent_id);
    BOOST_TEST_REQUIRE(a != nullptr);
    BOOST_TEST(a->resend_shards.count() == 3u);
    BOOST_TEST(a->resend_shards.contains(3));
    BOOST_TEST(a->resend_shards.contains(4));
    BOOST_TEST(a->resend_shards.contains(700));
}

BOOST_AUTO_TEST_CASE(joins_a_stream_where_it_meets_it) {
    AgentTracker t;
    auto *a = t.on_heartbeat(heartbeat(1, 1000), "rid", 0);
    BOOST_TEST_REQUIRE(a != nullptr);
    BOOST_TEST(a->acked == 999u);
    BOOST_TEST(!a->resend_requested);
    BOOST_TEST(a->routing_id == "rid");
    BOOST_TEST(a->server_name == "web1");
    t.on_published(stamp(1, 1000), 0);
    BOOST_TEST(t.find(a == nullptr ? wire::AgentId{} : stamp(1, 1).agent_id)->acked == 1000u);
}

BOOST_AUTO_TEST_CASE(a_new_epoch_restarts_the_count_and_an_old_one_is_ignored) {
    AgentTracker t;
    auto id = stamp(1, 1).agent_id;
    t.on_published(stamp(5, 100), 0);
    BOOST_TEST(t.find(id)->acked == 100u);
    t.on_published(stamp(6, 1), 0);
    BOOST_TEST(t.find(id)->epoch == 6u);
    BOOST_TEST(t.find(id)->acked == 1u);
    t.on_published(stamp(5, 101), 0);
    BOOST_TEST(t.find(id)->epoch == 6u);
    BOOST_TEST(t.find(id)->acked == 1u);
}

BOOST_AUTO_TEST_CASE(refusals_queue_and_idle_agents_are_forgotten) {
    AgentTracker t;
    auto id = stamp(1, 1).agent_id;
    t.on_published(stamp(1, 1), 1000);
    t.add_refusal(id, wire::Refusal{wire::SessionKey{}, 4});
    BOOST_TEST(t.find(id)->refusals.size() == 1u);
    t.forget_idle(2000, 5000);
    BOOST_TEST(t.size() == 1u);
    t.forget_idle(7000, 5000);
    BOOST_TEST(t.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
