// One node's row on server-status: its state (unknown, up, full, down), what it lacks and since
// when (a change settled without it is dated from its last answer), what it refused.
#include "backup/agent_report.h"

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <string>
#include <vector>

using rhythm::AgentReport;
using rhythm::MonotonicTime;
using rhythm::NodeState;
using rhythm::ReplicationWindow;
using rhythm::WallTime;
namespace wire = rhythm::wire;

namespace {

constexpr std::uint64_t kNowMs = 50000;
constexpr std::int64_t kWallUs = 1'700'000'000'000'000;
constexpr MonotonicTime kNow = MonotonicTime::from_ms(kNowMs);
constexpr WallTime kWall(kWallUs);

const std::string kEndpoint = "tcp://127.0.0.1:7301";
const std::string kName = "bank-1";

rhythm::SessionId id_of(std::uint32_t n) {
    rhythm::SessionId id;
    std::memcpy(id.bytes.data(), &n, sizeof n);
    return id;
}

// Every node of these tests owns shard 7.
wire::ShardSet owned_shards() {
    wire::ShardSet owned;
    owned.add(7);
    return owned;
}

// A node's first answer: it owns shard 7 and holds nothing of it yet.
void first_answer(ReplicationWindow &w, std::size_t node) {
    std::vector<wire::ShardSequence> none;
    w.on_ack(node, ReplicationWindow::Ack{owned_shards(), false, 0, {}, &none});
}

void publish(ReplicationWindow &w, std::uint32_t shard, std::int64_t saved_at_us) {
    w.add(shard, w.number(shard), id_of(shard), 1, WallTime(saved_at_us), kNow, "message");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(agent_report)

BOOST_AUTO_TEST_CASE(a_node_that_never_answered_is_unknown_and_nameless) {
    ReplicationWindow w(1);
    rhythm::NodeReport r =
        AgentReport::row({&kEndpoint, &kName, MonotonicTime()}, w.figures(0), false, kNow, kWall);
    BOOST_TEST((r.state == NodeState::kUnknown));
    BOOST_TEST(std::string(r.endpoint) == kEndpoint);
    BOOST_TEST(std::string(r.name).empty());
    BOOST_TEST(r.last_answer_us == 0);
}

BOOST_AUTO_TEST_CASE(an_answering_node_is_up_or_full_with_what_it_lacks_since_when) {
    ReplicationWindow w(1);
    first_answer(w, 0);
    publish(w, 7, kWallUs - 3000);
    AgentReport::NodeView view{&kEndpoint, &kName, MonotonicTime::from_ms(kNowMs - 20)};
    rhythm::NodeReport r = AgentReport::row(view, w.figures(0), true, kNow, kWall);
    BOOST_TEST((r.state == NodeState::kUp));
    BOOST_TEST(std::string(r.name) == kName);
    BOOST_TEST(r.last_answer_us == kWallUs - 20000);
    BOOST_TEST(r.unacknowledged == 1u);
    BOOST_TEST(r.oldest_unacknowledged_us == kWallUs - 3000);
    std::vector<wire::ShardSequence> none;
    w.on_ack(0, ReplicationWindow::Ack{owned_shards(), true, 4, owned_shards(), &none});
    r = AgentReport::row(view, w.figures(0), true, kNow, kWall);
    BOOST_TEST((r.state == NodeState::kFull));
    BOOST_TEST(r.refused == 4u);
}

BOOST_AUTO_TEST_CASE(a_node_that_lacks_what_settled_without_it_is_behind_since_its_last_answer) {
    ReplicationWindow w(2);
    first_answer(w, 0);
    first_answer(w, 1);
    w.on_down(1);
    publish(w, 7, kWallUs - 1000);
    std::vector<wire::ShardSequence> held{{7, 1}};
    w.on_ack(0, ReplicationWindow::Ack{owned_shards(), false, 0, {}, &held});
    w.settle([](const ReplicationWindow::Change &) {});
    AgentReport::NodeView away{&kEndpoint, &kName, MonotonicTime::from_ms(kNowMs - 5000)};
    rhythm::NodeReport r = AgentReport::row(away, w.figures(1), false, kNow, kWall);
    BOOST_TEST((r.state == NodeState::kDown));
    BOOST_TEST(r.unacknowledged == 1u);
    BOOST_TEST(r.oldest_unacknowledged_us == kWallUs - 5'000'000);
}

BOOST_AUTO_TEST_SUITE_END()
