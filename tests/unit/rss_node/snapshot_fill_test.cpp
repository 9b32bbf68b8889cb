// The fills of gained shards from peers' snapshots, rule by rule: whom each fill is asked of,
// when a request goes (and goes again after a busy answer), which records are applied, how a
// fill ends, and when it is given up and its shards handed to the agents' re-sends; with the log
// lines the node writes.
#include "rss_node/snapshot_fill.h"

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "tests/unit/rss_node/test_values.h"

namespace wire = rhythm::wire;
using rhythm::node::Membership;
using rhythm::node::PeerState;
using rhythm::node::SnapshotFills;
using rhythm::node::test::next_key_in;
using rhythm::node::test::peer;
using rhythm::node::test::shards;

namespace {

constexpr std::uint64_t kNow = 5000000;

wire::SnapshotRecord record_in(std::uint32_t shard, std::uint64_t request_id) {
    wire::SnapshotRecord r;
    r.request_id = request_id;
    std::uint64_t n = 0;
    r.record.key = next_key_in(shard, &n);
    return r;
}

// The requests a fill sends, and whether the peer's socket takes them.
struct Sender {
    bool takes = true;
    std::vector<std::pair<std::size_t, wire::SnapshotRequest>> sent;

    SnapshotFills::Send send() {
        return [this](std::size_t peer, const wire::SnapshotRequest &request) {
            if (takes) {
                sent.emplace_back(peer, request);
            }
            return takes;
        };
    }
};

// What the code under test writes on stderr meanwhile (the node's log).
class StderrCapture {
  public:
    StderrCapture() : file_(std::tmpfile()) {
        std::fflush(stderr);
        saved_ = dup(2);
        dup2(fileno(file_), 2);
    }
    ~StderrCapture() {
        restore();
        std::fclose(file_);
    }
    std::string text() {
        restore();
        std::string out;
        std::rewind(file_);
        char buf[512];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, file_)) > 0) {
            out.append(buf, n);
        }
        return out;
    }

  private:
    void restore() {
        if (saved_ >= 0) {
            std::fflush(stderr);
            dup2(saved_, 2);
            close(saved_);
            saved_ = -1;
        }
    }
    std::FILE *file_;
    int saved_ = -1;
};

// Two peers up (node-b, node-c) and one down (node-d); node-b asked for shards 1 and 2, node-c
// for shard 3.
struct TwoFills {
    std::vector<Membership::Peer> peers{peer("node-b", PeerState::kUp),
                                        peer("node-c", PeerState::kUp),
                                        peer("node-d", PeerState::kDown)};
    SnapshotFills fills;
    std::uint64_t next_id = 40;
    Sender sender;

