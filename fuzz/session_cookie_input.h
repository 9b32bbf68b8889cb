// The session_cookie fuzz target's body, shared by the libFuzzer executable and the regression
// unit test: what the module parses from a client (the session cookie's value, a session ID) and
// from its configuration (RhythmSessionCookieName, sizes, durations, the idle timeout,
// endpoints, server names). Every input goes to every parser; whatever a parser accepts must
// satisfy its contract, or the target aborts.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rhythm {

// Returns true when at least one parser accepted the input.
bool fuzz_session_cookie_input(const std::uint8_t *data, std::size_t size);

}  // namespace rhythm
