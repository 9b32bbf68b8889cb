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

#include "wire/session_key.h"

namespace wire = rhythm::wire;
using rhythm::node::SessionStore;
using rhythm::node::SnapshotServer;
using Sent = SnapshotServer::Sent;

namespace {

constexpr std::uint64_t kNow = 1800000000000ULL;
constexpr std::uint64_t kHour = 3600 * 1000;

wire::SessionKey key_of(std::uint64_t n) {
    wire::SessionKey k;
    for (int i = 0; i < 8; ++i) {
        k.bytes[i] = static_cast<std::uint8_t>(n >> (8 * i));
        k.bytes[8 + i] = static_cast<std::uint8_t>((n * 0x9e3779b97f4a7c15ULL) >> (8 * i));
    }
    return k;
}

// A store and the keys it holds, by shard.
struct Store {
    SessionStore store{0};
    std::map<std::uint32_t, std::vector<wire::SessionKey>> by_shard;
    std::uint64_t next = 1;

    // `count` sessions in `shard`, expiring at `expires`.
    void add(std::uint32_t shard, std::size_t count, std::uint64_t expires = kNow + kHour) {
        for (std::size_t added = 0; added < count; ++next) {
            wire::SessionKey key = key_of(next);
            if (wire::shard_of(key) != shard) {
                continue;
            }
            add_key(key, expires);
            added++;
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

wire::SnapshotRequest request(std::uint64_t id, std::initializer_list<std::uint32_t> shards) {
    wire::SnapshotRequest r;
    r.request_id = id;
    for (std::uint32_t s : shards) {
        r.shards.add(s);
    }
    return r;
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

BOOST_AUTO_TEST_CASE(the_records_of_the_shards_asked_for_then_an_end_with_their_count) {
    Store s;
    s.add(3, 5);
    s.add(9, 4);
    s.add(12, 6);  // not asked for
    SnapshotServer server(s.store);
    Requesters peer;
    BOOST_TEST(server.start("peer-b", request(7, {3, 9, 500})));
    BOOST_TEST(!server.idle());
    SnapshotServer::Turn turn = server.advance(kNow, peer.send());
    BOOST_TEST(turn.served == 1u);
    BOOST_TEST(turn.dropped == 0u);
    BOOST_TEST(server.idle());
    BOOST_TEST(!server.blocked());
    BOOST_TEST_REQUIRE(peer.got.size() == 10u);
    std::vector<wire::SessionKey> sent;
    for (std::size_t i = 0; i < 9; ++i) {
        BOOST_TEST(!peer.got[i].end);
        BOOST_TEST(peer.got[i].to == "peer-b");
        BOOST_TEST(peer.got[i].request_id == 7u);
        sent.push_back(peer.got[i].key);
    }
    // Shard by shard, in increasing order.
    for (std::size_t i = 0; i < 9; ++i) {
        BOOST_TEST(wire::shard_of(sent[i]) == (i < 5 ? 3u : 9u));
    }
    std::vector<wire::SessionKey> expected = s.by_shard[3];
    expected.insert(expected.end(), s.by_shard[9].begin(), s.by_shard[9].end());
    BOOST_TEST(key_texts(sent) == key_texts(expected));
    BOOST_TEST(peer.got[9].end);
    BOOST_TEST(peer.got[9].request_id == 7u);
    BOOST_TEST(peer.got[9].records == 9u);
}

BOOST_AUTO_TEST_CASE(an_empty_snapshot_is_an_end_alone) {
    Store s;
    SnapshotServer server(s.store);
    Requesters peer;
    server.start("peer-b", request(1, {4}));
    BOOST_TEST(server.advance(kNow, peer.send()).served == 1u);
    BOOST_TEST_REQUIRE(peer.got.size() == 1u);
    BOOST_TEST(peer.got[0].end);
    BOOST_TEST(peer.got[0].records == 0u);
}

BOOST_AUTO_TEST_CASE(at_most_16_streams_at_once) {
    Store s;
    SnapshotServer server(s.store);
    for (std::size_t i = 0; i < SnapshotServer::kMaxInProgress; ++i) {
        BOOST_TEST(server.start("peer-" + std::to_string(i), request(i + 1, {1})));
    }
    BOOST_TEST(!server.start("one-too-many", request(99, {1})));
    BOOST_TEST(server.size() == SnapshotServer::kMaxInProgress);
    Requesters peers;
    BOOST_TEST(server.advance(kNow, peers.send()).served == SnapshotServer::kMaxInProgress);
    BOOST_TEST(server.start("one-too-many", request(99, {1})));
}

BOOST_AUTO_TEST_CASE(a_turn_sends_at_most_its_budget_and_the_next_carries_on) {
    Store s;
    s.add_anywhere(SnapshotServer::kRecordsPerTurn + 500);
    SnapshotServer server(s.store);
    Requesters peer;
    wire::SnapshotRequest all;
    all.request_id = 5;
    all.shards = wire::ShardSet::all();
    server.start("peer-b", all);
    SnapshotServer::Turn turn = server.advance(kNow, peer.send());
    BOOST_TEST(turn.served == 0u);
    BOOST_TEST(peer.got.size() == SnapshotServer::kRecordsPerTurn);
    BOOST_TEST(!server.idle());
    BOOST_TEST(!server.blocked());
    turn = server.advance(kNow, peer.send());
    BOOST_TEST(turn.served == 1u);
    BOOST_TEST_REQUIRE(peer.got.size() == SnapshotServer::kRecordsPerTurn + 501);
    BOOST_TEST(peer.got.back().end);
    BOOST_TEST(peer.got.back().records == SnapshotServer::kRecordsPerTurn + 500);
    std::vector<wire::SessionKey> sent;
    for (std::size_t i = 0; i + 1 < peer.got.size(); ++i) {
        sent.push_back(peer.got[i].key);
    }
    BOOST_TEST(key_texts(sent).size() == SnapshotServer::kRecordsPerTurn + 500);
}

BOOST_AUTO_TEST_CASE(streams_go_in_the_order_asked_for) {
    Store s;
    s.add(2, 3);
    SnapshotServer server(s.store);
    Requesters peers;
    server.start("peer-b", request(1, {2}));
    server.start("peer-c", request(2, {2}));
    BOOST_TEST(server.advance(kNow, peers.send()).served == 2u);
    BOOST_TEST_REQUIRE(peers.got.size() == 8u);
    for (std::size_t i = 0; i < 4; ++i) {
        BOOST_TEST(peers.got[i].to == "peer-b");
        BOOST_TEST(peers.got[4 + i].to == "peer-c");
    }
}

BOOST_AUTO_TEST_CASE(a_requester_behind_is_resumed_where_it_stopped) {
    Store s;
    s.add(6, 5);
    SnapshotServer server(s.store);
    Requesters peer;
    peer.answers[2] = Sent::kWouldBlock;  // the third record does not go
    server.start("peer-b", request(3, {6}));
    SnapshotServer::Turn turn = server.advance(kNow, peer.send());
    BOOST_TEST(server.blocked());
    BOOST_TEST(turn.served == 0u);
    BOOST_TEST(turn.dropped == 0u);
    BOOST_TEST(peer.got.size() == 2u);
    turn = server.advance(kNow, peer.send());
    BOOST_TEST(!server.blocked());
    BOOST_TEST(turn.served == 1u);
    BOOST_TEST_REQUIRE(peer.got.size() == 6u);
    BOOST_TEST(peer.got[5].records == 5u);
    std::vector<wire::SessionKey> sent;
    for (std::size_t i = 0; i < 5; ++i) {
        sent.push_back(peer.got[i].key);
    }
    BOOST_TEST(key_texts(sent) == key_texts(s.by_shard[6]));
}

BOOST_AUTO_TEST_CASE(a_gone_requester_is_dropped_and_the_next_stream_goes_on) {
    Store s;
    s.add(6, 5);
    SnapshotServer server(s.store);
    Requesters peers;
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

BOOST_AUTO_TEST_CASE(an_end_that_cannot_go_is_counted_dropped) {
    Store s;
    s.add(6, 1);
    SnapshotServer server(s.store);
    Requesters peer;
    peer.answers[1] = Sent::kWouldBlock;
    server.start("peer-b", request(3, {6}));
    SnapshotServer::Turn turn = server.advance(kNow, peer.send());
    BOOST_TEST(turn.served == 1u);
    BOOST_TEST(turn.dropped == 1u);
    BOOST_TEST(server.idle());
    BOOST_TEST(peer.got.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_session_expired_since_its_shard_was_listed_is_skipped) {
    Store s;
    s.add(8, 1, kNow + 10);
    s.add(8, 1, kNow + kHour);
    SnapshotServer server(s.store);
    Requesters peer;
    peer.answers[0] = Sent::kWouldBlock;  // the keys are listed, then the requester is behind
    server.start("peer-b", request(3, {8}));
    server.advance(kNow, peer.send());
    BOOST_TEST(peer.got.empty());
    server.advance(kNow + 20, peer.send());
    BOOST_TEST_REQUIRE(peer.got.size() == 2u);
    BOOST_TEST(wire::format_session_key(peer.got[0].key) ==
               wire::format_session_key(s.by_shard[8][1]));
    BOOST_TEST(peer.got[1].records == 1u);
}

BOOST_AUTO_TEST_CASE(the_shards_of_a_stream_in_progress_are_being_served) {
    Store s;
    s.add(6, 3);
    SnapshotServer server(s.store);
    Requesters peer;
    peer.answers[0] = Sent::kWouldBlock;
    server.start("peer-b", request(3, {6, 10}));
    BOOST_TEST(server.serving(6));
    BOOST_TEST(server.serving(10));
    BOOST_TEST(!server.serving(7));
    server.advance(kNow, peer.send());
    BOOST_TEST(server.serving(10));
    server.advance(kNow, peer.send());
    BOOST_TEST(!server.serving(6));
    BOOST_TEST(!server.serving(10));
}

BOOST_AUTO_TEST_SUITE_END()