    TwoFills() {
        fills.ask({{"node-b", shards({1, 2})}, {"node-c", shards({3})}}, peers, &next_id);
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(snapshot_fill)

BOOST_FIXTURE_TEST_CASE(one_fill_per_source_that_is_up_each_with_the_next_request_id, TwoFills) {
    BOOST_TEST_REQUIRE(fills.size() == 2u);
    BOOST_TEST(fills.fills()[0].peer == 0u);
    BOOST_TEST(fills.fills()[0].request_id == 40u);
    BOOST_TEST((fills.fills()[0].shards == shards({1, 2})));
    BOOST_TEST(fills.fills()[1].peer == 1u);
    BOOST_TEST(fills.fills()[1].request_id == 41u);
    BOOST_TEST(next_id == 42u);

    // A source that is down, or not known by that name, gets no fill: the re-sends fill it.
    fills.ask({{"node-d", shards({4})}, {"node-x", shards({5})}}, peers, &next_id);
    BOOST_TEST(fills.size() == 2u);
    BOOST_TEST(next_id == 42u);
}

BOOST_FIXTURE_TEST_CASE(the_shards_of_live_fills_are_being_filled, TwoFills) {
    BOOST_TEST(fills.filling(1));
    BOOST_TEST(fills.filling(3));
    BOOST_TEST(!fills.filling(4));
    BOOST_TEST((fills.shards() == shards({1, 2, 3})));
    BOOST_TEST(SnapshotFills().shards().count() == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_request_goes_once_when_the_socket_takes_it, TwoFills) {
    sender.takes = false;
    BOOST_TEST(fills.send_due(kNow, sender.send()) == 0u);
    sender.takes = true;
    BOOST_TEST(fills.send_due(kNow + 1, sender.send()) == 2u);
    BOOST_TEST_REQUIRE(sender.sent.size() == 2u);
    BOOST_TEST(sender.sent[0].first == 0u);
    BOOST_TEST(sender.sent[0].second.request_id == 40u);
    BOOST_TEST((sender.sent[0].second.shards == shards({1, 2})));
    BOOST_TEST(sender.sent[1].first == 1u);
    BOOST_TEST(fills.send_due(kNow + 2, sender.send()) == 0u);
    BOOST_TEST(sender.sent.size() == 2u);
}

BOOST_FIXTURE_TEST_CASE(a_busy_peer_is_asked_again_a_second_later, TwoFills) {
    fills.send_due(kNow, sender.send());
    fills.on_error(wire::ErrorReply{40, wire::ErrorCode::kBusy, "too many snapshots in progress"},
                   "node-b", kNow + 100);
    BOOST_TEST(fills.size() == 2u);
    BOOST_TEST(fills.filling(1));  // still being filled meanwhile
    sender.sent.clear();
    BOOST_TEST(fills.send_due(kNow + 100 + SnapshotFills::kRetryMs - 1, sender.send()) == 0u);
    BOOST_TEST(fills.send_due(kNow + 100 + SnapshotFills::kRetryMs, sender.send()) == 1u);
    BOOST_TEST_REQUIRE(sender.sent.size() == 1u);
    BOOST_TEST(sender.sent[0].second.request_id == 40u);
}

BOOST_FIXTURE_TEST_CASE(a_record_is_applied_while_its_fill_is_live_and_its_shard_owned, TwoFills) {
    fills.send_due(kNow, sender.send());
    wire::ShardSet owned = shards({1, 3});
    BOOST_TEST(fills.accept(record_in(1, 40), owned, kNow + 1));
    // A shard lost again meanwhile: not kept.
    BOOST_TEST(!fills.accept(record_in(2, 40), owned, kNow + 2));
    // A request this node does not know (given up, or never asked).
    BOOST_TEST(!fills.accept(record_in(1, 99), owned, kNow + 3));
    fills.on_end(40, "node-b");
    BOOST_TEST(!fills.accept(record_in(1, 40), owned, kNow + 4));
}

BOOST_FIXTURE_TEST_CASE(snapshot_end_ends_the_fill, TwoFills) {
    StderrCapture log;
    fills.on_end(41, "node-c");
    fills.on_end(77, "node-c");  // not a fill of ours: nothing
    std::string text = log.text();
    BOOST_TEST(fills.size() == 1u);
    BOOST_TEST(!fills.filling(3));
    BOOST_TEST(fills.filling(1));
    BOOST_TEST(text.find("info: RN0204: filled 1 shard(s) from peer node-c\n") !=
               std::string::npos);
    BOOST_TEST(text.find("filled", text.find("filled") + 1) == std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(a_refusal_gives_the_fill_up_without_asking_the_agents_again, TwoFills) {
    fills.send_due(kNow, sender.send());
    StderrCapture log;
    fills.on_error(wire::ErrorReply{40, wire::ErrorCode::kUnsupported, "no snapshots here"},
                   "node-b", kNow + 5);
    std::string text = log.text();
    BOOST_TEST(fills.size() == 1u);
    BOOST_TEST(!fills.filling(1));
    BOOST_TEST(
        text.find("warn: RN0205: peer node-b refused a snapshot of 2 shard(s): no snapshots here; "
                  "the agents re-send them\n") != std::string::npos);
    BOOST_TEST(fills.give_up(peers, kNow + 6).count() == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_fill_whose_peer_went_down_is_given_up_for_the_agents_to_resend,
                        TwoFills) {
    fills.send_due(kNow, sender.send());
    BOOST_TEST(fills.give_up(peers, kNow + 1).count() == 0u);
    peers[0].state = PeerState::kDown;
    StderrCapture log;
    wire::ShardSet resend = fills.give_up(peers, kNow + 2);
    std::string text = log.text();
    BOOST_TEST((resend == shards({1, 2})));
    BOOST_TEST(fills.size() == 1u);
    BOOST_TEST(fills.fills()[0].request_id == 41u);
    BOOST_TEST(
        text.find("warn: RN0206: peer node-b went down during a snapshot of 2 shard(s): the agents "
                  "are asked to re-send them\n") != std::string::npos);
    // Its records, still on the way, are not applied.
    BOOST_TEST(!fills.accept(record_in(1, 40), shards({1, 2}), kNow + 3));
}

BOOST_FIXTURE_TEST_CASE(a_fill_that_sends_nothing_for_10_s_is_given_up, TwoFills) {
    fills.send_due(kNow, sender.send());
    // node-c's snapshot progresses; node-b's sends nothing.
    fills.accept(record_in(3, 41), shards({3}), kNow + 5000);
    BOOST_TEST(fills.give_up(peers, kNow + SnapshotFills::kStallMs).count() == 0u);
    StderrCapture log;
    wire::ShardSet resend = fills.give_up(peers, kNow + SnapshotFills::kStallMs + 1);
    std::string text = log.text();
    BOOST_TEST((resend == shards({1, 2})));
    BOOST_TEST(fills.size() == 1u);
    BOOST_TEST(
        text.find("warn: RN0207: peer node-b sent nothing of a snapshot of 2 shard(s) for 10 s: "
                  "given up; the agents re-send them\n") != std::string::npos);
    // node-c's lasts 10 s from its last record.
    BOOST_TEST(fills.give_up(peers, kNow + 5000 + SnapshotFills::kStallMs).count() == 0u);
    BOOST_TEST((fills.give_up(peers, kNow + 5001 + SnapshotFills::kStallMs) == shards({3})));
    BOOST_TEST(fills.size() == 0u);
}

BOOST_FIXTURE_TEST_CASE(a_record_of_a_shard_no_longer_owned_is_progress_all_the_same, TwoFills) {
    fills.send_due(kNow, sender.send());
    BOOST_TEST(!fills.accept(record_in(2, 40), shards({}), kNow + 9000));
    // node-c's, silent, is given up; node-b's is not.
    BOOST_TEST((fills.give_up(peers, kNow + SnapshotFills::kStallMs + 1) == shards({3})));
    BOOST_TEST(fills.filling(1));
}

BOOST_FIXTURE_TEST_CASE(a_request_not_sent_yet_does_not_stall, TwoFills) {
    sender.takes = false;
    fills.send_due(kNow, sender.send());
    BOOST_TEST(fills.give_up(peers, kNow + 10 * SnapshotFills::kStallMs).count() == 0u);
    fills.send_due(kNow, sender.send());
    sender.takes = true;
    fills.send_due(kNow, sender.send());
    fills.on_error(wire::ErrorReply{41, wire::ErrorCode::kBusy, "busy"}, "node-c", kNow);
    BOOST_TEST((fills.give_up(peers, kNow + SnapshotFills::kStallMs + 1) == shards({1, 2})));
    BOOST_TEST(fills.size() == 1u);
    BOOST_TEST(fills.fills()[0].request_id == 41u);  // waiting to be asked again: kept
}

BOOST_AUTO_TEST_SUITE_END()
