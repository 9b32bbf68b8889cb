// Names in the bank: the reason a name is refused (the rule itself is in name.h).
#include "common/name.h"

namespace rhythm {

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
