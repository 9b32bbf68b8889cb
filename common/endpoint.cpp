// ZeroMQ endpoints: the transport, then a host and port (tcp) or a path (ipc).
#include "common/endpoint.h"

#include <cctype>

#include "common/name.h"
#include "common/number.h"

namespace rhythm {
namespace {

constexpr std::string_view kTcp = "tcp://";
constexpr std::string_view kIpc = "ipc://";
constexpr std::string_view kWildcard = "*";

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// A host name or an IPv4 address (or a network interface's name, where a socket binds).
bool is_plain_host(std::string_view host) {
    for (char c : host) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
            return false;
        }
    }
    return !host.empty();
}

// An IPv6 address in brackets: "[::1]", "[fe80::1]", "[::ffff:10.0.0.1]".
bool is_bracketed_ipv6(std::string_view host) {
    if (host.size() < 3 || host.front() != '[' || host.back() != ']') {
        return false;
    }
    std::string_view address = host.substr(1, host.size() - 2);
    for (char c : address) {
        if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
            return false;
        }
    }
    return address.find(':') != std::string_view::npos;
}

bool check_port(std::string_view port) {
    std::uint64_t number = 0;
    std::string unit;
    std::string ignored;
    return split_number(port, &number, &unit, &ignored) && unit.empty() && number >= 1 &&
           number <= 65535;
}

}  // namespace

bool check_endpoint(std::string_view text, EndpointUse use, std::string *why) {
    bool bind = use == EndpointUse::kBind;
    if (text.size() > kMaxEndpointLength) {
        *why = "the endpoint is longer than " + std::to_string(kMaxEndpointLength) + " bytes";
        return false;
    }
    std::string quoted = "'" + std::string(text) + "'";
    if (starts_with(text, kIpc)) {
        std::string_view path = text.substr(kIpc.size());
        if (path.empty()) {
            *why = quoted + " names no socket path";
            return false;
        }
        if (!is_printable_word(path)) {
            *why = quoted + " has a space or a character that is not printable";
            return false;
        }
        if (bind && path[0] == '@') {
            // Linux's abstract names have no file, so no permissions: anyone on the host connects.
            *why = quoted +
                   " is an abstract socket, which every local user may connect to: bind "
                   "a path (its file's mode, ipc-mode, says who may connect)";
            return false;
        }
        return true;
    }
    if (!starts_with(text, kTcp)) {
        *why = quoted + " is not an endpoint (use tcp://HOST:PORT or ipc://PATH)";
        return false;
    }
    std::string_view rest = text.substr(kTcp.size());
    std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        *why = quoted + " has no host and port (use tcp://HOST:PORT)";
        return false;
    }
    std::string_view host = rest.substr(0, colon);
    std::string_view port = rest.substr(colon + 1);
    if (host == kWildcard) {
        if (!bind) {
            *why = quoted + " has the wildcard host *, which only an endpoint to bind may have";
            return false;
        }
    } else if (!is_plain_host(host) && !is_bracketed_ipv6(host)) {
        *why = quoted + " has a malformed host";
        return false;
    }
    if (port == kWildcard) {
        if (!bind) {
            *why = quoted + " has the wildcard port *, which only an endpoint to bind may have";
            return false;
        }
    } else if (!check_port(port)) {
        *why = quoted +
               (bind ? " needs a port from 1 to 65535, or *" : " needs a port from 1 to 65535");
        return false;
    }
    return true;
}

std::string_view endpoint_host(std::string_view endpoint) {
    if (!starts_with(endpoint, kTcp)) {
        return {};
    }
    std::size_t colon = endpoint.rfind(':');
    return colon > kTcp.size() ? endpoint.substr(kTcp.size(), colon - kTcp.size())
                               : std::string_view();
}

std::string endpoint_reached_at(std::string_view bound, std::string_view reached_host) {
    std::string_view host = endpoint_host(bound);
    if (!reached_host.empty() && (host == kWildcard || host == "0.0.0.0" || host == "[::]")) {
        return std::string(kTcp) + std::string(reached_host) +
               std::string(bound.substr(kTcp.size() + host.size()));
    }
    return std::string(bound);
}

}  // namespace rhythm
