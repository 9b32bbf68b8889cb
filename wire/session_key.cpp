// Shard mapping and the strict base64url text form of session keys.
#include "wire/session_key.h"

namespace rhythm::wire {
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

std::uint64_t fnv1a64(const void *data, std::size_t size, std::uint64_t seed) {
    const auto *p = static_cast<const std::uint8_t *>(data);
    std::uint64_t h = seed;
    for (std::size_t i = 0; i < size; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

std::uint32_t shard_of(const SessionKey &key) {
    return static_cast<std::uint32_t>(fnv1a64(key.bytes.data(), key.bytes.size(), kFnvOffsetBasis) %
                                      kShardCount);
}

std::string format_session_key(const SessionKey &key) {
    // 16 bytes = 5 groups of 3 bytes (20 characters) + 1 byte (2 characters).
    std::string out;
    out.reserve(SessionKey::kTextLength);
    const auto &b = key.bytes;
    for (std::size_t i = 0; i < 15; i += 3) {
        std::uint32_t v = (std::uint32_t{b[i]} << 16) | (std::uint32_t{b[i + 1]} << 8) | b[i + 2];
        out.push_back(kAlphabet[(v >> 18) & 63]);
        out.push_back(kAlphabet[(v >> 12) & 63]);
        out.push_back(kAlphabet[(v >> 6) & 63]);
        out.push_back(kAlphabet[v & 63]);
    }
    out.push_back(kAlphabet[b[15] >> 2]);
    out.push_back(kAlphabet[(b[15] & 3) << 4]);
    return out;
}

bool parse_session_key(std::string_view text, SessionKey *key) {
    if (text.size() != SessionKey::kTextLength) {
        return false;
    }
    int six[SessionKey::kTextLength];
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
    SessionKey parsed;
    std::size_t o = 0;
    for (std::size_t i = 0; i < 20; i += 4) {
        std::uint32_t v = (six[i] << 18) | (six[i + 1] << 12) | (six[i + 2] << 6) | six[i + 3];
        parsed.bytes[o++] = static_cast<std::uint8_t>(v >> 16);
        parsed.bytes[o++] = static_cast<std::uint8_t>(v >> 8);
        parsed.bytes[o++] = static_cast<std::uint8_t>(v);
    }
    parsed.bytes[15] = static_cast<std::uint8_t>((six[20] << 2) | (six[21] >> 4));
    *key = parsed;
    return true;
}

}  // namespace rhythm::wire
