// The node's page for Prometheus (node_metrics.h): every status figure, counters as _total,
// each peer labelled.
#include "rss_node/node_metrics.h"

#include <boost/test/unit_test.hpp>
#include <string>

#include "tests/unit/rss_node/test_values.h"

using namespace rhythm::node;

namespace {

bool has_line(const std::string &text, const std::string &line) {
    return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(node_metrics)

BOOST_AUTO_TEST_CASE(every_status_figure_with_each_peer_labelled) {
    SessionStore store(1 << 20);
    rhythm::wire::SessionRecord r;
    r.key = test::key_of(1);
    r.version = 1;
    r.expires_at_ms = test::kNow + test::kHour;
    r.origin = "web-a";
    r.data = "count=1";
    store.apply(r, test::kNow);
    NodeCounters counters{};
    counters.fetches = 7;
    counters.sessions_ended = 2;
    std::vector<Membership::Peer> peers(2);
    peers[0].endpoint = "tcp://10.0.0.2:5557";
    peers[0].name = "node-b";
    peers[0].state = PeerState::kUp;
    peers[0].last_pong_ms = 9500;
    peers[1].endpoint = "tcp://10.0.0.3:5557";
    peers[1].state = PeerState::kDown;
    NodeStatus status;
    status.name = "node-a";
    status.store = &store;
    status.counters = &counters;
    status.peers = &peers;
    status.owned = test::shards({1, 2, 3});
    status.connections_updates = 4;
    status.mono_ms = 10000;
    std::string text = rhythm::node::node_metrics(status, 123456);
    BOOST_TEST(has_line(text, "rss_node_info{name=\"node-a\",protocol_version=\"7\"} 1"));
    BOOST_TEST(has_line(text, "rss_node_sessions 1"));
    BOOST_TEST(has_line(text, "rss_node_max_memory_bytes 1048576"));
    BOOST_TEST(has_line(text, "rss_node_resident_bytes 123456"));
    BOOST_TEST(has_line(text, "rss_node_shards_owned 3"));
    BOOST_TEST(has_line(text, "# TYPE rss_node_fetches_total counter"));
    BOOST_TEST(has_line(text, "rss_node_fetches_total 7"));
    BOOST_TEST(has_line(text, "rss_node_sessions_ended_total 2"));
    BOOST_TEST(has_line(text, "rss_node_connections{socket=\"updates\"} 4"));
    BOOST_TEST(has_line(text, "rss_node_peer_up{peer=\"tcp://10.0.0.2:5557\",name=\"node-b\"} 1"));
    BOOST_TEST(has_line(text, "rss_node_peer_up{peer=\"tcp://10.0.0.3:5557\",name=\"\"} 0"));
    BOOST_TEST(has_line(
        text, "rss_node_peer_last_seen_seconds{peer=\"tcp://10.0.0.2:5557\",name=\"node-b\"} 0.5"));
    // Every counter of the status has its metric.
    for (const CounterField &c : kCounterFields) {
        BOOST_TEST(text.find(std::string("\nrss_node_") + c.name + "_total ") != std::string::npos,
                   c.name);
    }
}

BOOST_AUTO_TEST_CASE(the_process_resident_memory_is_read) {
    BOOST_TEST(resident_bytes() > 1024u * 1024u);
}

BOOST_AUTO_TEST_SUITE_END()
