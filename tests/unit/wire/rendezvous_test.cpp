// Rendezvous hashing: stable owners, and only a leaving member's shards move.
#include "wire/rendezvous.h"

#include <boost/test/unit_test.hpp>
#include <set>

#include "wire/protocol.h"

using rhythm::wire::kShardCount;
using rhythm::wire::owns_shard;
using rhythm::wire::shard_owners;

BOOST_AUTO_TEST_SUITE(rendezvous)

BOOST_AUTO_TEST_CASE(a_lone_member_owns_every_shard) {
    std::vector<std::string> members{"node-a"};
    for (std::uint32_t s = 0; s < kShardCount; ++s) {
        BOOST_TEST_REQUIRE(owns_shard(s, "node-a", members, 2));
    }
}

BOOST_AUTO_TEST_CASE(replicas_are_distinct_and_spread) {
    std::vector<std::string> members{"a", "b", "c"};
    std::size_t owned_by_a = 0;
    for (std::uint32_t s = 0; s < kShardCount; ++s) {
        auto owners = shard_owners(s, members, 2);
        BOOST_TEST_REQUIRE(owners.size() == 2u);
        BOOST_TEST_REQUIRE(owners[0] != owners[1]);
        owned_by_a += owns_shard(s, "a", members, 2) ? 1 : 0;
    }
    // Two of three members own each shard: a holds about 2/3 of them.
    BOOST_TEST(owned_by_a > kShardCount * 55 / 100);
    BOOST_TEST(owned_by_a < kShardCount * 78 / 100);
}

BOOST_AUTO_TEST_CASE(only_the_leavers_shards_move) {
    std::vector<std::string> before{"a", "b", "c", "d"};
    std::vector<std::string> after{"a", "b", "d"};
    for (std::uint32_t s = 0; s < kShardCount; ++s) {
        auto old_owner = shard_owners(s, before, 1)[0];
        auto new_owner = shard_owners(s, after, 1)[0];
        if (old_owner != "c") {
            BOOST_TEST_REQUIRE(old_owner == new_owner);
        } else {
            // It goes to the next-highest member.
            BOOST_TEST_REQUIRE(new_owner == shard_owners(s, before, 2)[1]);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
