// The two clocks of the project, as two types that do not mix. MonotonicTime is CLOCK_MONOTONIC:
// timeouts and intervals, and the signs of life the processes of a web server leave in the session
// segment, which every process of a machine reads on the same clock. WallTime is CLOCK_REALTIME,
// Unix time: session expiry, the save time a replication lag is measured from, the times the
// status pages print, the expiry the nodes compare. A time of one is never taken for the other,
// nor made from an integer without saying so (an explicit constructor, from_ms); two times of one
// clock give a Duration, by which a time of that clock moves. Where a time must stay a plain
// integer (the segment's fields, the wire, a request's apr_time_t), its name or comment says
// which clock (`_wall_ms`, `_mono_ms`).
//
// Both are read through the vDSO: no system call. Zero is the value of "none yet", as in the
// segment's fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <time.h>
#include <type_traits>

namespace rhythm {

// A span between two times of one clock. Milliseconds and seconds convert to it; it converts back
// by division: `d / std::chrono::milliseconds(1)`.
using Duration = std::chrono::microseconds;

namespace detail {

struct MonotonicClock {
    static constexpr clockid_t kId = CLOCK_MONOTONIC;
};
struct WallClock {
    static constexpr clockid_t kId = CLOCK_REALTIME;
};

inline std::int64_t read_clock_us(clockid_t id) {
    timespec ts;
    clock_gettime(id, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// A time on `Clock`, in microseconds since its epoch (the boot, or 1970). MonotonicTime and
// WallTime below.
template <class Clock>
class Time {
  public:
    constexpr Time() = default;
    constexpr explicit Time(std::int64_t us) : us_(us) {}
    static constexpr Time from_ms(std::int64_t ms) { return Time(ms * 1000); }

    static Time now() { return Time(read_clock_us(Clock::kId)); }

    // The monotonic clock as of the last timer tick (a few milliseconds old at most), for the
    // signs of life kept in the segment, which every request leaves: it costs a few nanoseconds
    // where the precise clock costs tens on a virtual machine, and they are compared with a 1.5 s
    // threshold (kStallUs).
    static Time coarse_now() {
        static_assert(std::is_same_v<Clock, MonotonicClock>, "only the monotonic clock is coarse");
        return Time(read_clock_us(CLOCK_MONOTONIC_COARSE));
    }

    constexpr std::int64_t us() const { return us_; }
    constexpr std::int64_t ms() const { return us_ / 1000; }

    friend constexpr Duration operator-(Time a, Time b) { return Duration(a.us_ - b.us_); }
    friend constexpr Time operator+(Time t, Duration d) { return Time(t.us_ + d.count()); }
    friend constexpr Time operator-(Time t, Duration d) { return Time(t.us_ - d.count()); }
    constexpr Time &operator+=(Duration d) {
        us_ += d.count();
        return *this;
    }

    friend constexpr bool operator==(Time a, Time b) { return a.us_ == b.us_; }
    friend constexpr bool operator!=(Time a, Time b) { return a.us_ != b.us_; }
    friend constexpr bool operator<(Time a, Time b) { return a.us_ < b.us_; }
    friend constexpr bool operator<=(Time a, Time b) { return a.us_ <= b.us_; }
    friend constexpr bool operator>(Time a, Time b) { return a.us_ > b.us_; }
    friend constexpr bool operator>=(Time a, Time b) { return a.us_ >= b.us_; }

  private:
    std::int64_t us_ = 0;
};

}  // namespace detail

using MonotonicTime = detail::Time<detail::MonotonicClock>;
using WallTime = detail::Time<detail::WallClock>;

}  // namespace rhythm
