// Session IDs: 128 random bits from the kernel's CSPRNG, carried in a cookie as 22 characters of
// unpadded base64url. Parsing is strict (exact length, alphabet, canonical last character) so
// that one ID has exactly one spelling and a malformed cookie is never mistaken for a session.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rhythm {

struct SessionId {
    static constexpr std::size_t kBytes = 16;
    static constexpr std::size_t kTextLength = 22;

    std::array<std::uint8_t, kBytes> bytes{};

    bool operator==(const SessionId &other) const { return bytes == other.bytes; }
    bool operator!=(const SessionId &other) const { return !(*this == other); }
};

// Fills `id` from getrandom(2). Returns false only if the kernel refuses.
bool generate_session_id(SessionId *id);

// Writes the 22-character text form plus a NUL into `out`.
void format_session_id(const SessionId &id, char out[SessionId::kTextLength + 1]);

// Parses the text form; false for anything that is not exactly a canonical encoding.
bool parse_session_id(std::string_view text, SessionId *id);

// The first 6 characters of the text form: enough to correlate log lines, too little to use.
void session_id_log_prefix(const SessionId &id, char out[7]);

}  // namespace rhythm
