// Parsing of directive values (sizes and durations) with the reason for a refusal, so that
// `apache2 -t` can name what is wrong. Kept free of httpd so that it is unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rhythm {

// "65536", "64K", "64M", "1G" (case-insensitive suffixes, powers of 1024). On failure returns
// false and sets `why`. The result must lie within [min, max].
bool parse_size(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t *bytes,
                std::string *why);

// "10" or "10s" (seconds), "250ms" (milliseconds). The result must lie within [min_ms, max_ms].
bool parse_duration_ms(std::string_view text, std::uint64_t min_ms, std::uint64_t max_ms,
                       std::uint64_t *ms, std::string *why);

// A plain whole number ("10") within [min, max].
bool parse_count(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t *n,
                 std::string *why);

// An idle timeout in whole seconds: a duration as above ("1800", "30s", "2000ms"), or "Off" or
// "0" for none (`seconds` 0). At most `max_s`.
bool parse_idle_timeout_s(std::string_view text, std::uint64_t max_s, std::uint64_t *seconds,
                          std::string *why);

// A ZeroMQ endpoint a web server can connect to: tcp://HOST:PORT (HOST a name, an IPv4 address
// or a bracketed IPv6 address; PORT 1 to 65535) or ipc://PATH.
bool check_endpoint(std::string_view text, std::string *why);

// A server's name in the bank: 1 to 255 printable characters, no spaces.
bool check_server_name(std::string_view text, std::string *why);

// Human-readable size for messages: "64M", "1536K", "100 bytes".
std::string format_size(std::uint64_t bytes);

}  // namespace rhythm
