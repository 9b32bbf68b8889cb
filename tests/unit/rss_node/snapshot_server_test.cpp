// The snapshots a node serves, rule by rule, over a real store and a requester that takes what it
// is sent, falls behind or goes: the records of the shards asked for and an end with their count,
// at most 16 streams at once, a budget of records per turn, a requester that is behind resumed
// where it stopped, a gone one dropped, and the shards a stream in progress covers.
#include "rss_node/snapshot_server.h"

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/rss_node/test_values.h"

namespace wire = rhythm::wire;
using rhythm::node::SessionStore;
using rhythm::node::SnapshotServer;
using namespace rhythm::node::test;
using Sent = SnapshotServer::Sent;

namespace {

// A store and the keys it holds, by shard.
struct Store {
    SessionStore store{0};
    std::map<std::uint32_t, std::vector<wire::SessionKey>> by_shard;
    std::uint64_t next = 1;

    // `count` sessions in `shard`, expiring at `expires`.
    void add(std::uint32_t shard, std::size_t count, std::uint64_t expires = kNow + kHour) {
        for (std::size_t i = 0; i < count; ++i) {
            add_key(next_key_in(shard, &next), expires);
        }
    }
    // `count` sessions in whatever shards their keys fall in.
    void add_anywhere(std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) {
            add_key(key_of(next++), kNow + kHour);
        }
    }
    void add_key(const wire::SessionKey &key, std::uint64_t expires) {
        wire::SessionRecord r;
        r.key = key;
        r.version = 1;
        r.expires_at_ms = expires;
        r.origin = "web1";
        r.data = "counter=1";
        BOOST_TEST_REQUIRE((store.apply(r, kNow).result == rhythm::node::ApplyResult::kApplied));
        by_shard[wire::shard_of(key)].push_back(key);
    }
};

// What one requester (or several, by routing identity) received, and how its socket answers:
// the nth send attempt (from 0) gets `answers[n]`, kSent when not listed.
struct Requesters {
    struct Got {
        std::string to;
        bool end = false;
        std::uint64_t request_id = 0;
        wire::SessionKey key;
        std::uint64_t records = 0;  // of an end
    };
    std::vector<Got> got;
    std::map<std::size_t, Sent> answers;
    std::size_t attempts = 0;

    SnapshotServer::Send send() {
        return [this](const std::string &to, const wire::Message &message) {
            auto answer = answers.find(attempts++);
            if (answer != answers.end() && answer->second != Sent::kSent) {
                return answer->second;
            }
            Got g;
            g.to = to;
            if (auto *record = std::get_if<wire::SnapshotRecord>(&message)) {
                g.request_id = record->request_id;
                g.key = record->record.key;
            } else {
                const auto &end = std::get<wire::SnapshotEnd>(message);
                g.end = true;
                g.request_id = end.request_id;
                g.records = end.records;
            }
            got.push_back(g);
            return Sent::kSent;
        };
    }
    std::size_t records_to(const std::string &to) const {
        return static_cast<std::size_t>(std::count_if(
            got.begin(), got.end(), [&](const Got &g) { return g.to == to && !g.end; }));
    }
};

// A server over a store, and its requesters.
struct Serving {
    Store s;
    SnapshotServer server{s.store};
    Requesters peers;
};

wire::SnapshotRequest request(std::uint64_t id, std::initializer_list<std::uint32_t> list) {
    return wire::SnapshotRequest{id, shards(list)};
}

