// A rate limit for error-log lines about something that can happen on every request (a save
// refused, a session lost): at most one line per kLogIntervalUs across every process, each saying
// how many happened since the previous line and in all. The state lives in the session segment,
// so every worker and the httpd parent share it, and is read and changed under the segment mutex
// that the event itself already holds. The httpd parent asks every 10 s too, so the events after
// the last line are logged within two intervals even if none follows them.
#pragma once

#include <cstdint>

namespace rhythm {

constexpr std::int64_t kLogIntervalUs = 10'000'000;

// In the segment: plain data.
struct LogGate {
    std::uint64_t unlogged;     // events since the last line
    std::int64_t last_line_us;  // wall clock of the last line; 0: none yet
};

// A line to write: `count` events since the previous line (0: nothing to write now), `total`
// ever, and when the previous line was written (0: none).
struct LogLine {
    std::uint64_t count = 0;
    std::uint64_t total = 0;
    std::int64_t previous_line_us = 0;
};

// True when a line is due at `now_wall_us`: something happened since the last line, and that line
// is at least kLogIntervalUs old (or the wall clock went back past it). Then `*line` says what to
// write and a new interval starts; otherwise `*line` is left as it is.
inline bool log_gate_take(LogGate &gate, std::uint64_t total, std::int64_t now_wall_us,
                          LogLine *line) {
    if (gate.unlogged == 0) {
        return false;
    }
    if (gate.last_line_us != 0 && now_wall_us >= gate.last_line_us &&
        now_wall_us - gate.last_line_us < kLogIntervalUs) {
        return false;
    }
    line->count = gate.unlogged;
    line->total = total;
    line->previous_line_us = gate.last_line_us;
    gate.unlogged = 0;
    gate.last_line_us = now_wall_us;
    return true;
}

}  // namespace rhythm
