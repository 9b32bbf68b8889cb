// The two clocks: neither mixes with the other or with a plain integer; their arithmetic; each
// reads the clock it names.
#include "common/clock.h"

#include <boost/test/unit_test.hpp>
#include <ctime>
#include <type_traits>

using rhythm::Duration;
using rhythm::MonotonicTime;
using rhythm::WallTime;
using namespace std::chrono_literals;

namespace {

template <class A, class B, class = void>
struct comparable : std::false_type {};
template <class A, class B>
struct comparable<A, B, std::void_t<decltype(std::declval<A>() < std::declval<B>())>>
    : std::true_type {};

template <class A, class B, class = void>
struct subtractable : std::false_type {};
template <class A, class B>
struct subtractable<A, B, std::void_t<decltype(std::declval<A>() - std::declval<B>())>>
    : std::true_type {};

static_assert(!std::is_convertible_v<MonotonicTime, WallTime> &&
              !std::is_convertible_v<WallTime, MonotonicTime> &&
              !std::is_constructible_v<WallTime, MonotonicTime>);
static_assert(!std::is_convertible_v<std::int64_t, MonotonicTime> &&
              !std::is_convertible_v<std::int64_t, WallTime> &&
              std::is_constructible_v<MonotonicTime, std::int64_t>);
static_assert(!comparable<MonotonicTime, WallTime>::value &&
              !subtractable<WallTime, MonotonicTime>::value &&
              !comparable<MonotonicTime, std::int64_t>::value &&
              comparable<MonotonicTime, MonotonicTime>::value);
static_assert(std::is_trivially_copyable_v<MonotonicTime> && sizeof(WallTime) == 8);

}  // namespace

BOOST_AUTO_TEST_SUITE(clocks)

BOOST_AUTO_TEST_CASE(times_of_one_clock_give_a_duration_and_move_by_one) {
    MonotonicTime t = MonotonicTime::from_ms(5);
    BOOST_TEST(t.us() == 5000);
    BOOST_TEST(MonotonicTime(5999).ms() == 5);
    BOOST_TEST(((t - MonotonicTime(2000)) == 3ms));
    BOOST_TEST((t + 2ms).us() == 7000);
    BOOST_TEST((t - 1s).us() == -995000);
    t += Duration(1);
    BOOST_TEST(t.us() == 5001);
    BOOST_TEST((MonotonicTime(1) < t && t <= t && t != MonotonicTime()));
    BOOST_TEST(((WallTime(10000) - WallTime(4000)) / 1ms == 6));
    BOOST_TEST(MonotonicTime().us() == 0);  // none yet
}

BOOST_AUTO_TEST_CASE(the_monotonic_clock_and_its_coarse_reading_are_one_clock) {
    MonotonicTime coarse = MonotonicTime::coarse_now();
    MonotonicTime precise = MonotonicTime::now();
    // The coarse reading is the clock as of the last timer tick: behind, never ahead.
    BOOST_TEST(coarse.us() <= precise.us());
    BOOST_TEST((precise - coarse < 1s));
    BOOST_TEST(MonotonicTime::now().us() >= precise.us());
}

BOOST_AUTO_TEST_CASE(the_wall_clock_is_unix_time) {
    std::int64_t before = static_cast<std::int64_t>(std::time(nullptr));
    WallTime now = WallTime::now();
    std::int64_t after = static_cast<std::int64_t>(std::time(nullptr));
    BOOST_TEST(now.ms() / 1000 >= before);
    BOOST_TEST(now.ms() / 1000 <= after + 1);  // time() may be a timer tick behind
}

BOOST_AUTO_TEST_SUITE_END()
