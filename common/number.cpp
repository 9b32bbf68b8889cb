// Whole numbers: strict digits, no sign, no overflow.
#include "common/number.h"

#include <cctype>
#include <limits>

namespace rhythm {

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

}  // namespace rhythm
