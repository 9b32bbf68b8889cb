// The node's side of the connection bounds (see connection_watch.h).
#include "rss_node/connection_watch.h"

#include <algorithm>
#include <malloc.h>
#include <sys/resource.h>

#include "rss_node/accepted_connection.h"
#include "wire/zmq_io.h"

namespace rhythm::node {
namespace {

using std::chrono::milliseconds;

// A turn this late does not judge: the node itself was not reading.
constexpr std::uint64_t kLateMs = 100;
// Memory freed by connections that left is given back to the system after this many have left,
// or one was hung up on, at most once a second (libzmq keeps some 27 KiB per connection).
constexpr std::size_t kTrimAfterClosed = 64;
constexpr std::uint64_t kTrimIntervalMs = 1000;
constexpr std::uint64_t kDefaultMaxConnections = 4096;
// A failed handshake this soon after the node hung up on a connection is taken for its result.
constexpr std::uint64_t kHangUpExplainsMs = 1000;
// A client PINGs every kHeartbeatIntervalMs; a connection is given up as a client gives up its
// own: kHeartbeatTimeoutMs after a PING that should have come.
constexpr std::uint64_t kSilentMs = wire::kHeartbeatIntervalMs + wire::kHeartbeatTimeoutMs;

const char *socket_name(std::size_t socket) {
    return socket == ConnectionWatch::kUpdatesSocket ? "updates" : "queries";
}

// --max-connections by default: 4096 per bound socket, fewer where the open-file limit would be
// reached first (both sockets full, and some descriptors for the rest).
ConnectionGuard::Limits limits_of(const NodeConfig &config) {
    ConnectionGuard::Limits limits;
    limits.max_connections = config.max_connections;
    if (limits.max_connections == 0) {
        rlimit files{};
        limits.max_connections = kDefaultMaxConnections;
        if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
            std::uint64_t spare = files.rlim_cur > 128 ? (files.rlim_cur - 128) / 2 : 1;
            limits.max_connections = std::min<std::uint64_t>(limits.max_connections, spare);
        }
    }
    limits.max_per_address = config.max_connections_per_address;
    limits.silent_ms = kSilentMs;
    return limits;
}

}  // namespace

int ConnectionWatch::listen_backlog(std::size_t max_connections) {
    constexpr std::size_t kLeast = 100;  // libzmq's default
    constexpr std::size_t kMost = 65535;
    return static_cast<int>(std::clamp(max_connections, kLeast, kMost));
}

ConnectionWatch::ConnectionWatch(const NodeConfig &config, NodeCounters *counters)
    : guard_(2, limits_of(config)), counters_(counters) {}

void ConnectionWatch::on_events(std::size_t socket,
                                const std::vector<wire::HandshakeMonitor::ConnectionEvent> &events,
                                MonotonicTime now) {
    using Kind = wire::HandshakeMonitor::ConnectionEvent::Kind;
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (events[i].kind == Kind::kClosed) {
            guard_.on_closed(socket, events[i].fd);
            closed_since_trim_++;
            continue;
        }
        // One closed again in the same batch is gone: its number may be another's by now.
        bool gone = std::any_of(events.begin() + i + 1, events.end(), [&](const auto &later) {
            return later.kind == Kind::kClosed && later.fd == events[i].fd;
        });
        if (events[i].kind == Kind::kAccepted && !gone) {
            admit(socket, events[i].fd, now);
        }
    }
}

void ConnectionWatch::admit(std::size_t socket, int fd, MonotonicTime now) {
    std::string peer = peer_address(fd);
    ConnectionGuard::Admit admit = guard_.on_accepted(socket, fd, peer);
    if (admit == ConnectionGuard::Admit::kAdmitted) {
        return;
    }
    if (hang_up(fd, peer)) {
        hung_up(now);
    }
    counters_->connections_refused++;
    std::uint64_t suppressed = 0;
    if (refused_log_.admit(now.ms(), &suppressed)) {
        RSS_LOG(LogLevel::kWarn,
                "RN0402: refused a connection to the %s socket from %s: %s (%llu refused in all, "
                "%llu since the last line)",
                socket_name(socket), peer.c_str(),
                admit == ConnectionGuard::Admit::kSocketFull
                    ? "it has --max-connections connections"
                    : "that address has --max-connections-per-address connections",
                static_cast<unsigned long long>(counters_->connections_refused),
                static_cast<unsigned long long>(suppressed + 1));
    }
}

void ConnectionWatch::hung_up(MonotonicTime now) {
    hung_up_unexplained_ =
        now - hung_up_at_ < milliseconds(kHangUpExplainsMs) ? hung_up_unexplained_ + 1 : 1;
    hung_up_at_ = now;
}

// A web server or peer gone without closing its connections (a host down, a partition, a
// process stopped): every one of a bank's web servers at once when this node is cut off, so at
// most a line per kSilentLogMs, with the count.
void ConnectionWatch::silent_hung_up(const ConnectionGuard::Offender &o, MonotonicTime now) {
    counters_->connections_silent++;
    std::uint64_t suppressed = 0;
    if (silent_log_.admit(now.ms(), &suppressed)) {
        RSS_LOG(LogLevel::kInfo,
                "RN0406: hung up on %s (%s socket): nothing came from it for %llu ms (%llu such "
                "in all, %llu since the last line)",
                o.address.c_str(), socket_name(o.socket),
                static_cast<unsigned long long>(kSilentMs),
                static_cast<unsigned long long>(counters_->connections_silent),
                static_cast<unsigned long long>(suppressed + 1));
    }
}

bool ConnectionWatch::explains_failed_handshake(MonotonicTime now) {
    if (hung_up_unexplained_ == 0 || now - hung_up_at_ >= milliseconds(kHangUpExplainsMs)) {
        return false;
    }
    hung_up_unexplained_--;
    return true;
}

void ConnectionWatch::check(MonotonicTime now, Duration late) {
    if (late > milliseconds(kLateMs)) {
        return;
    }
    std::vector<ConnectionGuard::Offender> offenders = guard_.check(bytes_read_from, now.ms());
    for (const ConnectionGuard::Offender &o : offenders) {
        if (!hang_up(o.fd, o.address)) {
            continue;  // gone already
        }
        hung_up(now);
        closed_since_trim_++;
        if (o.silent) {
            silent_hung_up(o, now);
            continue;
        }
        counters_->connections_dropped++;
        // Every one is logged: each costs the attacker a connection.
        RSS_LOG(LogLevel::kWarn,
                "RN0403: hung up on %s (%s socket): it held %llu bytes of a message it never "
                "finished (%llu connections dropped so far)",
                o.address.c_str(), socket_name(o.socket), static_cast<unsigned long long>(o.held),
                static_cast<unsigned long long>(counters_->connections_dropped));
    }
    bool trim =
        closed_since_trim_ >= kTrimAfterClosed || (!offenders.empty() && closed_since_trim_);
    if (trim && now - trimmed_ >= milliseconds(kTrimIntervalMs)) {
        malloc_trim(0);
        trimmed_ = now;
        closed_since_trim_ = 0;
    }
}

}  // namespace rhythm::node
