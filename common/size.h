// Sizes in bytes as a setting writes them, for the module's RhythmSessionCacheSize and
// RhythmSessionMaxSize and rss_node's --max-memory alike: one set of suffixes, so that a value
// one accepts the other accepts too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rhythm {

// A number of bytes, or of K, M, G or T (powers of 1024); "KB"/"KiB", "MB"/"MiB"... mean the
// same, "B" is bytes, the suffix in any case: "65536", "64K", "64MiB", "2g". The result must lie
// within [min, max]. On failure returns false, sets `why` and leaves `bytes` untouched.
bool parse_size(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t *bytes,
                std::string *why);

// A size for messages, in the largest unit that divides it: "64M", "1536K", "100 bytes".
std::string format_size(std::uint64_t bytes);

}  // namespace rhythm
