// Whole numbers as a setting writes them: digits, then perhaps a unit ("64K", "250ms"). The
// parsers of sizes and durations take the unit apart here; a count takes no unit at all. Every
// refusal says why, so that `apache2 -t` and `rss_node --check-config` can name what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rhythm {

// Splits "123abc" into 123 and the unit "abc" (lower-cased). False, with `why`, when the text
// does not start with a digit or the number does not fit in 64 bits; `number` and `unit` are
// then untouched.
bool split_number(std::string_view text, std::uint64_t *number, std::string *unit,
                  std::string *why);

// The value of a hex digit, either case; -1 for any other character.
inline int hex_digit_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// A plain whole number ("10") within [min, max].
bool parse_count(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t *n,
                 std::string *why);

}  // namespace rhythm
