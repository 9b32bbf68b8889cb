// Session ID generation (the text form is wire/session_key.cpp's).
#include "session_id.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/random.h>

namespace rhythm {

bool generate_session_id(SessionId *id) {
    std::size_t filled = 0;
    while (filled < id->bytes.size()) {
        ssize_t n = getrandom(id->bytes.data() + filled, id->bytes.size() - filled, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        filled += static_cast<std::size_t>(n);
    }
    return true;
}

void session_id_log_prefix(const SessionId &id, char out[7]) {
    std::string text = wire::format_session_key(id);
    std::memcpy(out, text.data(), 6);
    out[6] = '\0';
}

}  // namespace rhythm
