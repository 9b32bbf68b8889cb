// What the connections to the node's bound sockets may make it hold, and which to drop.
//
// libzmq hands a multipart message over only once its last frame has come, and holds every frame
// before that in the connection's pipe: ZMQ_MAXMSGSIZE bounds a frame, the high-water mark counts
// whole messages, and nothing bounds an unfinished one. A client that sends frames with the MORE
// flag and never a last one grows the node by what it sends (1 MiB frames: 500 MB in 2 s on
// loopback). Nor does libzmq cap the connections a bound socket accepts.
//
// So the node watches each accepted connection from outside libzmq, a few at a time, round-robin
// (measured_per_check): the bytes libzmq has read from it (the kernel's count of bytes received,
// less what still waits in the socket), against the bytes of the messages it has handed over
// (each message names its connection). The
// difference is what libzmq holds for it, plus what the protocol itself takes (handshake,
// heartbeats, CURVE's envelopes), which the baseline absorbs: it follows the difference down at
// once and up while messages are being handed over, at most once per kBaselineRaiseMs, or by
// the few bytes a second of heartbeats while there is nothing to hand over. A
// connection that holds more than max_unfinished_bytes above its baseline while nothing of it has
// been handed over since the last check is dropped (a message behind an unfinished one cannot
// come out, so a stuck client makes no progress); so are the ones holding most while the total
// held is over max_unfinished_total. A legitimate peer, even far ahead of the node, has its
// messages handed over at every check.
//
// The same measure tells a connection that brings nothing at all: past silent_ms it is dropped
// too. This is how the node notices a web server or peer that vanished (a host gone, a
// partition, a process stopped) without ZMTP PINGs of its own: libzmq 4.3.4 cancels each PING's
// timeout timer with a walk of every timer of its I/O thread, so a node pinging N connections
// spent of the order of N² steps a second (31 % of a core for 1,000 idle web servers). The
// clients' PINGs, which libzmq answers without a timer, are what it measures: every client
// Rhythm ships sends one each second.
//
// Socket-free: the node feeds it the monitor's events and the byte counts, and shuts down what it
// names (shutting a descriptor down makes libzmq close that connection and free what it held).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace rhythm::node {

class ConnectionGuard {
  public:
    struct Limits {
        std::size_t max_connections = 4096;  // per bound socket
        std::size_t max_per_address = 64;    // per bound socket and client address
        std::uint64_t max_unfinished_bytes = 4u << 20;
        std::uint64_t max_unfinished_total = 64u << 20;
        // Connections measured per check (two system calls each), round-robin: 1000 idle
        // connections measured every 20 ms cost the node 20 % of a core.
        std::size_t measured_per_check = 128;
        // A connection from which no byte came for this long is dropped (0: never).
        std::uint64_t silent_ms = 0;
    };
    enum class Admit { kAdmitted, kSocketFull, kAddressFull };
    struct Offender {
        int fd;
        std::size_t socket;
        std::string address;
        std::uint64_t held;
        bool silent = false;  // dropped for bringing nothing, not for what it holds
    };

    // Over this many sockets, numbered from 0.
    ConnectionGuard(std::size_t sockets, const Limits &limits);

    // A connection accepted on `socket`, from `address` ("host:port"; its host is what the
    // per-address cap counts). A connection over a cap is not counted: drop it.
    Admit on_accepted(std::size_t socket, int fd, const std::string &address);
    void on_closed(std::size_t socket, int fd);

    // A message of `wire_bytes` (its frames as they came on the wire) handed over from `fd`.
    void on_delivered(int fd, std::uint64_t wire_bytes) {
        if (fd >= 0 && static_cast<std::size_t>(fd) < connections_.size()) {
            connections_[fd].delivered += wire_bytes;
        }
    }

    // Measures the next measured_per_check connections: read(fd, &bytes) gives the bytes libzmq
    // has read from it so far (false: not a connection it can measure, such as an ipc:// one).
    // Returns those to drop, silent ones first, then most held first; each is forgotten here
    // (its close event may still come).
    std::vector<Offender> check(const std::function<bool(int, std::uint64_t *)> &read,
                                std::uint64_t now_ms);

    // What is held now, by every connection together (as each was last measured).
    std::uint64_t held_total() const { return held_total_; }
    std::size_t connections(std::size_t socket) const { return per_socket_[socket]; }
    const Limits &limits() const { return limits_; }

    static constexpr std::uint64_t kBaselineRaiseMs = 10000;
    // A ZMTP greeting and handshake, CURVE's included, is well under this.
    static constexpr std::int64_t kHandshakeBytes = 4096;
    // What a connection with nothing to hand over may still send: ZMTP heartbeats, a PING of the
    // peer's and a PONG to the node's each second: 16 bytes, 82 under CURVE (each is a MESSAGE
    // command there). The price: a client that trickles an unfinished message slower than this
    // is not caught (8 MB a day).
    static constexpr std::uint64_t kHeartbeatBytesPerSecond = 96;

  private:
    struct Connection {
        bool live = false;
        std::size_t socket = 0;
        std::string address;
        std::string host;
        std::uint64_t delivered = 0;
        std::uint64_t delivered_at_check = 0;
        // read - delivered that is the protocol's own; before the first measure, what a
        // handshake may take (not what the first measure finds: that may be an attack already).
        std::int64_t baseline = kHandshakeBytes;
        std::uint64_t baseline_raised_ms = 0;
        std::uint64_t held = 0;  // at its last measure
        bool stuck = false;      // ... holding something while nothing came out
        bool measured = false;
        std::uint64_t bytes_read = 0;    // at its last measure
        std::uint64_t last_byte_ms = 0;  // the measure that first saw bytes_read
    };

    void forget(int fd);
    void set_held(Connection *c, std::uint64_t held, bool stuck);

    Limits limits_;
    std::vector<Connection> connections_;  // by descriptor
    std::vector<std::size_t> per_socket_;
    std::map<std::pair<std::size_t, std::string>, std::size_t> per_address_;
    std::uint64_t held_total_ = 0;
    std::size_t next_ = 0;  // the next descriptor to measure
};

}  // namespace rhythm::node
