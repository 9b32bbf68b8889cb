// The operator commands that ask a running node: `rss_node status ENDPOINT` prints its status
// JSON, `rss_node get ENDPOINT SESSION-ID` prints what it holds for one session. Each opens its
// own context and DEALER, asks once and waits at most `timeout_ms`. With `keys` enabled the DEALER
// is a CURVE client; a refused handshake is reported as such instead of as a silent timeout.
#pragma once

#include <cstdint>
#include <string>

#include "wire/curve.h"

namespace rhythm::node {

// Exit codes of the operator commands.
constexpr int kExitFound = 0;     // status answered, or the session was found
constexpr int kExitNotFound = 1;  // get: not found, or deleted (a tombstone)
constexpr int kExitError = 2;     // bad arguments, no answer in time, an error reply

int run_status_command(const std::string &endpoint, const wire::CurveClientKeys &keys,
                       int timeout_ms);
int run_get_command(const std::string &endpoint, const std::string &session_id,
                    const wire::CurveClientKeys &keys, int timeout_ms);

}  // namespace rhythm::node
