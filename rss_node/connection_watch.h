// The node's side of the connection bounds (connection_guard.h has the rules): it takes the
// monitor's connection events of the two bound sockets, measures every accepted connection on a
// timer, hangs up on what the guard names, counts and logs each, and gives back to the system
// the memory that connections which left held.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/clock.h"
#include "rss_node/connection_guard.h"
#include "rss_node/log.h"
#include "rss_node/node_config.h"
#include "rss_node/node_counters.h"
#include "wire/handshake_monitor.h"

namespace rhythm::node {

class ConnectionWatch {
  public:
    // The bound sockets, as the watch numbers them.
    static constexpr std::size_t kUpdatesSocket = 0;
    static constexpr std::size_t kQueriesSocket = 1;
    // How often the guard measures its next connections (ConnectionGuard::Limits::
    // measured_per_check of them, two system calls each): what a client can make the node hold
    // is its bound plus what it sends until its turn comes again (this, with up to 128
    // connections; 160 ms with 1000).
    static constexpr std::uint64_t kCheckIntervalMs = 20;

    ConnectionWatch(const NodeConfig &config, NodeCounters *counters);

    // The connection events drained from `socket`'s monitor, in their order.
    void on_events(std::size_t socket,
                   const std::vector<wire::HandshakeMonitor::ConnectionEvent> &events,
                   MonotonicTime now);

    // Whether a handshake that failed at `now` is explained by a hang-up of this node's (then
    // not worth a line of its own).
    bool explains_failed_handshake(MonotonicTime now);

    void on_delivered(int fd, std::uint64_t wire_bytes) { guard_.on_delivered(fd, wire_bytes); }

    // The timer, every kCheckIntervalMs; `late`: how much later than due this turn came.
    void check(MonotonicTime now, Duration late);

    std::size_t connections(std::size_t socket) const { return guard_.connections(socket); }

    // The listen backlog (ZMQ_BACKLOG) of each bound socket: as many connections as it keeps
    // (--max-connections), from libzmq's default of 100 up to 65535 (the kernel caps it at
    // net.core.somaxconn too). A node that restarts is reached again by every web server's agent
    // within a tenth of a second, two connections each: with 100, the kernel dropped the rest
    // (ListenOverflows), each came again only once its connect timed out, and 1,000 agents took
    // 12 s to reach the node instead of 1 (bench/agent_swarm).
    static int listen_backlog(std::size_t max_connections);
    int listen_backlog() const { return listen_backlog(guard_.limits().max_connections); }
    std::uint64_t held_total() const { return guard_.held_total(); }

  private:
    void admit(std::size_t socket, int fd, MonotonicTime now);
    void hung_up(MonotonicTime now);
    void silent_hung_up(const ConnectionGuard::Offender &offender, MonotonicTime now);

    ConnectionGuard guard_;
    NodeCounters *counters_;
    std::size_t closed_since_trim_ = 0;
    MonotonicTime trimmed_;
    std::uint64_t hung_up_unexplained_ = 0;  // hang-ups whose failed handshake may yet come
    MonotonicTime hung_up_at_;
    RateLimitedLog refused_log_{10000};
    RateLimitedLog silent_log_{10000};
};

}  // namespace rhythm::node