std::set<std::string> key_texts(const std::vector<wire::SessionKey> &keys) {
    std::set<std::string> out;
    for (const auto &k : keys) {
        out.insert(wire::format_session_key(k));
    }
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(snapshot_server)

BOOST_FIXTURE_TEST_CASE(the_records_of_the_shards_asked_for_then_an_end_with_their_count, Serving) {
    s.add(3, 5);
    s.add(9, 4);
    s.add(12, 6);  // not asked for
    BOOST_TEST(server.start("peer-b", request(7, {3, 9, 500})));
    BOOST_TEST(!server.idle());
    SnapshotServer::Turn turn = server.advance(kNow, peers.send());
    BOOST_TEST(turn.served == 1u);
    BOOST_TEST(turn.dropped == 0u);
    BOOST_TEST(server.idle());
    BOOST_TEST(!server.blocked());
    BOOST_TEST_REQUIRE(peers.got.size() == 10u);
    std::vector<wire::SessionKey> sent;
    for (std::size_t i = 0; i < 9; ++i) {
        BOOST_TEST(!peers.got[i].end);
        BOOST_TEST(peers.got[i].to == "peer-b");
        BOOST_TEST(peers.got[i].request_id == 7u);
        sent.push_back(peers.got[i].key);
    }
    // Shard by shard, in increasing order.
    for (std::size_t i = 0; i < 9; ++i) {
        BOOST_TEST(wire::shard_of(sent[i]) == (i < 5 ? 3u : 9u));
    }
    std::vector<wire::SessionKey> expected = s.by_shard[3];
    expected.insert(expected.end(), s.by_shard[9].begin(), s.by_shard[9].end());
    BOOST_TEST(key_texts(sent) == key_texts(expected));
    BOOST_TEST(peers.got[9].end);
    BOOST_TEST(peers.got[9].request_id == 7u);
    BOOST_TEST(peers.got[9].records == 9u);
}

BOOST_FIXTURE_TEST_CASE(an_empty_snapshot_is_an_end_alone, Serving) {
    server.start("peer-b", request(1, {4}));
    BOOST_TEST(server.advance(kNow, peers.send()).served == 1u);
    BOOST_TEST_REQUIRE(peers.got.size() == 1u);
    BOOST_TEST(peers.got[0].end);
    BOOST_TEST(peers.got[0].records == 0u);
}

BOOST_FIXTURE_TEST_CASE(at_most_16_streams_at_once, Serving) {
    for (std::size_t i = 0; i < SnapshotServer::kMaxInProgress; ++i) {
        BOOST_TEST(server.start("peer-" + std::to_string(i), request(i + 1, {1})));
    }
    BOOST_TEST(!server.start("one-too-many", request(99, {1})));
    BOOST_TEST(server.size() == SnapshotServer::kMaxInProgress);
    BOOST_TEST(server.advance(kNow, peers.send()).served == SnapshotServer::kMaxInProgress);
    BOOST_TEST(server.start("one-too-many", request(99, {1})));
}

BOOST_FIXTURE_TEST_CASE(a_turn_sends_at_most_its_budget_and_the_next_carries_on, Serving) {
    s.add_anywhere(SnapshotServer::kRecordsPerTurn + 500);
    wire::SnapshotRequest all;
    all.request_id = 5;
    all.shards = wire::ShardSet::all();
    server.start("peer-b", all);
    SnapshotServer::Turn turn = server.advance(kNow, peers.send());
    BOOST_TEST(turn.served == 0u);
    BOOST_TEST(peers.got.size() == SnapshotServer::kRecordsPerTurn);
    BOOST_TEST(!server.idle());
    BOOST_TEST(!server.blocked());
    turn = server.advance(kNow, peers.send());
    BOOST_TEST(turn.served == 1u);
    BOOST_TEST_REQUIRE(peers.got.size() == SnapshotServer::kRecordsPerTurn + 501);
    BOOST_TEST(peers.got.back().end);
    BOOST_TEST(peers.got.back().records == SnapshotServer::kRecordsPerTurn + 500);
    std::vector<wire::SessionKey> sent;
    for (std::size_t i = 0; i + 1 < peers.got.size(); ++i) {
        sent.push_back(peers.got[i].key);
    }
    BOOST_TEST(key_texts(sent).size() == SnapshotServer::kRecordsPerTurn + 500);
}

BOOST_FIXTURE_TEST_CASE(streams_go_in_the_order_asked_for, Serving) {
    s.add(2, 3);
    server.start("peer-b", request(1, {2}));
    server.start("peer-c", request(2, {2}));
    BOOST_TEST(server.advance(kNow, peers.send()).served == 2u);
    BOOST_TEST_REQUIRE(peers.got.size() == 8u);
    for (std::size_t i = 0; i < 4; ++i) {
        BOOST_TEST(peers.got[i].to == "peer-b");
        BOOST_TEST(peers.got[4 + i].to == "peer-c");
    }
}

BOOST_FIXTURE_TEST_CASE(a_requester_behind_is_resumed_where_it_stopped, Serving) {
    s.add(6, 5);
    peers.answers[2] = Sent::kWouldBlock;  // the third record does not go
    server.start("peer-b", request(3, {6}));
    SnapshotServer::Turn turn = server.advance(kNow, peers.send());
    BOOST_TEST(server.blocked());
    BOOST_TEST(turn.served == 0u);
    BOOST_TEST(turn.dropped == 0u);
    BOOST_TEST(peers.got.size() == 2u);
    turn = server.advance(kNow, peers.send());
    BOOST_TEST(!server.blocked());
    BOOST_TEST(turn.served == 1u);
    BOOST_TEST_REQUIRE(peers.got.size() == 6u);
    BOOST_TEST(peers.got[5].records == 5u);
    std::vector<wire::SessionKey> sent;
    for (std::size_t i = 0; i < 5; ++i) {
        sent.push_back(peers.got[i].key);
    }
    BOOST_TEST(key_texts(sent) == key_texts(s.by_shard[6]));
}

BOOST_FIXTURE_TEST_CASE(a_gone_requester_is_dropped_and_the_next_stream_goes_on, Serving) {
    s.add(6, 5);
    peers.answers[1] = Sent::kGone;
    server.start("peer-b", request(3, {6}));
    server.start("peer-c", request(4, {6}));
    SnapshotServer::Turn turn = server.advance(kNow, peers.send());
    BOOST_TEST(turn.dropped == 1u);
    BOOST_TEST(turn.served == 1u);  // peer-c's
    BOOST_TEST(server.idle());
    BOOST_TEST(peers.records_to("peer-b") == 1u);
    BOOST_TEST(peers.records_to("peer-c") == 5u);
    BOOST_TEST(peers.got.back().to == "peer-c");
    BOOST_TEST(peers.got.back().end);
}

BOOST_FIXTURE_TEST_CASE(an_end_that_cannot_go_is_counted_dropped, Serving) {
    s.add(6, 1);
    peers.answers[1] = Sent::kWouldBlock;
    server.start("peer-b", request(3, {6}));
    SnapshotServer::Turn turn = server.advance(kNow, peers.send());
    BOOST_TEST(turn.served == 1u);
    BOOST_TEST(turn.dropped == 1u);
    BOOST_TEST(server.idle());
    BOOST_TEST(peers.got.size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(a_session_expired_since_its_shard_was_listed_is_skipped, Serving) {
    s.add(8, 1, kNow + 10);
    s.add(8, 1, kNow + kHour);
    peers.answers[0] = Sent::kWouldBlock;  // the keys are listed, then the requester is behind
    server.start("peer-b", request(3, {8}));
    server.advance(kNow, peers.send());
    BOOST_TEST(peers.got.empty());
    server.advance(kNow + 20, peers.send());
    BOOST_TEST_REQUIRE(peers.got.size() == 2u);
    BOOST_TEST(wire::format_session_key(peers.got[0].key) ==
               wire::format_session_key(s.by_shard[8][1]));
    BOOST_TEST(peers.got[1].records == 1u);
}

BOOST_FIXTURE_TEST_CASE(the_shards_of_a_stream_in_progress_are_being_served, Serving) {
    s.add(6, 3);
    peers.answers[0] = Sent::kWouldBlock;
    server.start("peer-b", request(3, {6, 10}));
    BOOST_TEST(server.serving(6));
    BOOST_TEST(server.serving(10));
    BOOST_TEST(!server.serving(7));
    server.advance(kNow, peers.send());
    BOOST_TEST(server.serving(10));
    server.advance(kNow, peers.send());
    BOOST_TEST(!server.serving(6));
    BOOST_TEST(!server.serving(10));
}

BOOST_AUTO_TEST_SUITE_END()
