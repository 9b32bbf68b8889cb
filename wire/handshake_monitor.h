// Watches a socket's ZMTP handshakes (zmq_socket_monitor) so that a refused connection is logged
// with what went wrong, on both sides: CURVE on one side only, a key the bank does not list, a
// client holding the wrong server key. libzmq itself says nothing; without this an operator sees
// only that no traffic flows. On a bound socket it can also tell each connection accepted and
// closed, with its descriptor (libzmq allows one monitor per socket).
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"

namespace rhythm::wire {

class HandshakeMonitor {
  public:
    HandshakeMonitor() = default;
    ~HandshakeMonitor();
    HandshakeMonitor(const HandshakeMonitor &) = delete;
    HandshakeMonitor &operator=(const HandshakeMonitor &) = delete;

    // Starts watching `socket` (before its bind or connect). `curve_server` is true for a socket
    // that accepts CURVE clients or would if configured (a node's bound sockets), `uses_curve`
    // whether this side has keys. `fix` names this side's setting in messages
    // ("SessionBackupCurve", "--curve-server and --curve-secret"...).
    // With `connections`, next() also reports each connection accepted and closed.
    bool attach(void *context, void *socket, bool curve_server, bool uses_curve, std::string fix,
                std::string *error, bool connections = false);

    struct ConnectionEvent {
        // kHandshakeFailed: any failed handshake, reported or not (its descriptor unknown).
        enum class Kind { kNone, kAccepted, kClosed, kHandshakeFailed };
        Kind kind = Kind::kNone;
        int fd = -1;
    };

    // The socket to poll for ZMQ_POLLIN; null before attach().
    void *events() const { return pair_; }

    // The event socket as a plain descriptor to poll (wire::pollable_descriptor): whoever sees it
    // readable must call next() until it returns false. -1 before attach().
    int fd() const { return fd_; }

    // Takes the next waiting event at `now`. True when there was one; `*report` is then a line to
    // log, or empty for an event not worth one (a success, or a repeat of the last failure within
    // kRepeatQuietMs). `*connection` (when given) is the connection event, if it was one.
    bool next(MonotonicTime now, std::string *report, ConnectionEvent *connection = nullptr);

    // Closes the event socket; must happen before the context is terminated.
    void close();

    // Failed handshakes seen.
    std::uint64_t failures() const { return failures_; }

    static constexpr std::uint64_t kRepeatQuietMs = 10000;

  private:
    std::string describe(std::uint16_t event, std::uint32_t value,
                         const std::string &endpoint) const;

    void *pair_ = nullptr;
    int fd_ = -1;
    bool curve_server_ = false;
    bool uses_curve_ = false;
    std::string fix_;
    std::uint64_t failures_ = 0;
    std::string last_report_;
    MonotonicTime last_reported_;  // when last_report_ was made
    std::uint64_t repeats_ = 0;
};

}  // namespace rhythm::wire
