// The status JSON: every field docs/rss_node.md lists, in that order, each counter under its own
// name with its own value, `updates_refused` derived, the peers and the members.
#include "rss_node/node_status.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

using rhythm::node::kCounterFields;
using rhythm::node::Membership;
using rhythm::node::NodeCounters;
using rhythm::node::NodeStatus;
using rhythm::node::PeerState;
using rhythm::node::SessionStore;

namespace {

// The keys of the top-level object, in order (the status has no string holding a brace).
std::vector<std::string> top_level_keys(const std::string &json) {
    std::vector<std::string> keys;
    int depth = 0;
    bool in_string = false;
    std::string current;
    for (std::size_t i = 0; i < json.size(); ++i) {
        char c = json[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
                if (depth == 1 && i + 1 < json.size() && json[i + 1] == ':') {
                    keys.push_back(current);
                }
            } else {
                current += c;
            }
        } else if (c == '"') {
            in_string = true;
            current.clear();
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return keys;
}

struct Fixture {
    SessionStore store{1 << 20};
    NodeCounters counters;
    std::vector<Membership::Peer> peers;
    NodeStatus status;

    Fixture() {
        status.name = "node-a";
        status.updates_endpoint = "tcp://127.0.0.1:5556";
        status.queries_endpoint = "tcp://127.0.0.1:5557";
        status.store = &store;
        status.counters = &counters;
        status.peers = &peers;
        status.replicas = 2;
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(node_status)

BOOST_FIXTURE_TEST_CASE(every_documented_field_in_its_order, Fixture) {
    const std::vector<std::string> documented = {"name",
                                                 "protocol_version",
                                                 "uptime_seconds",
                                                 "updates_endpoint",
                                                 "queries_endpoint",
                                                 "sessions",
                                                 "tombstones",
                                                 "bytes",
                                                 "payload_bytes",
                                                 "max_memory",
                                                 "full",
                                                 "shards_subscribed",
                                                 "shards_owned",
                                                 "shards_owned_list",
                                                 "shards_short",
                                                 "shards_short_list",
                                                 "ownership_decided",
                                                 "ownership_changes",
                                                 "snapshots_requested",
                                                 "snapshot_records_applied",
                                                 "catch_up_offers_sent",
                                                 "catch_up_offers_received",
                                                 "replicas",
                                                 "updates_applied",
                                                 "updates_refused",
                                                 "refused_stale",
                                                 "refused_memory",
                                                 "refused_implausible",
                                                 "conflicts",
                                                 "updates_duplicate",
                                                 "expired_on_arrival",
                                                 "sessions_expired",
                                                 "malformed_frames",
                                                 "version_mismatches",
                                                 "fetches",
                                                 "fetch_hits",
                                                 "handovers_asked",
                                                 "handovers_newer",
                                                 "handovers_unanswered",
                                                 "handovers_given_up",
                                                 "handovers_skipped",
                                                 "handovers_held_for_restart",
                                                 "sessions_ended",
                                                 "end_sessions_refused",
                                                 "heartbeats",
                                                 "agents",
                                                 "snapshots_served",
                                                 "replies_dropped",
                                                 "connections_refused",
                                                 "connections_dropped",
                                                 "connections_silent",
                                                 "connections_updates",
                                                 "connections_queries",
                                                 "unfinished_bytes",
                                                 "curve",
                                                 "curve_clients",
                                                 "curve_admitted",
                                                 "curve_refused",
                                                 "handshake_failures",
                                                 "metrics_refused",
                                                 "peers",
                                                 "members"};
    BOOST_TEST(top_level_keys(rhythm::node::status_json(status)) == documented,
               boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(each_counter_shows_its_own_value, Fixture) {
    std::uint64_t value = 101;
    for (const auto &counter : kCounterFields) {
        counters.*counter.member = value++;
    }
    std::string json = rhythm::node::status_json(status);
    value = 101;
    for (const auto &counter : kCounterFields) {
        std::string field = "\"" + std::string(counter.name) + "\":" + std::to_string(value++);
        BOOST_TEST(json.find(field) != std::string::npos, field);
    }
}

BOOST_FIXTURE_TEST_CASE(updates_refused_is_stale_and_memory_refusals, Fixture) {
    counters.refused_stale = 3;
    counters.refused_memory = 4;
    std::string json = rhythm::node::status_json(status);
    BOOST_TEST(json.find("\"updates_refused\":7,") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(shards_peers_and_members, Fixture) {
    status.owned.add(0);
    status.owned.add(1);
    status.owned.add(7);
    status.short_shards.add(7);
    status.ownership_decided = true;
    status.mono_ms = 5000;
    Membership::Peer b;
    b.endpoint = "tcp://b";
    b.name = "node-b";
    b.state = PeerState::kUp;
    b.last_pong_ms = 4200;
    Membership::Peer c;
    c.endpoint = "tcp://c";
    peers = {b, c};
    std::string json = rhythm::node::status_json(status);
    BOOST_TEST(json.find(R"("shards_owned":3,"shards_owned_list":"0-1,7","shards_short":1,)"
                         R"("shards_short_list":"7","ownership_decided":true,)") !=
               std::string::npos);
    BOOST_TEST(json.find(R"("peers":[{"endpoint":"tcp://b","name":"node-b","state":"up",)"
                         R"("last_seen_ms_ago":800},{"endpoint":"tcp://c","name":"",)"
                         R"("state":"unknown","last_seen_ms_ago":0}])") != std::string::npos);
    BOOST_TEST(json.find(R"("members":[{"name":"node-a","endpoint":"tcp://127.0.0.1:5557",)"
                         R"("state":"up"},{"name":"node-b","endpoint":"tcp://b","state":"up"},)"
                         R"({"name":"","endpoint":"tcp://c","state":"unknown"}]})") !=
               std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
