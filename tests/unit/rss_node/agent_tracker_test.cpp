// Agent tracking: per shard, the highest contiguous shard sequence, gaps and their filling; what
// acknowledgements report; epochs; refusals.
#include "rss_node/agent_tracker.h"

#include <boost/test/unit_test.hpp>

namespace wire = rhythm::wire;
using rhythm::node::AgentTracker;

namespace {

// The shard sequence doubles as the stream-wide one: the tracker only looks at the former.
wire::SenderStamp stamp(std::uint64_t epoch, std::uint64_t shard_sequence) {
    wire::SenderStamp s;
    s.agent_id.fill(1);
    s.epoch = epoch;
    s.sequence = shard_sequence;
    s.shard_sequence = shard_sequence;
    return s;
}

std::uint64_t acked(const AgentTracker &t, std::uint16_t shard) {
    return t.find(stamp(1, 1).agent_id)->shards[shard].acked;
}

wire::Heartbeat heartbeat(std::uint64_t epoch, std::uint64_t next) {
    wire::Heartbeat hb;
    hb.agent_id.fill(1);
    hb.epoch = epoch;
    hb.next_sequence = next;
    hb.server_name = "web1";
    return hb;
}

const wire::ShardSet kAll = wire::ShardSet::all();

}  // namespace

BOOST_AUTO_TEST_SUITE(agent_tracker)

BOOST_AUTO_TEST_CASE(acks_the_highest_contiguous_shard_sequence_of_each_shard) {
    AgentTracker t;
    t.on_published(stamp(1, 1), 7, 0);
    t.on_published(stamp(1, 2), 7, 0);
    t.on_published(stamp(1, 4), 7, 0);  // 3 lost
    t.on_published(stamp(1, 5), 7, 0);
    t.on_published(stamp(1, 1), 8, 0);  // another shard, its own count
    BOOST_TEST(acked(t, 7) == 2u);
    BOOST_TEST(acked(t, 8) == 1u);
    t.on_published(stamp(1, 3), 7, 0);  // re-sent
    BOOST_TEST(acked(t, 7) == 5u);
    t.on_published(stamp(1, 2), 7, 0);  // duplicate
    BOOST_TEST(acked(t, 7) == 5u);
}

BOOST_AUTO_TEST_CASE(acks_report_the_owned_shards_that_moved_and_again_at_the_next_full_ack) {
    AgentTracker t;
    auto *a = t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);
    wire::ShardSet owned;
    owned.add(7);
    owned.add(8);
    t.on_published(stamp(1, 1), 7, 0);
    t.on_published(stamp(1, 1), 8, 0);
    t.on_published(stamp(1, 1), 9, 0);     // not owned (any more): not reported
    auto acks = t.take_acks(a, owned, 0);  // the first is a full one
    BOOST_TEST_REQUIRE(acks.size() == 2u);
    BOOST_TEST((acks[0].shard == 7 && acks[0].shard_sequence == 1));
    t.on_published(stamp(1, 2), 8, 10);
    acks = t.take_acks(a, owned, 10);
    BOOST_TEST_REQUIRE(acks.size() == 1u);
    BOOST_TEST((acks[0].shard == 8 && acks[0].shard_sequence == 2));
    BOOST_TEST(t.take_acks(a, owned, 20).empty());
    // The full ack repeats what moved since the last one (8), not every shard counted.
    acks = t.take_acks(a, owned, AgentTracker::kFullAckIntervalMs);
    BOOST_TEST_REQUIRE(acks.size() == 1u);
    BOOST_TEST((acks[0].shard == 8 && acks[0].shard_sequence == 2));
    // An idle agent gets none: 1,024 a second to each of 1,000 idle agents was 8 MiB/s.
    BOOST_TEST(t.take_acks(a, owned, 2 * AgentTracker::kFullAckIntervalMs).empty());
    // A change sent again (its ack lost on the way) is acknowledged again at once.
    t.on_published(stamp(1, 1), 7, 2010);
    acks = t.take_acks(a, owned, 2010);
    BOOST_TEST_REQUIRE(acks.size() == 1u);
    BOOST_TEST((acks[0].shard == 7 && acks[0].shard_sequence == 1));
}

