// The one rule for a name in the bank: a web server's (SessionBackupServerId, the origin of a
// record), a node's (rss_node --name), as the module's directive, rss_node's settings and the
// wire decoders check it. A name is 1 to 255 bytes, each printable ASCII other than the space
// (0x21 to 0x7e): it travels with a 1-byte length, and it is printed in logs and status pages
// as it is.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rhythm {

constexpr std::size_t kMaxNameLength = 255;

// At least one byte, each from 0x21 to 0x7e: no space, no control character, no byte above
// ASCII. What a name is made of, and an endpoint as well (common/endpoint.h). Inline: the node
// checks the origin of every record it decodes.
inline bool is_printable_word(std::string_view text) {
    for (char c : text) {
        if (static_cast<unsigned char>(c) - 0x21u > 0x7eu - 0x21u) {
            return false;
        }
    }
    return !text.empty();
}

// A name: a printable word of at most kMaxNameLength bytes.
inline bool is_valid_name(std::string_view text) {
    return text.size() <= kMaxNameLength && is_printable_word(text);
}

// is_valid_name(), with the reason for a refusal.
bool check_name(std::string_view text, std::string *why);

}  // namespace rhythm
