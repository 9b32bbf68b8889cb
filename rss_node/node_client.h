// The operator commands that ask a running node: `rss_node status ENDPOINT` prints its status
// JSON, `rss_node get ENDPOINT SESSION-ID` prints what it holds for one session, `rss_node
// end-session SESSION-ID|--all ENDPOINT...` ends one session or every session on each node given
// (each owner stores tombstones; every web server is told). Each opens its
// own context and DEALER, asks once and waits at most `timeout_ms`. With `keys` enabled the DEALER
// is a CURVE client; a refused handshake is reported as such instead of as a silent timeout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "wire/curve.h"
#include "wire/messages.h"

namespace rhythm::node {

// Exit codes of the operator commands.
constexpr int kExitFound = 0;     // status answered, or the session was found
constexpr int kExitNotFound = 1;  // get: not found, or deleted (a tombstone)
constexpr int kExitError = 2;     // bad arguments, no answer in time, an error reply

int run_status_command(const std::string &endpoint, const wire::CurveClientKeys &keys,
                       int timeout_ms);
int run_get_command(const std::string &endpoint, const std::string &session_id,
                    const wire::CurveClientKeys &keys, int timeout_ms);
// Asks each node in turn to end `target`. kExitFound when every node answered and stored its
// tombstones (and, for one session, one node owned it); else kExitError, saying which nodes to
// ask again.
int run_end_session_command(const wire::EndSession &target,
                            const std::vector<std::string> &endpoints,
                            const wire::CurveClientKeys &keys, int timeout_ms);

}  // namespace rhythm::node