BOOST_AUTO_TEST_CASE(acks_of_moved_shards_cover_every_bit_of_the_set_in_order) {
    AgentTracker t;
    auto *a = t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);
    t.take_acks(a, kAll, 0);  // the first, full one
    for (std::uint16_t shard : {1023, 0, 500, 9, 7, 8}) {
        t.on_published(stamp(1, 1), shard, 0);
    }
    t.on_published(stamp(1, 2), 500, 0);
    t.on_published(stamp(1, 4), 9, 0);  // past a gap: 9 stays at 1
    wire::ShardSet owned = kAll;
    owned.remove(8);
    auto acks = t.take_acks(a, owned, 10);
    BOOST_TEST_REQUIRE(acks.size() == 5u);
    std::uint16_t shards[] = {0, 7, 9, 500, 1023};
    std::uint64_t sequences[] = {1, 1, 1, 2, 1};
    for (std::size_t i = 0; i < acks.size(); ++i) {
        BOOST_TEST(acks[i].shard == shards[i]);
        BOOST_TEST(acks[i].shard_sequence == sequences[i]);
    }
}

BOOST_AUTO_TEST_CASE(a_forgotten_shard_waits_for_its_head) {
    AgentTracker t;
    t.on_published(stamp(1, 1), 7, 0);
    t.on_published(stamp(1, 3), 7, 0);  // 2 lost
    BOOST_TEST(acked(t, 7) == 1u);
    wire::ShardSet gained;
    gained.add(7);
    t.forget_shards(gained);
    BOOST_TEST(t.find(stamp(1, 1).agent_id)->ahead_total == 0u);
    t.on_published(stamp(1, 10), 7, 0);
    BOOST_TEST(acked(t, 7) == 0u);
    wire::Heartbeat hb = heartbeat(1, 11);
    hb.heads = {{7, 9}};
    t.on_heartbeat(hb, "rid", kAll, 0);
    BOOST_TEST(acked(t, 7) == 10u);
}

BOOST_AUTO_TEST_CASE(an_agent_is_found_by_the_identity_of_its_last_heartbeat_and_by_its_server) {
    AgentTracker t;
    t.on_heartbeat(heartbeat(1, 1), "rid-1", kAll, 1000);
    BOOST_TEST(t.find_by_routing_id("rid-1")->server_name == "web1");
    // A new connection (the agent reconnected): the old identity no longer finds it.
    t.on_heartbeat(heartbeat(1, 1), "rid-2", kAll, 1500);
    BOOST_TEST(t.find_by_routing_id("rid-1") == nullptr);
    BOOST_TEST(t.find_by_routing_id("rid-2") != nullptr);
    BOOST_TEST(t.reachable_agent_of_server("web1", 2000, 1500)->routing_id == "rid-2");
    BOOST_TEST(t.reachable_agent_of_server("web1", 3001, 1500) == nullptr);  // silent too long
    BOOST_TEST(t.reachable_agent_of_server("web2", 2000, 1500) == nullptr);
    t.forget_idle(700000, 600000);
    BOOST_TEST(t.find_by_routing_id("rid-2") == nullptr);
}

// What it publishes does not make a server reachable: a handover goes on the connection its
// heartbeats come on, which may be cut while its publications still arrive.
BOOST_AUTO_TEST_CASE(a_server_heard_only_on_its_updates_connection_is_not_reachable) {
    AgentTracker t;
    t.on_heartbeat(heartbeat(1, 1), "rid-1", kAll, 1000);
    t.on_published(stamp(1, 1), 7, 2400);
    BOOST_TEST(t.reachable_agent_of_server("web1", 2400, 1500) != nullptr);
    BOOST_TEST(t.reachable_agent_of_server("web1", 2600, 1500) == nullptr);
    BOOST_TEST(t.reachable_agent_of_server("web1", 2600, 10000) != nullptr);
}

BOOST_AUTO_TEST_CASE(a_server_that_restarts_is_between_two_agents_until_the_next_one_heartbeats) {
    AgentTracker t;
    BOOST_TEST(t.on_restarting("rid-1", 100).empty());  // not known: nothing to mark
    t.on_heartbeat(heartbeat(1, 1), "rid-1", kAll, 100);
    BOOST_TEST(!t.between_agents("web1", 200));
    BOOST_TEST(t.on_restarting("rid-1", 200) == "web1");
    BOOST_TEST(t.between_agents("web1", 300));
    BOOST_TEST(!t.between_agents("web2", 300));
    // The next agent: the same identity, a new epoch, a connection of its own.
    t.on_heartbeat(heartbeat(2, 1), "rid-2", kAll, 400);
    BOOST_TEST(!t.between_agents("web1", 400));
    // A next agent that never comes: the wait ends after kRestartWaitMs.
    t.on_restarting("rid-2", 1000);
    BOOST_TEST(t.between_agents("web1", 1000 + AgentTracker::kRestartWaitMs));
    BOOST_TEST(!t.between_agents("web1", 1001 + AgentTracker::kRestartWaitMs));
}

