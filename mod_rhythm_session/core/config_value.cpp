// Directive value parsing: strict digits, one optional unit, explicit range.
#include "config_value.h"

#include <cctype>
#include <limits>

namespace rhythm {
namespace {

// Splits "123abc" into the number and the unit; false if there are no digits or it overflows.
bool split_number(std::string_view text, std::uint64_t *number, std::string *unit,
                  std::string *why) {
    std::size_t i = 0;
    std::uint64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        std::uint64_t digit = static_cast<std::uint64_t>(text[i] - '0');
        if (n > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
            *why = "the number is too large";
            return false;
        }
        n = n * 10 + digit;
        ++i;
    }
    if (i == 0) {
        *why = "expected a number";
        return false;
    }
    unit->clear();
    for (; i < text.size(); ++i) {
        unit->push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(text[i]))));
    }
    *number = n;
    return true;
}

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

std::string format_size(std::uint64_t bytes) {
    if (bytes >= (1ULL << 30) && bytes % (1ULL << 30) == 0) {
        return std::to_string(bytes >> 30) + "G";
    }
    if (bytes >= (1ULL << 20) && bytes % (1ULL << 20) == 0) {
        return std::to_string(bytes >> 20) + "M";
    }
    if (bytes >= (1ULL << 10) && bytes % (1ULL << 10) == 0) {
        return std::to_string(bytes >> 10) + "K";
    }
    return std::to_string(bytes) + " bytes";
}

bool parse_size(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t *bytes,
                std::string *why) {
    std::uint64_t n = 0;
    std::string unit;
    if (!split_number(text, &n, &unit, why)) {
        *why = "'" + std::string(text) + "' is not a size (" + *why +
               "; use e.g. 65536, 64K, 64M, 1G)";
        return false;
    }
    std::uint64_t factor = 0;
    if (unit.empty() || unit == "b") {
        factor = 1;
    } else if (unit == "k" || unit == "kb") {
        factor = 1ULL << 10;
    } else if (unit == "m" || unit == "mb") {
        factor = 1ULL << 20;
    } else if (unit == "g" || unit == "gb") {
        factor = 1ULL << 30;
    } else {
        *why = "'" + std::string(text) + "' has an unknown unit (use K, M or G)";
        return false;
    }
    std::uint64_t value = 0;
    if (!scale(n, factor, &value, why) || value < min || value > max) {
        *why = "'" + std::string(text) + "' is out of range (" + format_size(min) + " to " +
               format_size(max) + ")";
        return false;
    }
    *bytes = value;
    return true;
}

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

bool parse_count(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t *n,
                 std::string *why) {
    std::uint64_t value = 0;
    std::string unit;
    std::string range = " (" + std::to_string(min) + " to " + std::to_string(max) + ")";
    if (!split_number(text, &value, &unit, why) || !unit.empty()) {
        *why = "'" + std::string(text) + "' is not a whole number" + range;
        return false;
    }
    if (value < min || value > max) {
        *why = "'" + std::string(text) + "' is out of range" + range;
        return false;
    }
    *n = value;
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

bool check_endpoint(std::string_view text, std::string *why) {
    const std::string_view tcp = "tcp://";
    const std::string_view ipc = "ipc://";
    std::string quoted = "'" + std::string(text) + "'";
    if (text.substr(0, ipc.size()) == ipc) {
        if (text.size() == ipc.size()) {
            *why = quoted + " names no socket path";
            return false;
        }
        return true;
    }
    if (text.substr(0, tcp.size()) != tcp) {
        *why = quoted + " is not an endpoint (use tcp://HOST:PORT or ipc://PATH)";
        return false;
    }
    std::string_view rest = text.substr(tcp.size());
    std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        *why = quoted + " has no host and port (use tcp://HOST:PORT)";
        return false;
    }
    std::string_view host = rest.substr(0, colon);
    std::string_view port = rest.substr(colon + 1);
    bool bracketed = host.front() == '[' && host.back() == ']' && host.size() > 2;
    for (char c : host) {
        bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
                  (bracketed && (c == ':' || c == '[' || c == ']'));
        if (!ok) {
            *why = quoted + " has a malformed host";
            return false;
        }
    }
    std::uint64_t number = 0;
    std::string unit;
    if (port.empty() || !split_number(port, &number, &unit, why) || !unit.empty() || number == 0 ||
        number > 65535) {
        *why = quoted + " needs a port from 1 to 65535";
        return false;
    }
    return true;
}

bool check_server_name(std::string_view text, std::string *why) {
    if (text.empty() || text.size() > 255) {
        *why = "the name must have 1 to 255 characters";
        return false;
    }
    for (char c : text) {
        if (c <= ' ' || c >= 127) {
            *why = "'" + std::string(text) + "' has a space or a character that is not printable";
            return false;
        }
    }
    return true;
}

}  // namespace rhythm
