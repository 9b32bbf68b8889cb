// The session store: version order, tombstones, expiry and the sweep, the memory limit, and the
// hash tables checked against a plain std::map through many random operations.
#include "rss_node/session_store.h"

#include <boost/test/unit_test.hpp>
#include <map>
#include <random>
#include <vector>

#include "tests/unit/rss_node/test_values.h"

namespace wire = rhythm::wire;
using rhythm::node::ApplyResult;
using rhythm::node::SessionStore;
using namespace rhythm::node::test;

namespace {

struct Rec {
    std::string origin = "web1";
    std::string data = "counter=1";
    wire::SessionRecord record;

    Rec(std::uint64_t n, std::uint64_t version, std::uint64_t expires = kNow + kHour) {
        record.key = key_of(n);
        record.version = version;
        record.expires_at_ms = expires;
        record.origin = origin;
        record.data = data;
    }
    Rec &tombstone() {
        record.tombstone = true;
        record.data = {};
        return *this;
    }
    Rec &from(std::string o) {
        origin = std::move(o);
        record.origin = origin;
        return *this;
    }
    Rec &with(std::string d) {
        data = std::move(d);
        record.data = data;
        return *this;
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(session_store)

BOOST_AUTO_TEST_CASE(highest_version_wins) {
    SessionStore store(0);
    BOOST_TEST((store.apply(Rec(1, 5).with("five").record, kNow).result == ApplyResult::kApplied));
    BOOST_TEST((store.apply(Rec(1, 7).with("seven").record, kNow).result == ApplyResult::kApplied));
    auto stale = store.apply(Rec(1, 6).with("six").record, kNow);
    BOOST_TEST((stale.result == ApplyResult::kStale));
    BOOST_TEST(stale.held_version == 7u);
    BOOST_TEST(!stale.newer_from_other_origin);
    BOOST_TEST((store.apply(Rec(1, 7).record, kNow).result == ApplyResult::kDuplicate));
    wire::SessionRecord got;
    BOOST_TEST_REQUIRE(store.find(key_of(1), kNow, &got));
    BOOST_TEST(got.version == 7u);
    BOOST_TEST(got.data == "seven");
    BOOST_TEST(got.origin == "web1");
    BOOST_TEST(store.live_sessions() == 1u);
}

BOOST_AUTO_TEST_CASE(records_from_the_future_are_refused) {
    constexpr std::uint64_t kDay = 24 * kHour;
    SessionStore store(0, 400 * kDay);
    const char *why = nullptr;
    // An expiry decades ahead, and a version no server makes, could never be replaced or expire.
    auto far = store.apply(Rec(1, 5, kNow + 30 * 365 * kDay).record, kNow, &why);
    BOOST_TEST((far.result == ApplyResult::kImplausible));
    BOOST_TEST(std::string(why) == "its expiry is further ahead than --max-session-lifetime");
    auto top = store.apply(Rec(2, ~std::uint64_t{0}).record, kNow, &why);
    BOOST_TEST((top.result == ApplyResult::kImplausible));
    BOOST_TEST(std::string(why) == "its version's term is over 2^20");
    BOOST_TEST(store.live_sessions() == 0u);
    // A session taken over (a new term, counting from 1) is fine; a leap of terms is not.
    BOOST_TEST((store.apply(Rec(3, 7).record, kNow).result == ApplyResult::kApplied));
    BOOST_TEST(
        (store.apply(Rec(3, (1ull << 32) | 1).record, kNow).result == ApplyResult::kApplied));
    auto leap = store.apply(Rec(3, (2000ull << 32) | 1).record, kNow, &why);
    BOOST_TEST((leap.result == ApplyResult::kImplausible));
    BOOST_TEST(std::string(why) == "its version's term is over 1024 terms above the version held");
    BOOST_TEST(
        (store.apply(Rec(4, 1, kNow + 399 * kDay).record, kNow).result == ApplyResult::kApplied));
    // Without a bound on lifetimes, any expiry goes.
    SessionStore unbounded(0);
    BOOST_TEST((unbounded.apply(Rec(1, 5, kNow + 30 * 365 * kDay).record, kNow).result ==
                ApplyResult::kApplied));
}

BOOST_AUTO_TEST_CASE(a_refusal_says_when_another_server_made_the_newer_version) {
    SessionStore store(0);
    store.apply(Rec(1, 9).from("web2").record, kNow);
    auto out = store.apply(Rec(1, 8).from("web1").record, kNow);
    BOOST_TEST((out.result == ApplyResult::kStale));
    BOOST_TEST(out.newer_from_other_origin);
    BOOST_TEST(out.held_version == 9u);
}

BOOST_AUTO_TEST_CASE(an_update_from_another_server_names_the_replaced_origin) {
    SessionStore store(0);
    BOOST_TEST(store.apply(Rec(1, 3).from("web1").record, kNow).replaced_origin.empty());
    BOOST_TEST(store.apply(Rec(1, 4).from("web1").record, kNow).replaced_origin.empty());
    auto failover = store.apply(Rec(1, 5).from("web2").record, kNow);
    BOOST_TEST((failover.result == ApplyResult::kApplied));
    BOOST_TEST(failover.replaced_origin == "web1");
    BOOST_TEST(store.apply(Rec(1, 6).from("web2").record, kNow).replaced_origin.empty());
}

BOOST_AUTO_TEST_CASE(the_same_version_from_two_servers_is_settled_by_name_whichever_comes_first) {
    // Two servers continued version 4: every node keeps web2's (the higher name), in either order.
    for (bool web1_first : {true, false}) {
        SessionStore store(0);
        store.apply(Rec(1, 4).from(web1_first ? "web1" : "web2").record, kNow);
        auto second = store.apply(Rec(1, 4).from(web1_first ? "web2" : "web1").record, kNow);
        BOOST_TEST(second.conflict);
        if (web1_first) {
            BOOST_TEST((second.result == ApplyResult::kApplied));
            BOOST_TEST(second.replaced_origin == "web1");  // told to drop its copy
        } else {
            BOOST_TEST((second.result == ApplyResult::kStale));
            BOOST_TEST(second.newer_from_other_origin);  // web1 is told
            BOOST_TEST(second.held_version == 4u);
        }
        wire::SessionRecord got;
        BOOST_TEST_REQUIRE(store.find(key_of(1), kNow, &got));
        BOOST_TEST(got.origin == "web2");
        // A re-send of the winner is a duplicate, not a conflict.
        auto again = store.apply(Rec(1, 4).from("web2").record, kNow);
        BOOST_TEST((again.result == ApplyResult::kDuplicate));
        BOOST_TEST(!again.conflict);
    }
}

BOOST_AUTO_TEST_CASE(tombstones_block_older_updates_until_they_expire) {
    SessionStore store(0);
    store.apply(Rec(1, 3).record, kNow);
    BOOST_TEST((store.apply(Rec(1, 4, kNow + kHour).tombstone().record, kNow).result ==
                ApplyResult::kApplied));
    BOOST_TEST(store.live_sessions() == 0u);
    BOOST_TEST(store.tombstones() == 1u);
    wire::SessionRecord got;
    BOOST_TEST_REQUIRE(store.find(key_of(1), kNow, &got));
    BOOST_TEST(got.tombstone);
    BOOST_TEST(got.data.empty());
    // A late or replayed update cannot bring the session back.
    BOOST_TEST((store.apply(Rec(1, 3).record, kNow).result == ApplyResult::kStale));
    // Once the tombstone has expired it is gone, and swept.
    BOOST_TEST(!store.find(key_of(1), kNow + kHour, &got));
    BOOST_TEST(store.sweep_shard(wire::shard_of(key_of(1)), kNow + kHour) == 1u);
    BOOST_TEST(store.tombstones() == 0u);
    BOOST_TEST(store.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(expiry_and_sweep) {
    SessionStore store(0);
    BOOST_TEST((store.apply(Rec(1, 1, kNow - 1).record, kNow).result == ApplyResult::kExpired));
    BOOST_TEST(store.live_sessions() == 0u);
    store.apply(Rec(2, 1, kNow + 1000).record, kNow);
    store.apply(Rec(3, 1, 0).record, kNow);  // 0: never expires
    wire::SessionRecord got;
    BOOST_TEST(store.find(key_of(2), kNow + 999, &got));
    BOOST_TEST(!store.find(key_of(2), kNow + 1000, &got));
    BOOST_TEST(store.find(key_of(3), kNow + 1000 * kHour, &got));
    std::size_t swept = 0;
    for (std::uint32_t s = 0; s < wire::kShardCount; ++s) {
        swept += store.sweep_shard(s, kNow + 1000);
    }
    BOOST_TEST(swept == 1u);
    BOOST_TEST(store.live_sessions() == 1u);
    // An expired record counts as absent: any version may take its place.
    store.apply(Rec(4, 9, kNow + 10).record, kNow);
    BOOST_TEST((store.apply(Rec(4, 2).record, kNow + 10).result == ApplyResult::kApplied));
    BOOST_TEST(store.live_sessions() == 2u);
}

BOOST_AUTO_TEST_CASE(memory_limit_refuses_new_sessions_not_updates) {
    const std::string kilobyte(1024, 'x');
    SessionStore store(64 * 1024);
    std::uint64_t n = 0;
    while (store.apply(Rec(n, 1).with(kilobyte).record, kNow).result == ApplyResult::kApplied) {
        ++n;
    }
    BOOST_TEST(n > 40u);
    BOOST_TEST(n < 64u);
    BOOST_TEST(store.bytes() <= 64u * 1024);
    BOOST_TEST(store.live_sessions() == n);
    // Existing sessions still take new versions of the same size, and tombstones.
    BOOST_TEST(
        (store.apply(Rec(0, 2).with(kilobyte).record, kNow).result == ApplyResult::kApplied));
    BOOST_TEST((store.apply(Rec(1, 2).tombstone().record, kNow).result == ApplyResult::kApplied));
    // Freed room is usable again, and the limit still holds.
    BOOST_TEST((store.apply(Rec(n + 1, 1).with(std::string(512, 'y')).record, kNow).result ==
                ApplyResult::kApplied));
    std::uint64_t more = 0;
    while (store.apply(Rec(n + 2 + more, 1).with(kilobyte).record, kNow).result ==
           ApplyResult::kApplied) {
        ++more;
    }
    BOOST_TEST(more <= 1u);
    BOOST_TEST(store.bytes() <= 64u * 1024);
}

BOOST_AUTO_TEST_CASE(snapshot_listing_covers_a_shard) {
    SessionStore store(0);
    std::map<std::uint32_t, int> per_shard;
    for (std::uint64_t n = 0; n < 5000; ++n) {
        store.apply(Rec(n, 1).record, kNow);
        per_shard[wire::shard_of(key_of(n))]++;
    }
    for (const auto &[shard, count] : per_shard) {
        int seen = 0;
        store.for_each_in_shard(shard, kNow, [&](const wire::SessionRecord &r) {
            BOOST_TEST_REQUIRE(wire::shard_of(r.key) == shard);
            ++seen;
        });
        BOOST_TEST_REQUIRE(seen == count);
    }
}

BOOST_AUTO_TEST_CASE(dropping_a_shard_frees_its_records_and_nothing_else) {
    SessionStore store(0);
    std::map<std::uint32_t, int> per_shard;
    for (std::uint64_t n = 0; n < 5000; ++n) {
        store.apply(n % 10 == 0 ? Rec(n, 1).tombstone().record : Rec(n, 1).record, kNow);
        per_shard[wire::shard_of(key_of(n))]++;
    }
    std::uint64_t before = store.live_sessions() + store.tombstones();
    std::uint64_t bytes = store.bytes();
    std::uint32_t shard = per_shard.begin()->first;
    BOOST_TEST(store.drop_shard(shard) == static_cast<std::size_t>(per_shard[shard]));
    BOOST_TEST(store.live_sessions() + store.tombstones() == before - per_shard[shard]);
    BOOST_TEST(store.bytes() < bytes);
    for (std::uint64_t n = 0; n < 5000; ++n) {
        wire::SessionRecord r;
        BOOST_TEST_REQUIRE(store.find(key_of(n), kNow, &r) == (wire::shard_of(key_of(n)) != shard));
    }
    // The emptied shard takes records again.
    for (std::uint64_t n = 0; n < 5000; ++n) {
        if (wire::shard_of(key_of(n)) == shard) {
            BOOST_TEST_REQUIRE(
                (store.apply(Rec(n, 1).record, kNow).result == ApplyResult::kApplied));
        }
    }
    BOOST_TEST(store.live_sessions() + store.tombstones() == before);
    for (const auto &entry : per_shard) {
        store.drop_shard(entry.first);
    }
    BOOST_TEST(store.live_sessions() == 0u);
    BOOST_TEST(store.tombstones() == 0u);
    BOOST_TEST(store.payload_bytes() == 0u);
    BOOST_TEST(store.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(random_operations_match_a_plain_map) {
    SessionStore store(0);
    std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> model;  // n -> version, exp
    std::mt19937_64 rng(3);
    std::uint64_t now = kNow;
    for (int step = 0; step < 200000; ++step) {
        std::uint64_t n = rng() % 3000;
        std::uint64_t version = 1 + rng() % 50;
        std::uint64_t expires = now + 1 + rng() % 5000;
        std::string data(rng() % 64, 'a');
        auto out = store.apply(Rec(n, version, expires).with(data).record, now);
        auto it = model.find(n);
        bool held = it != model.end() && it->second.second > now;
        if (!held || version > it->second.first) {
            BOOST_TEST_REQUIRE((out.result == ApplyResult::kApplied));
            model[n] = {version, expires};
        } else {
            BOOST_TEST_REQUIRE((out.result != ApplyResult::kApplied));
        }
        if (step % 1000 == 0) {
            now += 700;
            for (std::uint32_t s = 0; s < wire::kShardCount; ++s) {
                store.sweep_shard(s, now);
            }
            for (auto m = model.begin(); m != model.end();) {
                m = m->second.second <= now ? model.erase(m) : std::next(m);
            }
            BOOST_TEST_REQUIRE(store.live_sessions() == model.size());
        }
    }
    for (const auto &[n, ve] : model) {
        wire::SessionRecord got;
        BOOST_TEST_REQUIRE(store.find(key_of(n), now, &got));
        BOOST_TEST_REQUIRE(got.version == ve.first);
    }
}

// Past 2^16 slots a table's homes need more of the hash than a slot's tag keeps: growing, and the
// shifts of a deletion, then read the keys. 60,000 sessions in one shard cross that line.
BOOST_AUTO_TEST_CASE(a_shard_table_past_the_tag_bits_keeps_every_session) {
    SessionStore store(0);
    std::vector<std::uint64_t> in_shard;
    for (std::uint64_t n = 0; in_shard.size() < 60000; ++n) {
        if (wire::shard_of(key_of(n)) == 7) {
            in_shard.push_back(n);
        }
    }
    for (std::size_t i = 0; i < in_shard.size(); ++i) {
        // Every other session expires at the first sweep.
        std::uint64_t expires = i % 2 == 0 ? kNow + 10 : kNow + kHour;
        BOOST_TEST_REQUIRE((store.apply(Rec(in_shard[i], 1, expires).record, kNow).result ==
                            ApplyResult::kApplied));
    }
    BOOST_TEST(store.live_sessions() == in_shard.size());
    BOOST_TEST(store.sweep_shard(7, kNow + 10) == in_shard.size() / 2);
    for (std::size_t i = 0; i < in_shard.size(); ++i) {
        wire::SessionRecord got;
        BOOST_TEST_REQUIRE(store.find(key_of(in_shard[i]), kNow + 10, &got) == (i % 2 == 1));
    }
}

BOOST_AUTO_TEST_SUITE_END()
