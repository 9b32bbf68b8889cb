// A session's identity on the wire: the 16 random bytes of its ID, the shard they map to, and
// the 22-character unpadded base64url text form that cookies and the operator commands use. The
// text parser is strict (length, alphabet, canonical last character), exactly like the module's,
// so one session has one spelling everywhere.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "wire/protocol.h"

namespace rhythm::wire {

struct SessionKey {
    static constexpr std::size_t kTextLength = 22;

    std::array<std::uint8_t, kSessionKeyBytes> bytes{};

    bool operator==(const SessionKey &other) const { return bytes == other.bytes; }
    bool operator!=(const SessionKey &other) const { return !(*this == other); }
};

// shard = FNV-1a 64 of the 16 bytes, modulo kShardCount. Fixed by the protocol version.
std::uint32_t shard_of(const SessionKey &key);

// The 22-character text form.
std::string format_session_key(const SessionKey &key);

// False for anything but a canonical 22-character encoding.
bool parse_session_key(std::string_view text, SessionKey *key);

// FNV-1a 64, the protocol's one hash (shards and rendezvous scores).
std::uint64_t fnv1a64(const void *data, std::size_t size, std::uint64_t seed);
constexpr std::uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ULL;

// splitmix64's finaliser: spreads every input bit over the whole word.
constexpr std::uint64_t mix64(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

}  // namespace rhythm::wire
