// An operator's end of sessions on a node's store: the tombstone's term, which shards it touches,
// what happens to a change of the ended session still on its way, and a full store.
#include "rss_node/session_ending.h"

#include <boost/test/unit_test.hpp>

#include "tests/unit/rss_node/test_values.h"

namespace wire = rhythm::wire;
using rhythm::node::ApplyResult;
using rhythm::node::end_sessions;
using rhythm::node::EndedSessions;
using rhythm::node::SessionStore;
using namespace rhythm::node::test;

namespace {

constexpr std::uint64_t kTerm = 1ULL << 32;
constexpr std::uint64_t kTopOfTerm = kTerm - 1;

wire::SessionRecord record(const wire::SessionKey &key, std::uint64_t version) {
    wire::SessionRecord r;
    r.key = key;
    r.version = version;
    r.expires_at_ms = kNow + kHour;
    r.origin = "web-a";
    r.data = "counter=3";
    return r;
}

wire::EndSession end_one(const wire::SessionKey &key) {
    return wire::EndSession{1, wire::EndScope::kOne, key};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(session_ending)

BOOST_AUTO_TEST_CASE(a_held_session_ends_in_a_tombstone_of_the_next_term) {
    SessionStore store(0);
    wire::SessionKey key = key_of(1);
    store.apply(record(key, 3 * kTerm + 7), kNow);
    EndedSessions ended =
        end_sessions(end_one(key), shards({wire::shard_of(key)}), kNow, kHour, &store);
    BOOST_TEST((ended.outcome == wire::EndSessionOutcome::kEnded));
    BOOST_TEST(ended.count == 1u);
    BOOST_TEST(ended.version == 4 * kTerm + kTopOfTerm);
    wire::SessionRecord held;
    BOOST_TEST_REQUIRE(store.find(key, kNow, &held));
    BOOST_TEST(held.tombstone);
    BOOST_TEST(held.version == 4 * kTerm + kTopOfTerm);
    BOOST_TEST(held.expires_at_ms == kNow + kHour);  // as long as the session could have lived
    // The server that held it saves once more, in its own term: refused, it is told. So is one
    // that had fetched it and continues it in the next term, whatever its name.
    BOOST_TEST((store.apply(record(key, 3 * kTerm + 8), kNow).result == ApplyResult::kStale));
    wire::SessionRecord continued = record(key, 4 * kTerm + 1);
    continued.origin = "zzz-sorts-above-operator";
    BOOST_TEST((store.apply(continued, kNow).result == ApplyResult::kStale));
}

BOOST_AUTO_TEST_CASE(a_session_of_a_shard_not_owned_is_left_alone) {
    SessionStore store(0);
    wire::SessionKey key = key_of(2);
    store.apply(record(key, 5), kNow);
    EndedSessions ended = end_sessions(
        end_one(key), shards({(wire::shard_of(key) + 1) % wire::kShardCount}), kNow, kHour, &store);
    BOOST_TEST((ended.outcome == wire::EndSessionOutcome::kNotOwner));
    BOOST_TEST(ended.count == 0u);
    wire::SessionRecord held;
    BOOST_TEST_REQUIRE(store.find(key, kNow, &held));
    BOOST_TEST(!held.tombstone);
}

BOOST_AUTO_TEST_CASE(a_session_not_held_yet_is_ended_before_its_first_change_arrives) {
    SessionStore store(0);
    wire::SessionKey key = key_of(3);
    EndedSessions ended =
        end_sessions(end_one(key), shards({wire::shard_of(key)}), kNow, 2 * kHour, &store);
    BOOST_TEST((ended.outcome == wire::EndSessionOutcome::kEnded));
    BOOST_TEST(ended.version == kTerm + kTopOfTerm);
    wire::SessionRecord held;
    BOOST_TEST_REQUIRE(store.find(key, kNow, &held));
    BOOST_TEST(held.expires_at_ms == kNow + 2 * kHour);
    BOOST_TEST((store.apply(record(key, 9), kNow).result == ApplyResult::kStale));
}

BOOST_AUTO_TEST_CASE(ending_all_ends_every_live_session_of_the_owned_shards_only) {
    SessionStore store(0);
    std::uint64_t n = 10;
    wire::SessionKey a1 = next_key_in(5, &n), a2 = next_key_in(5, &n), b = next_key_in(6, &n);
    wire::SessionKey deleted = next_key_in(6, &n), elsewhere = next_key_in(7, &n);
    for (const auto &key : {a1, a2, b, elsewhere}) {
        store.apply(record(key, kTerm + 2), kNow);
    }
    wire::SessionRecord gone = record(deleted, 4);
    gone.tombstone = true;
    gone.data = {};
    store.apply(gone, kNow);
    EndedSessions ended = end_sessions(wire::EndSession{1, wire::EndScope::kAll, {}},
                                       shards({5, 6}), kNow, kHour, &store);
    BOOST_TEST((ended.outcome == wire::EndSessionOutcome::kEnded));
    BOOST_TEST(ended.count == 3u);  // a tombstone already is no session to end
    wire::SessionRecord held;
    for (const auto &key : {a1, a2, b}) {
        BOOST_TEST_REQUIRE(store.find(key, kNow, &held));
        BOOST_TEST(held.tombstone);
        BOOST_TEST(held.version == 2 * kTerm + kTopOfTerm);
    }
    BOOST_TEST_REQUIRE(store.find(deleted, kNow, &held));
    BOOST_TEST(held.version == 4u);
    BOOST_TEST_REQUIRE(store.find(elsewhere, kNow, &held));
    BOOST_TEST(!held.tombstone);
    // A node that owns no shard has nothing to end.
    BOOST_TEST((end_sessions(wire::EndSession{2, wire::EndScope::kAll, {}}, wire::ShardSet{}, kNow,
                             kHour, &store)
                    .outcome == wire::EndSessionOutcome::kNotOwner));
}

BOOST_AUTO_TEST_CASE(a_full_store_that_cannot_take_the_tombstone_says_so) {
    SessionStore store(64 * 1024);
    std::uint64_t n = 100;
    while (store.apply(record(key_of(n), 5), kNow).result == ApplyResult::kApplied) {
        ++n;
    }
    wire::SessionKey unheld = key_of(n + 1);
    EndedSessions ended = end_sessions(end_one(unheld), wire::ShardSet::all(), kNow, kHour, &store);
    BOOST_TEST((ended.outcome == wire::EndSessionOutcome::kRefused));
    BOOST_TEST(ended.count == 0u);
    // A held session's tombstone takes no more room than the session: it is always stored.
    ended = end_sessions(end_one(key_of(100)), wire::ShardSet::all(), kNow, kHour, &store);
    BOOST_TEST((ended.outcome == wire::EndSessionOutcome::kEnded));
}

BOOST_AUTO_TEST_CASE(a_flood_of_ends_is_refused_past_the_rate) {
    rhythm::node::EndSessionRate rate;
    std::uint64_t admitted = 0;
    for (int i = 0; i < 5000; ++i) {
        admitted += rate.admit(wire::EndScope::kOne, 100000 + i / 10) ? 1 : 0;  // 500 ms
    }
    BOOST_TEST(admitted == rhythm::node::EndSessionRate::kOnePerSecond);
    BOOST_TEST(rate.admit(wire::EndScope::kOne, 101000));  // the next second
    BOOST_TEST(rate.admit(wire::EndScope::kAll, 101000));
    BOOST_TEST(!rate.admit(wire::EndScope::kAll, 110999));
    BOOST_TEST(rate.admit(wire::EndScope::kAll, 111000));
}

BOOST_AUTO_TEST_SUITE_END()
