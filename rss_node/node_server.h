// The daemon proper: one thread, one ZeroMQ context, a SUB socket bound on the updates endpoint
// (subscribed to the topics of the shards this node owns), a ROUTER bound on the queries endpoint
// (fetches, heartbeats, snapshots, status, peer pings) and a DEALER to each peer. Each turn of the
// loop drains what arrived, answers it, streams a slice of any snapshot in progress, sweeps a few
// shards for expired sessions and pings the peers.
#pragma once

#include <csignal>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "rss_node/agent_tracker.h"
#include "rss_node/log.h"
#include "rss_node/node_config.h"
#include "rss_node/node_counters.h"
#include "rss_node/session_store.h"
#include "rss_node/zap_handler.h"
#include "wire/handshake_monitor.h"

namespace rhythm::node {

class NodeServer {
  public:
    explicit NodeServer(const NodeConfig &config);
    ~NodeServer();
    NodeServer(const NodeServer &) = delete;
    NodeServer &operator=(const NodeServer &) = delete;

    // Creates the context and binds the sockets; false with `*error` when a bind fails.
    bool start(std::string *error);

    // Serves until `*stop` becomes non-zero (set by a signal handler). Each time `*reload` is
    // set (SIGHUP) the CURVE client list is read again, and `*reload` is cleared.
    void run(const volatile std::sig_atomic_t *stop, volatile std::sig_atomic_t *reload);

    std::string status_json(std::uint64_t now_ms) const;

  private:
    struct Peer {
        std::string endpoint;
        void *socket = nullptr;
        std::string name;  // learnt from its pongs
        std::uint64_t last_pong_ms = 0;
    };
    struct SnapshotJob {
        std::string routing_id;
        std::uint64_t request_id = 0;
        wire::ShardSet shards;
        std::uint32_t next_shard = 0;
        std::vector<wire::SessionKey> pending;  // keys of the shard being sent
        std::size_t sent_in_shard = 0;
        std::uint64_t records = 0;
    };

    bool secure_sockets(std::string *error);
    bool watch_handshakes(void *socket, bool curve_server, std::string *error);
    void report_handshakes(std::uint64_t now_ms);
    void reload_clients();
    void subscribe_owned_shards();
    void drain_updates(std::uint64_t now_ms);
    void drain_queries(std::uint64_t now_ms);
    void drain_peer(Peer *peer, std::uint64_t now_ms);
    void handle_published(const std::string_view *frames, std::size_t count, std::uint64_t now_ms);
    void handle_query(const std::string_view *frames, std::size_t count, std::uint64_t now_ms);
    void answer_heartbeat(const std::string &routing_id, const wire::Heartbeat &heartbeat,
                          std::uint64_t now_ms);
    bool reply(const std::string &routing_id, const wire::Message &message);
    void advance_snapshots(std::uint64_t now_ms);
    void tick(std::uint64_t now_ms);
    void malformed(const char *socket, const wire::DecodeResult &result, std::uint64_t now_ms);

    NodeConfig config_;
    SessionStore store_;
    AgentTracker agents_;
    NodeCounters counters_;
    wire::ShardSet owned_;
    std::vector<Peer> peers_;
    std::deque<SnapshotJob> snapshots_;
    NodeKeys keys_;
    ZapHandler zap_;
    std::vector<std::unique_ptr<wire::HandshakeMonitor>> handshake_monitors_;
    void *context_ = nullptr;
    void *updates_ = nullptr;
    void *queries_ = nullptr;
    std::string updates_endpoint_;  // as bound (a wildcard port resolved)
    std::string queries_endpoint_;
    std::uint64_t started_ms_ = 0;
    std::uint64_t next_sweep_ms_ = 0;
    std::uint32_t sweep_shard_ = 0;
    std::uint64_t next_ping_ms_ = 0;
    std::uint64_t next_request_id_ = 1;
    bool snapshot_blocked_ = false;
    RateLimitedLog malformed_log_{1000};
    RateLimitedLog memory_log_{10000};
};

// Milliseconds of the realtime clock (session expiry is Unix time).
std::uint64_t wall_clock_ms();

}  // namespace rhythm::node
