// Durations: strict digits, one optional unit, explicit range.
#include "config_value.h"

#include <cctype>
#include <limits>

#include "common/number.h"

namespace rhythm {
namespace {

bool scale(std::uint64_t n, std::uint64_t factor, std::uint64_t *out, std::string *why) {
    if (factor != 0 && n > std::numeric_limits<std::uint64_t>::max() / factor) {
        *why = "the number is too large";
        return false;
    }
    *out = n * factor;
    return true;
}

// "Off", in any case, as httpd's flags accept it.
bool is_off(std::string_view text) {
    constexpr std::string_view kOff = "off";
    if (text.size() != kOff.size()) {
        return false;
    }
    for (std::size_t i = 0; i < kOff.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(text[i])) != kOff[i]) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool parse_duration_ms(std::string_view text, std::uint64_t min_ms, std::uint64_t max_ms,
                       std::uint64_t *ms, std::string *why) {
    std::uint64_t n = 0;
    std::string unit;
    if (!split_number(text, &n, &unit, why)) {
        *why =
            "'" + std::string(text) + "' is not a duration (" + *why + "; use e.g. 10s or 250ms)";
        return false;
    }
    std::uint64_t factor = 0;
    if (unit.empty() || unit == "s") {
        factor = 1000;
    } else if (unit == "ms") {
        factor = 1;
    } else {
        *why = "'" + std::string(text) + "' has an unknown unit (use s or ms)";
        return false;
    }
    std::uint64_t value = 0;
    if (!scale(n, factor, &value, why) || value < min_ms || value > max_ms) {
        *why = "'" + std::string(text) + "' is out of range (" + std::to_string(min_ms) + "ms to " +
               std::to_string(max_ms / 1000) + "s)";
        return false;
    }
    *ms = value;
    return true;
}

bool parse_idle_timeout_s(std::string_view text, std::uint64_t max_s, std::uint64_t *seconds,
                          std::string *why) {
    if (is_off(text)) {
        *seconds = 0;
        return true;
    }
    std::uint64_t ms = 0;
    if (!parse_duration_ms(text, 0, max_s * 1000, &ms, why)) {
        return false;
    }
    // mod_session counts a session's age in whole seconds.
    if (ms % 1000 != 0) {
        *why = "'" + std::string(text) + "' is not a whole number of seconds";
        return false;
    }
    *seconds = ms / 1000;
    return true;
}

}  // namespace rhythm
