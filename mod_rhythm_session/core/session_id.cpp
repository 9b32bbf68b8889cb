// Session ID generation and its strict base64url text form.
#include "session_id.h"

#include <cerrno>
#include <cstring>
#include <sys/random.h>

namespace rhythm {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode_char(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

}  // namespace

bool generate_session_id(SessionId *id) {
    std::size_t filled = 0;
    while (filled < SessionId::kBytes) {
        ssize_t n = getrandom(id->bytes.data() + filled, SessionId::kBytes - filled, 0);
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

void format_session_id(const SessionId &id, char out[SessionId::kTextLength + 1]) {
    // 16 bytes = 5 groups of 3 bytes (20 characters) + 1 byte (2 characters).
    std::size_t o = 0;
    for (std::size_t i = 0; i < 15; i += 3) {
        std::uint32_t v = (id.bytes[i] << 16) | (id.bytes[i + 1] << 8) | id.bytes[i + 2];
        out[o++] = kAlphabet[(v >> 18) & 63];
        out[o++] = kAlphabet[(v >> 12) & 63];
        out[o++] = kAlphabet[(v >> 6) & 63];
        out[o++] = kAlphabet[v & 63];
    }
    out[o++] = kAlphabet[id.bytes[15] >> 2];
    out[o++] = kAlphabet[(id.bytes[15] & 3) << 4];
    out[o] = '\0';
}

bool parse_session_id(std::string_view text, SessionId *id) {
    if (text.size() != SessionId::kTextLength) {
        return false;
    }
    int six[SessionId::kTextLength];
    for (std::size_t i = 0; i < text.size(); ++i) {
        six[i] = decode_char(text[i]);
        if (six[i] < 0) {
            return false;
        }
    }
    // The last character carries 2 bits; its low 4 bits must be zero to be canonical.
    if (six[21] & 15) {
        return false;
    }
    SessionId parsed;
    std::size_t o = 0;
    for (std::size_t i = 0; i < 20; i += 4) {
        std::uint32_t v = (six[i] << 18) | (six[i + 1] << 12) | (six[i + 2] << 6) | six[i + 3];
        parsed.bytes[o++] = static_cast<std::uint8_t>(v >> 16);
        parsed.bytes[o++] = static_cast<std::uint8_t>(v >> 8);
        parsed.bytes[o++] = static_cast<std::uint8_t>(v);
    }
    parsed.bytes[15] = static_cast<std::uint8_t>((six[20] << 2) | (six[21] >> 4));
    *id = parsed;
    return true;
}

void session_id_log_prefix(const SessionId &id, char out[7]) {
    char text[SessionId::kTextLength + 1];
    format_session_id(id, text);
    std::memcpy(out, text, 6);
    out[6] = '\0';
}

}  // namespace rhythm
