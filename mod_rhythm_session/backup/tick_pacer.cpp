// The tick's rule: longer while the agent waits for a CPU, shorter again when it does not (see
// tick_pacer.h).
#include "backup/tick_pacer.h"

#include <algorithm>

namespace rhythm {

std::uint64_t TickPacer::wait_ms(std::uint64_t now_mono_us) const {
    return now_mono_us >= next_us_ ? 0 : (next_us_ - now_mono_us + 999) / 1000;
}

void TickPacer::ticked(std::uint64_t now_mono_us, bool worked, std::uint64_t waited_us) {
    bool contended = worked && waited_us > settings_.contended_us;
    interval_us_ = contended ? std::min(settings_.busy_tick_us, interval_us_ * 2)
                             : std::max(settings_.tick_us, interval_us_ - settings_.tick_us);
    if (worked || last_worked_us_ == 0) {
        last_worked_us_ = now_mono_us;
    }
    bool quiet = now_mono_us - last_worked_us_ >= settings_.quiet_after_us;
    next_us_ =
        now_mono_us + (quiet ? std::max(settings_.quiet_tick_us, interval_us_) : interval_us_);
}

}  // namespace rhythm