BOOST_AUTO_TEST_CASE(refusals_reach_the_agents_of_a_server_by_its_name) {
    AgentTracker t;
    t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);
    wire::SessionKey key;
    key.bytes.fill(7);
    t.add_refusal_for_server("web2", wire::Refusal{key, 9});
    BOOST_TEST(t.find(stamp(1, 1).agent_id)->refusals.empty());
    t.add_refusal_for_server("web1", wire::Refusal{key, 9});
    BOOST_TEST_REQUIRE(t.find(stamp(1, 1).agent_id)->refusals.size() == 1u);
    BOOST_TEST(t.find(stamp(1, 1).agent_id)->refusals[0].version == 9u);
}

// By an index of server names, not a walk of every agent: a failover to 3,000 web servers looks
// a name up for each session taken over. The index follows an agent that changes its name and
// one forgotten.
BOOST_AUTO_TEST_CASE(a_servers_agents_are_found_by_name_after_a_rename_and_not_once_forgotten) {
    AgentTracker t;
    wire::Heartbeat next = heartbeat(1, 1);
    next.agent_id.fill(2);
    t.on_heartbeat(heartbeat(1, 1), "rid1", kAll, 0);
    t.on_heartbeat(next, "rid2", kAll, 100);  // web1's next agent
    wire::SessionKey key;
    key.bytes.fill(7);
    t.add_refusal_for_server("web1", wire::Refusal{key, 9});
    BOOST_TEST(t.find(stamp(1, 1).agent_id)->refusals.size() == 1u);
    BOOST_TEST(t.find(next.agent_id)->refusals.size() == 1u);
    BOOST_TEST(t.reachable_agent_of_server("web1", 200, 1500)->routing_id == "rid2");
    next.server_name = "web3";  // renamed (its configuration changed)
    t.on_heartbeat(next, "rid2", kAll, 300);
    BOOST_TEST(t.reachable_agent_of_server("web1", 400, 1500)->routing_id == "rid1");
    BOOST_TEST(t.reachable_agent_of_server("web3", 400, 1500)->routing_id == "rid2");
    t.add_refusal_for_server("web3", wire::Refusal{key, 10});
    BOOST_TEST(t.find(stamp(1, 1).agent_id)->refusals.size() == 1u);
    BOOST_TEST(t.find(next.agent_id)->refusals.size() == 2u);
    t.on_restarting("rid2", 500);
    BOOST_TEST(t.between_agents("web3", 600));
    BOOST_TEST(!t.between_agents("web1", 600));
    t.forget_idle(100000, 99800);  // web1's first agent, last seen at 0
    BOOST_TEST(t.find(stamp(1, 1).agent_id) == nullptr);
    BOOST_TEST(t.reachable_agent_of_server("web1", 100000, 1000000) == nullptr);
    t.add_refusal_for_server("web1", wire::Refusal{key, 11});  // nobody left by that name
    std::vector<std::string> sent;
    t.send_waiting_refusals([&](const std::string &routing_id, AgentTracker::Agent *agent) {
        sent.push_back(routing_id);
        agent->refusals.clear();
    });
    BOOST_TEST(sent == std::vector<std::string>{"rid2"});
}

BOOST_AUTO_TEST_CASE(a_refusal_that_cannot_go_yet_goes_with_the_next_one_added) {
    AgentTracker t;
    wire::SessionKey key;
    key.bytes.fill(7);
    t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);
    std::vector<std::string> sent;
    bool full = true;  // its queue full: the first try fails
    auto send = [&](const std::string &routing_id, AgentTracker::Agent *agent) {
        sent.push_back(routing_id);
        if (!full) {
            agent->refusals.clear();
        }
    };
    t.add_refusal_for_server("web1", wire::Refusal{key, 9});
    t.send_waiting_refusals(send);
    t.send_waiting_refusals(send);  // nothing added since: no second try in the same turn
    BOOST_TEST(sent.size() == 1u);
    full = false;
    t.add_refusal_for_server("web1", wire::Refusal{key, 10});
    t.send_waiting_refusals(send);
    BOOST_TEST(sent.size() == 2u);
    BOOST_TEST(t.find(stamp(1, 1).agent_id)->refusals.empty());
}

