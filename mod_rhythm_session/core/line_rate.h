// A rate limit, per process, for an error-log line that a client can make every request write
// (a take-over that failed, a made-up session ID): at most one line per interval, each saying
// how many were held back since the previous one. Unlike LogGate (log_gate.h) it needs no
// segment and no mutex, so the request path that writes the line takes no lock for it; each
// process counts its own.
#pragma once

#include <atomic>
#include <cstdint>

namespace rhythm {

class LineRate {
  public:
    explicit constexpr LineRate(std::int64_t interval_us) : interval_us_(interval_us) {}

    // True when a line may be written at `now_us` (then `*held_back` is the number of lines
    // held back since the last one); false when this one is held back. Times a little before the
    // last line's are held back too: threads' request times do not come in order. A clock that
    // went back by more than the interval starts afresh.
    bool admit(std::int64_t now_us, std::uint64_t *held_back) {
        std::int64_t last = last_us_.load(std::memory_order_relaxed);
        if ((last != 0 && now_us - last < interval_us_ && last - now_us < interval_us_) ||
            !last_us_.compare_exchange_strong(last, now_us, std::memory_order_relaxed)) {
            held_back_.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        *held_back = held_back_.exchange(0, std::memory_order_relaxed);
        return true;
    }

  private:
    const std::int64_t interval_us_;
    std::atomic<std::int64_t> last_us_{0};  // 0: no line yet
    std::atomic<std::uint64_t> held_back_{0};
};

}  // namespace rhythm
