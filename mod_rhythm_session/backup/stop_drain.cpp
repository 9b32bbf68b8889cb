#include "backup/stop_drain.h"

#include <chrono>

namespace rhythm {

StopDrain::StopDrain(Stop stop, MonotonicTime now) : stop_(stop), started_(now) {}

bool StopDrain::go_on(MonotonicTime now, std::uint64_t unacknowledged, bool any_node_up) const {
    if (unacknowledged == 0 || now - started_ >= std::chrono::milliseconds(bound_ms())) {
        return false;
    }
    return stop_ == Stop::kEnd || any_node_up;
}

}  // namespace rhythm
