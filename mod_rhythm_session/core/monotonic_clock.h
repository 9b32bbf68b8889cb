// The monotonic clock every process of a web server shares (CLOCK_MONOTONIC): for timeouts, and
// for the signs of life kept in the segment, which workers, the backup agent and the httpd
// parent compare. Never the wall clock: session expiry and lag are the wall clock's (apr_time_t,
// Unix microseconds), and neither must be compared with these.
#pragma once

#include <cstdint>
#include <time.h>

namespace rhythm {

// Microseconds since an arbitrary point (the boot). Read through the vDSO: no system call.
inline std::int64_t monotonic_us() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// The same clock as of the last timer tick (a few milliseconds old at most), for the signs of
// life kept in the segment, which every request leaves: it costs a few nanoseconds where the
// precise clock costs tens on a virtual machine, and they are compared with a 1.5 s threshold.
inline std::int64_t monotonic_coarse_us() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace rhythm
