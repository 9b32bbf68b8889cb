// Sizes: a whole number and one suffix from a fixed table, with an explicit range.
#include "common/size.h"

#include <limits>

#include "common/number.h"

namespace rhythm {
namespace {

struct Suffix {
    std::string_view text;  // lower case: split_number lower-cases the unit
    unsigned shift;
};

constexpr Suffix kSuffixes[] = {
    {"", 0},     {"b", 0},  {"k", 10},  {"kb", 10},  {"kib", 10}, {"m", 20},  {"mb", 20},
    {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40},   {"tb", 40}, {"tib", 40},
};

const char kSizeExamples[] = "use e.g. 65536, 64K, 64M, 1G";

}  // namespace

std::string format_size(std::uint64_t bytes) {
    static constexpr struct {
        unsigned shift;
        const char *suffix;
    } kUnits[] = {{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}};
    for (const auto &unit : kUnits) {
        std::uint64_t one = 1ULL << unit.shift;
        if (bytes >= one && bytes % one == 0) {
            return std::to_string(bytes >> unit.shift) + unit.suffix;
        }
    }
    return std::to_string(bytes) + " bytes";
}

bool parse_size(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t *bytes,
                std::string *why) {
    std::string quoted = "'" + std::string(text) + "'";
    std::uint64_t n = 0;
    std::string unit;
    if (!split_number(text, &n, &unit, why)) {
        *why = quoted + " is not a size (" + *why + "; " + kSizeExamples + ")";
        return false;
    }
    const Suffix *suffix = nullptr;
    for (const auto &s : kSuffixes) {
        if (unit == s.text) {
            suffix = &s;
        }
    }
    if (suffix == nullptr) {
        *why = quoted + " has an unknown unit (use K, M, G or T)";
        return false;
    }
    bool overflows = n > (std::numeric_limits<std::uint64_t>::max() >> suffix->shift);
    std::uint64_t value = overflows ? 0 : n << suffix->shift;
    if (overflows || value < min || value > max) {
        *why = quoted + " is out of range (" + format_size(min) + " to " + format_size(max) + ")";
        return false;
    }
    *bytes = value;
    return true;
}

}  // namespace rhythm
