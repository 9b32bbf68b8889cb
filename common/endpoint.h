// The ZeroMQ endpoints of the bank, as the module's SessionBackupNode, rss_node's --updates,
// --queries and --peer, and its operator commands (`rss_node status ENDPOINT`) take them: one
// parser, told whether the endpoint is one to connect to or one to bind.
//
//   tcp://HOST:PORT   HOST a name (letters, digits, '.', '-'), an IPv4 address or an IPv6
//                     address in brackets ([::1]); PORT 1 to 65535
//   ipc://PATH        PATH printable, without spaces; to bind, not an abstract name (@NAME),
//                     which has no file mode to say who may connect
//
// Only an endpoint to bind may have the wildcard host `*` (every interface) or the port `*` (a
// free port, which the node then reports resolved): ZeroMQ refuses both on connect. `inproc://`
// is refused: it never leaves its process, and every socket here talks to another process.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rhythm {

// The longest endpoint: a node tells web servers its updates endpoint in its heartbeat answers,
// where the protocol gives it at most this many bytes (docs/protocol.md).
constexpr std::size_t kMaxEndpointLength = 1024;

enum class EndpointUse {
    kConnect,  // the module's nodes, a node's peers, the operator commands
    kBind,     // a node's updates and queries endpoints
};

// True when `text` is an endpoint for `use`; otherwise false, with the reason in `why`.
bool check_endpoint(std::string_view text, EndpointUse use, std::string *why);

// The host of a tcp:// endpoint (an IPv6 address keeps its brackets); empty for other transports.
std::string_view endpoint_host(std::string_view endpoint);

// Where to reach an endpoint a node bound and reported (its updates endpoint): a wildcard host
// (`*`, `0.0.0.0`, `[::]`) means "wherever you reached me", and becomes `reached_host`, the host
// of the endpoint the node was reached at. Any other endpoint is returned as it is.
std::string endpoint_reached_at(std::string_view bound, std::string_view reached_host);

}  // namespace rhythm
