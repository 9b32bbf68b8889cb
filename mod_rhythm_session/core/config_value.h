// Parsing of the module's duration directives with the reason for a refusal, so that
// `apache2 -t` can name what is wrong. Kept free of httpd so that it is unit-tested. Sizes,
// counts, endpoints and names are written the same for rss_node: they are in common/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rhythm {

// "10" or "10s" (seconds), "250ms" (milliseconds). The result must lie within [min_ms, max_ms].
bool parse_duration_ms(std::string_view text, std::uint64_t min_ms, std::uint64_t max_ms,
                       std::uint64_t *ms, std::string *why);

// An idle timeout in whole seconds: a duration as above ("1800", "30s", "2000ms"), or "Off" or
// "0" for none (`seconds` 0). At most `max_s`.
bool parse_idle_timeout_s(std::string_view text, std::uint64_t max_s, std::uint64_t *seconds,
                          std::string *why);

}  // namespace rhythm