BOOST_AUTO_TEST_CASE(refusals_are_sent_at_once_not_at_the_next_heartbeat) {
    // A server another has taken a session over from must drop its copy before the session
    // comes back to it: the node sends what is waiting at the end of the turn that queued it.
    AgentTracker t;
    t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);
    std::vector<std::string> sent;
    auto send = [&](const std::string &routing_id, AgentTracker::Agent *agent) {
        sent.push_back(routing_id);
        agent->refusals.clear();
    };
    t.send_waiting_refusals(send);
    BOOST_TEST(sent.empty());  // nothing queued: not even a look at the agents
    wire::SessionKey key;
    key.bytes.fill(7);
    t.add_refusal_for_server("web1", wire::Refusal{key, 9});
    t.send_waiting_refusals(send);
    BOOST_TEST(sent == std::vector<std::string>{"rid"});
    t.send_waiting_refusals(send);
    BOOST_TEST(sent.size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_operators_end_of_sessions_reaches_every_server_at_once) {
    // Any web server may hold a copy of an ended session: each is told, whatever its name.
    AgentTracker t;
    wire::Heartbeat other = heartbeat(1, 1);
    other.agent_id.fill(2);
    other.server_name = "web2";
    t.on_heartbeat(heartbeat(1, 1), "rid1", kAll, 0);
    t.on_heartbeat(other, "rid2", kAll, 0);
    std::vector<std::string> sent;
    auto send = [&](const std::string &routing_id, AgentTracker::Agent *agent) {
        sent.push_back(routing_id + (agent->all_sessions_ended ? ":all" : ":one"));
        agent->refusals.clear();
        agent->all_sessions_ended = false;
    };
    wire::SessionKey key;
    key.bytes.fill(7);
    t.add_refusal_for_all(wire::Refusal{key, 9});
    t.send_waiting_refusals(send);
    BOOST_TEST(sent == (std::vector<std::string>{"rid1:one", "rid2:one"}));
    sent.clear();
    t.end_all_sessions();
    t.send_waiting_refusals(send);
    BOOST_TEST(sent == (std::vector<std::string>{"rid1:all", "rid2:all"}));
}

BOOST_AUTO_TEST_CASE(gained_shards_are_to_be_asked_of_every_known_agent) {
    AgentTracker t;
    t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);
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

BOOST_AUTO_TEST_CASE(met_in_the_middle_of_an_epoch_a_shard_counts_from_the_head_it_is_given) {
    AgentTracker t;
    auto *a = t.on_heartbeat(heartbeat(1, 1000), "rid", kAll, 0);
    BOOST_TEST_REQUIRE(a != nullptr);
    BOOST_TEST(!a->resend_requested);
    BOOST_TEST(a->routing_id == "rid");
    BOOST_TEST(a->server_name == "web1");
    t.on_published(stamp(1, 42), 7, 0);  // before the head: kept aside
    t.on_published(stamp(1, 40), 7, 0);  // 41 was lost
    BOOST_TEST(!a->shards.at(7).counted);
    wire::Heartbeat hb = heartbeat(1, 1000);
    hb.heads = {{7, 39}};
    t.on_heartbeat(hb, "rid", kAll, 0);
    BOOST_TEST(acked(t, 7) == 40u);  // 41 is missing: 42 waits
    t.on_published(stamp(1, 41), 7, 0);
    BOOST_TEST(acked(t, 7) == 42u);
    hb.heads = {{7, 39}};  // a repeated head changes nothing
    t.on_heartbeat(hb, "rid", kAll, 0);
    BOOST_TEST(acked(t, 7) == 42u);
}

BOOST_AUTO_TEST_CASE(a_head_moves_a_counted_shard_past_what_it_missed_while_away) {
    AgentTracker t;
    t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);  // seen from the start
    t.on_published(stamp(1, 1), 7, 0);
    t.on_published(stamp(1, 6), 7, 0);  // 2 to 5 went to the others while this node was away
    BOOST_TEST(acked(t, 7) == 1u);
    // The agent publishes the shard again after head 6: the node counts from there.
    wire::Heartbeat hb = heartbeat(1, 7);
    hb.heads = {{7, 6}};
    t.on_heartbeat(hb, "rid", kAll, 0);
    BOOST_TEST(acked(t, 7) == 6u);
    t.on_published(stamp(1, 7), 7, 0);
    BOOST_TEST(acked(t, 7) == 7u);
    // A head of a shard the node does not own (any more) is not taken.
    t.on_published(stamp(1, 1), 8, 0);
    wire::ShardSet owned;
    owned.add(7);
    hb.heads = {{8, 5}};
    t.on_heartbeat(hb, "rid", owned, 0);
    BOOST_TEST(acked(t, 8) == 1u);
}

