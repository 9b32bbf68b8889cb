// The workers' own bound on failover fetches waiting for the agent: kFetchSlots at once, a slot
// given back is free at once, and one whose worker never gave it back is free after its time.
#include "core/fetch_slots.h"

#include <boost/test/unit_test.hpp>
#include <set>

using rhythm::FetchSlots;
using rhythm::kFetchSlots;

BOOST_AUTO_TEST_SUITE(fetch_slots)

BOOST_AUTO_TEST_CASE(at_most_kfetchslots_are_taken_at_once) {
    FetchSlots slots{};
    std::set<int> taken;
    for (std::size_t i = 0; i < kFetchSlots; ++i) {
        int slot = rhythm::take_fetch_slot(&slots, 1000, 2000);
        BOOST_TEST_REQUIRE(slot >= 0);
        taken.insert(slot);
    }
    BOOST_TEST(taken.size() == kFetchSlots);
    BOOST_TEST(rhythm::take_fetch_slot(&slots, 1500, 2500) == -1);
    rhythm::give_back_fetch_slot(&slots, 7);
    BOOST_TEST(rhythm::take_fetch_slot(&slots, 1500, 2500) == 7);
    BOOST_TEST(rhythm::take_fetch_slot(&slots, 1500, 2500) == -1);
}

BOOST_AUTO_TEST_CASE(a_slot_never_given_back_is_free_after_its_time) {
    // Its worker died while it waited.
    FetchSlots slots{};
    for (std::size_t i = 0; i < kFetchSlots; ++i) {
        rhythm::take_fetch_slot(&slots, 1000, i == 3 ? 1200 : 5000);
    }
    BOOST_TEST(rhythm::take_fetch_slot(&slots, 1199, 2000) == -1);
    BOOST_TEST(rhythm::take_fetch_slot(&slots, 1200, 2000) == 3);
}

BOOST_AUTO_TEST_SUITE_END()
