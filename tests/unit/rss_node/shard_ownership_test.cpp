// Shard ownership: disjoint or doubled owners, what moves when a member leaves or joins, where
// gained shards are filled from, and the compact range form of a shard set.
#include "rss_node/shard_ownership.h"

#include <boost/test/unit_test.hpp>

#include "wire/rendezvous.h"

namespace wire = rhythm::wire;
using rhythm::node::owned_shards;
using rhythm::node::ownership_change;
using rhythm::node::shard_ranges;
using rhythm::node::snapshot_sources;

namespace {

const std::vector<std::string> kThree{"node-a", "node-b", "node-c"};

std::vector<int> copies(const std::vector<std::string> &members, std::size_t replicas) {
    std::vector<int> counts(wire::kShardCount, 0);
    for (const auto &m : members) {
        wire::ShardSet owned = owned_shards(m, members, replicas);
        for (std::uint32_t s = 0; s < wire::kShardCount; ++s) {
            counts[s] += owned.contains(s) ? 1 : 0;
        }
    }
    return counts;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shard_ownership)

BOOST_AUTO_TEST_CASE(every_shard_has_replicas_owners) {
    BOOST_TEST(copies(kThree, 1) == std::vector<int>(wire::kShardCount, 1));
    BOOST_TEST(copies(kThree, 2) == std::vector<int>(wire::kShardCount, 2));
    BOOST_TEST(copies(kThree, 5) == std::vector<int>(wire::kShardCount, 3));
    BOOST_TEST((owned_shards("alone", {"alone"}, 2) == wire::ShardSet::all()));
}

BOOST_AUTO_TEST_CASE(a_change_is_what_was_gained_and_what_was_lost) {
    wire::ShardSet before;
    before.add(1);
    before.add(2);
    wire::ShardSet after;
    after.add(2);
    after.add(3);
    auto change = ownership_change(before, after);
    BOOST_TEST(change.gained.count() == 1u);
    BOOST_TEST(change.gained.contains(3));
    BOOST_TEST(change.lost.count() == 1u);
    BOOST_TEST(change.lost.contains(1));
}

BOOST_AUTO_TEST_CASE(when_a_member_dies_only_its_shards_move_and_the_other_owner_fills_them) {
    std::vector<std::string> survivors{"node-a", "node-b"};
    wire::ShardSet before = owned_shards("node-a", kThree, 2);
    auto change = ownership_change(before, owned_shards("node-a", survivors, 2));
    BOOST_TEST(change.lost.count() == 0u);
    BOOST_TEST_REQUIRE(change.gained.count() > 0u);
    for (std::uint32_t s = 0; s < wire::kShardCount; ++s) {
        if (change.gained.contains(s)) {
            auto owners = wire::shard_owners(s, kThree, 2);
            BOOST_TEST_REQUIRE((owners == std::vector<std::string>{"node-b", "node-c"} ||
                                owners == std::vector<std::string>{"node-c", "node-b"}));
        }
    }
    auto sources = snapshot_sources(change.gained, "node-a", kThree, survivors, 2);
    BOOST_TEST_REQUIRE(sources.size() == 1u);
    BOOST_TEST(sources.begin()->first == "node-b");
    BOOST_TEST((sources.begin()->second == change.gained));
    // With one replica the dead node held them alone: no source, the agents re-send them.
    auto alone =
        ownership_change(owned_shards("node-a", kThree, 1), owned_shards("node-a", survivors, 1));
    BOOST_TEST(snapshot_sources(alone.gained, "node-a", kThree, survivors, 1).empty());
}

BOOST_AUTO_TEST_CASE(a_joining_member_takes_shards_only_and_fills_them_from_their_holders) {
    std::vector<std::string> four{"node-a", "node-b", "node-c", "node-d"};
    wire::ShardSet joined = owned_shards("node-d", four, 2);
    BOOST_TEST_REQUIRE(joined.count() > 0u);
    for (const auto &m : kThree) {
        auto change = ownership_change(owned_shards(m, kThree, 2), owned_shards(m, four, 2));
        BOOST_TEST(change.gained.count() == 0u);
        for (std::uint32_t s = 0; s < wire::kShardCount; ++s) {
            BOOST_TEST_REQUIRE((!change.lost.contains(s) || joined.contains(s)));
        }
    }
    auto sources = snapshot_sources(joined, "node-d", kThree, four, 2);
    wire::ShardSet covered;
    for (const auto &[name, shards] : sources) {
        for (std::uint32_t s = 0; s < wire::kShardCount; ++s) {
            if (shards.contains(s)) {
                BOOST_TEST_REQUIRE(wire::owns_shard(s, name, kThree, 2));
            }
        }
        covered.add_all(shards);
    }
    BOOST_TEST((covered == joined));
}

BOOST_AUTO_TEST_CASE(shard_sets_print_as_ranges) {
    wire::ShardSet s;
    BOOST_TEST(shard_ranges(s) == "");
    for (std::uint32_t shard : {0u, 1u, 2u, 3u, 7u, 9u, 10u, 1023u}) {
        s.add(shard);
    }
    BOOST_TEST(shard_ranges(s) == "0-3,7,9-10,1023");
    BOOST_TEST(shard_ranges(wire::ShardSet::all()) == "0-1023");
}

BOOST_AUTO_TEST_SUITE_END()