BOOST_AUTO_TEST_CASE(a_change_refused_for_memory_is_not_acked_until_it_comes_again) {
    AgentTracker t;
    auto *a = t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);
    t.on_published(stamp(1, 1), 7, 0);
    t.on_refused(stamp(1, 2), 7, 0);  // no room for it
    t.on_published(stamp(1, 3), 7, 0);
    BOOST_TEST(acked(t, 7) == 1u);
    BOOST_TEST(a->refusing.contains(7));
    BOOST_TEST(a->refused == 1u);
    t.on_refused(stamp(1, 2), 7, 0);  // re-sent, still no room
    BOOST_TEST(acked(t, 7) == 1u);
    BOOST_TEST(a->refused == 2u);
    t.on_published(stamp(1, 2), 7, 0);  // re-sent once there was room
    BOOST_TEST(acked(t, 7) == 3u);
    BOOST_TEST(!a->refusing.contains(7));
}

BOOST_AUTO_TEST_CASE(a_head_past_a_refused_change_ends_the_refusal) {
    AgentTracker t;
    auto *a = t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);
    t.on_refused(stamp(1, 1), 7, 0);
    t.on_refused(stamp(1, 2), 7, 0);
    BOOST_TEST(a->refusing.contains(7));
    // The agent publishes the shard again after head 2 (the node has room again).
    wire::Heartbeat hb = heartbeat(1, 3);
    hb.heads = {{7, 2}};
    t.on_heartbeat(hb, "rid", kAll, 0);
    BOOST_TEST(acked(t, 7) == 2u);
    BOOST_TEST(!a->refusing.contains(7));
    // A refusal after the head counts again; a new epoch forgets it all.
    t.on_refused(stamp(1, 3), 7, 0);
    BOOST_TEST(a->refusing.contains(7));
    t.on_published(stamp(2, 1), 7, 0);
    BOOST_TEST(!a->refusing.contains(7));
    BOOST_TEST(a->refused == 0u);
}

BOOST_AUTO_TEST_CASE(a_stream_seen_from_its_start_counts_from_zero) {
    AgentTracker t;
    t.on_heartbeat(heartbeat(1, 1), "rid", kAll, 0);  // nothing published yet
    t.on_published(stamp(1, 2), 7, 0);                // 1 was lost
    BOOST_TEST(acked(t, 7) == 0u);
    t.on_published(stamp(1, 1), 7, 0);
    BOOST_TEST(acked(t, 7) == 2u);
}

BOOST_AUTO_TEST_CASE(a_new_epoch_restarts_the_count_and_an_old_one_is_ignored) {
    AgentTracker t;
    auto id = stamp(1, 1).agent_id;
    t.on_published(stamp(5, 1), 7, 0);
    t.on_published(stamp(5, 2), 7, 0);
    BOOST_TEST(t.find(id)->shards.at(7).acked == 2u);
    t.on_published(stamp(6, 1), 8, 0);
    BOOST_TEST(t.find(id)->epoch == 6u);
    BOOST_TEST(!t.find(id)->shards[7].counted);
    BOOST_TEST(t.find(id)->shards[7].acked == 0u);
    BOOST_TEST(t.find(id)->shards.at(8).acked == 1u);
    t.on_published(stamp(5, 101), 8, 0);
    BOOST_TEST(t.find(id)->epoch == 6u);
    BOOST_TEST(t.find(id)->shards.at(8).acked == 1u);
}

BOOST_AUTO_TEST_CASE(refusals_queue_and_idle_agents_are_forgotten) {
    AgentTracker t;
    auto id = stamp(1, 1).agent_id;
    t.on_published(stamp(1, 1), 7, 1000);
    t.add_refusal(id, wire::Refusal{wire::SessionKey{}, 4});
    BOOST_TEST(t.find(id)->refusals.size() == 1u);
    t.forget_idle(2000, 5000);
    BOOST_TEST(t.size() == 1u);
    t.forget_idle(7000, 5000);
    BOOST_TEST(t.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
