// Leveled stderr logging for rss_node.
#include "rss_node/log.h"

#include <cstdarg>
#include <cstdio>
#include <ctime>

#include "common/clock.h"

namespace rhythm::node {
namespace {

LogLevel g_level = LogLevel::kInfo;

const char *level_name(LogLevel level) {
    switch (level) {
        case LogLevel::kDebug:
            return "debug";
        case LogLevel::kInfo:
            return "info";
        case LogLevel::kWarn:
            return "warn";
        case LogLevel::kError:
            return "error";
    }
    return "?";
}

}  // namespace

bool parse_log_level(const std::string &text, LogLevel *level) {
    for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
        if (text == level_name(l)) {
            *level = l;
            return true;
        }
    }
    return false;
}

void set_log_level(LogLevel level) {
    g_level = level;
}

bool log_enabled(LogLevel level) {
    return level >= g_level;
}

void log_line(LogLevel level, const char *format, ...) {
    char text[2048];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof text, format, args);
    va_end(args);
    WallTime now = WallTime::now();
    time_t seconds = static_cast<time_t>(now.us() / 1000000);
    tm utc;
    gmtime_r(&seconds, &utc);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &utc);
    // One fprintf per line: lines from one process never interleave.
    std::fprintf(stderr, "%s.%03ldZ %s: %s\n", when, static_cast<long>(now.us() / 1000 % 1000),
                 level_name(level), text);
}

bool RateLimitedLog::admit(std::uint64_t now_mono_ms, std::uint64_t *suppressed) {
    if (logged_once_ && now_mono_ms - last_mono_ms_ < interval_ms_) {
        held_++;
        return false;
    }
    *suppressed = held_;
    held_ = 0;
    last_mono_ms_ = now_mono_ms;
    logged_once_ = true;
    return true;
}

}  // namespace rhythm::node
