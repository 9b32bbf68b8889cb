// rss_node's log: one line per event on stderr, "TIME LEVEL: text", which the systemd journal
// keeps as it is. Plus a rate limiter for events a hostile peer can cause at will (malformed
// frames): at most one line per interval, with the number of events it stood for.
#pragma once

#include <cstdint>
#include <string>

namespace rhythm::node {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Parses "debug", "info", "warn", "error".
bool parse_log_level(const std::string &text, LogLevel *level);

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

// printf-style; a line break is added.
void log_line(LogLevel level, const char *format, ...) __attribute__((format(printf, 2, 3)));

#define RSS_LOG(level, ...)                               \
    do {                                                  \
        if (::rhythm::node::log_enabled(level)) {         \
            ::rhythm::node::log_line(level, __VA_ARGS__); \
        }                                                 \
    } while (0)

// Decides, for repeated events, whether to log this one; counts the ones it holds back.
class RateLimitedLog {
  public:
    explicit RateLimitedLog(std::uint64_t interval_ms) : interval_ms_(interval_ms) {}

    // True when a line may be written at `now_mono_ms` (the node's turn, on the monotonic clock);
    // *suppressed is the number of events since the last line that were not logged.
    bool admit(std::uint64_t now_mono_ms, std::uint64_t *suppressed);

  private:
    std::uint64_t interval_ms_;
    std::uint64_t last_mono_ms_ = 0;
    std::uint64_t held_ = 0;
    bool logged_once_ = false;
};

}  // namespace rhythm::node
