// The session_cookie fuzz target's body, shared by the libFuzzer executable and the regression
// unit test: what the module parses from a client (the session cookie's value, a session ID) and
// from its configuration (RhythmSessionCookieName, sizes, durations, the idle timeout, counts,
// endpoints, server names), and a signed session ID. Every input goes to every parser; whatever a
// parser accepts must satisfy its contract, or the target aborts.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rhythm {

// The parsers of the target, one bit each in what fuzz_session_cookie_input() returns.
enum FuzzParser : unsigned {
    kFuzzSessionId = 1u << 0,    // wire::parse_session_key
    kFuzzCookie = 1u << 1,       // parse_session_cookie (RhythmSessionCookieName)
    kFuzzSize = 1u << 2,         // parse_size, 128 bytes to 16M (RhythmSessionMaxSize)
    kFuzzDuration = 1u << 3,     // parse_duration_ms, 1ms to 3600s (RhythmSessionLockTimeout)
    kFuzzIdleTimeout = 1u << 4,  // parse_idle_timeout_s, at most 86400 s
    kFuzzCount = 1u << 5,        // parse_count, 0 to 19 (SessionBackupAgentNice)
    kFuzzEndpoint = 1u << 6,     // check_endpoint, to connect to (SessionBackupNode)
    kFuzzName = 1u << 7,         // check_name (SessionBackupServerId)
    kFuzzSignedId = 1u << 8,     // IdSigner::verify, valid under kFuzzIdKey (RhythmSessionKeyFile)
};

// The key the target's IdSigner signs with: 32 bytes 0x01..0x20, as a key file line.
constexpr char kFuzzIdKey[] = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";

// Returns the FuzzParser bits of the parsers that accepted the input.
unsigned fuzz_session_cookie_input(const std::uint8_t *data, std::size_t size);

}  // namespace rhythm
