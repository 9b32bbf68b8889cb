// Names in the bank: printable ASCII words of 1 to 255 bytes.
#include "common/name.h"

namespace rhythm {

bool is_printable_word(std::string_view text) {
    for (char c : text) {
        if (c < 0x21 || c > 0x7e) {
            return false;
        }
    }
    return !text.empty();
}

bool is_valid_name(std::string_view text) {
    return text.size() <= kMaxNameLength && is_printable_word(text);
}

bool check_name(std::string_view text, std::string *why) {
    if (text.empty() || text.size() > kMaxNameLength) {
        *why = "the name must have 1 to " + std::to_string(kMaxNameLength) + " characters";
        return false;
    }
    if (!is_printable_word(text)) {
        *why = "'" + std::string(text) + "' has a space or a character that is not printable";
        return false;
    }
    return true;
}

}  // namespace rhythm
