// The daemon's loop: its sockets, their handlers and timers on the event loop
// (wire/event_loop.h), and the dispatch of what arrives to the parts that decide what to do with
// it. One thread, one ZeroMQ context: a SUB socket bound on the updates endpoint, subscribed to
// the topics of the shards this node owns (updates go to the store and the agent tracker); a
// ROUTER bound on the queries endpoint (fetches to the store, heartbeats to the agent tracker,
// snapshot requests to the snapshot server, status requests to node_status.h, pings); a DEALER to
// each peer (pongs to the membership, snapshot answers to the snapshot fills). The timers sweep a
// few shards for expired sessions, ping the peers and forget idle agents; the end of each turn
// recomputes the shards owned when the live peers change.
//
// Two clocks (common/clock.h), read once per turn: the wall clock (Unix time) for session expiry,
// which the store and the snapshots compare with the expiry on the wire, and for the intervals of
// the agent tracker and of the rate-limited log lines; the monotonic clock for the peers, the
// fills, the lost shards, the handshake monitors and the node's own stalls.
#pragma once

#include <array>
#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "rss_node/agent_tracker.h"
#include "rss_node/catch_up.h"
#include "rss_node/connection_watch.h"
#include "rss_node/handover_outcomes.h"
#include "rss_node/handover_waits.h"
#include "rss_node/log.h"
#include "rss_node/membership.h"
#include "rss_node/metrics_server.h"
#include "rss_node/node_config.h"
#include "rss_node/node_counters.h"
#include "rss_node/node_status.h"
#include "rss_node/recent_takeovers.h"
#include "rss_node/session_ending.h"
#include "rss_node/session_store.h"
#include "rss_node/snapshot_fill.h"
#include "rss_node/snapshot_server.h"
#include "rss_node/zap_handler.h"
#include "wire/event_loop.h"
#include "wire/handshake_monitor.h"

namespace rhythm::node {

// glibc's malloc as a node wants it, for the whole process; call it before anything allocates
// much. ZeroMQ's I/O thread mallocs every received message in its own arena and the main thread
// frees it once applied; with glibc's default trim threshold (128 KiB) that arena's top is given
// back and faulted in again all through an ingest. Each arena now keeps up to 32 MiB free: 10 %
// more updates per second with 1 KiB sessions.
void use_node_malloc_settings();

class NodeServer {
  public:
    // A SUB that falls behind by this many messages starts losing them (the agents re-send).
    static constexpr int kUpdatesHighWaterMark = 50000;

    explicit NodeServer(const NodeConfig &config);
    ~NodeServer();
    NodeServer(const NodeServer &) = delete;
    NodeServer &operator=(const NodeServer &) = delete;

    // Creates the context and binds the sockets; false with `*error` when a bind fails.
    bool start(std::string *error);

    // Serves until `*stop` becomes non-zero (set by a signal handler). Each time `*reload` is
    // set (SIGHUP) the CURVE client list is read again, and `*reload` is cleared.
    void run(const volatile std::sig_atomic_t *stop, volatile std::sig_atomic_t *reload);

    std::string status_json() const;
    // The port --metrics listens on (0: off).
    unsigned metrics_port() const { return metrics_.port(); }

  private:
    bool secure_sockets(std::string *error);
    // `guarded`: the socket's number in connections_ (its connections are counted and bounded);
    // -1 for the sockets this node connects.
    bool watch_handshakes(void *socket, bool curve_server, std::string *error, int guarded = -1);
    void drain_monitor(wire::HandshakeMonitor *monitor, int guarded);
    void reload_clients();
    void update_ownership(MonotonicTime mono);
    void send_snapshot_requests(MonotonicTime mono);
    void on_snapshot_record(const wire::SnapshotRecord &record, WallTime now, MonotonicTime mono);
    void forget_fills(MonotonicTime mono);
    void send_catch_up_offers();
    void on_catch_up_offer(const wire::CatchUpOffer &offer);
    void fill_offered_shards(MonotonicTime mono);
    void watch_events();
    void begin_turn(MonotonicTime mono);
    void ping_peers();
    void sweep();
    void end_turn();
    wire::ShardSet short_shards() const;
    void drain_updates(WallTime now);
    void drain_queries(WallTime now);
    void drain_peer(std::size_t peer, WallTime now, MonotonicTime mono);
    void handle_published(const std::string_view *frames, std::size_t count, WallTime now);
    void handle_query(const std::string_view *frames, std::size_t count, WallTime now);
    void answer_fetch(const std::string &routing_id, std::uint64_t request_id,
                      const wire::SessionKey &key, WallTime now);
    bool hold_for_handover(const std::string &routing_id, const wire::Fetch &fetch, WallTime now);
    // The servers other than the asker that may hold a newer copy than `held`; empty views
    // where fewer.
    using NewerHolders = std::array<std::string_view, RecentTakeovers::kTakers + 1>;
    NewerHolders may_have_newer(const wire::SessionKey &key, const wire::SessionRecord &held,
                                std::string_view asker) const;
    bool silent_lately(std::string_view server_name) const;
    bool handover_given_up(const wire::SessionKey &key, std::uint64_t version,
                           std::string_view server_name) const;
    std::string newer_holders_heard(const NewerHolders &servers) const;
    void log_fetch_answer(const wire::SessionKey &key, const AgentTracker::Agent *asker,
                          const wire::FetchReply &answer, const char *why_provisional,
                          const std::string &newer_heard) const;
    void on_handover_reply(const std::string &routing_id, const wire::HandoverReply &reply,
                           WallTime now);
    void expire_handovers();
    void handover_unanswered(std::size_t fetches_held);
    void arm_handover_timer();
    void answer_held(const HandoverWaits::Wait &wait, WallTime now);
    void answer_heartbeat(const std::string &routing_id, const wire::Heartbeat &heartbeat);
    wire::EndSessionReply end_sessions(const wire::EndSession &request, WallTime now);
    NodeStatus node_status() const;
    bool reply(const std::string &routing_id, const wire::Message &message);
    void send_refusals(const std::string &routing_id, AgentTracker::Agent *agent);
    void advance_snapshots(WallTime now);
    void malformed(const char *socket, const wire::DecodeResult &result);
    void refused_for_memory();
    void refused_implausible(const wire::SessionRecord &record, const char *why, const char *what);
    void count_conflict(const wire::SessionRecord &record, const ApplyOutcome &outcome);
    void leave_full_when_room();

    NodeConfig config_;
    SessionStore store_;
    AgentTracker agents_;
    NodeCounters counters_;
    Membership membership_;
    std::vector<void *> peer_sockets_;  // a DEALER to each peer, in membership_.peers() order
    bool ownership_decided_ = false;    // false during the start-up grace
    bool membership_changed_ = false;   // ownership is to be computed again
    std::vector<std::string> previous_members_;  // the live members ownership was last computed on
    wire::ShardSet owned_;
    // When each shard this node has lost is to be dropped (0: not lost).
    std::array<MonotonicTime, wire::kShardCount> drop_lost_at_{};
    SnapshotFills fills_;
    CatchUp catch_up_;
    SnapshotServer snapshots_;
    NodeKeys keys_;
    ZapHandler zap_;
    std::vector<std::unique_ptr<wire::HandshakeMonitor>> handshake_monitors_;
    std::vector<int> monitor_guarded_;  // each monitor's `guarded`
    ConnectionWatch connections_;
    void *context_ = nullptr;
    void *updates_ = nullptr;
    void *queries_ = nullptr;
    std::string updates_endpoint_;  // as bound (a wildcard port resolved)
    std::string queries_endpoint_;
    MonotonicTime started_;
    std::uint32_t sweep_shard_ = 0;
    wire::EventLoop loop_;
    wire::EventLoop::Id ping_timer_ = 0;
    HandoverWaits handovers_;
    RecentTakeovers takeovers_;
    HandoverOutcomes handover_outcomes_;
    wire::ShardSet copied_from_peers_;  // shards with records a peer's snapshot gave since start
    wire::EventLoop::Id handover_timer_ = 0;  // at the earliest deadline of handovers_
    // The current turn's times: the wall clock (session expiry) and the monotonic clock.
    WallTime now_;
    MonotonicTime mono_;
    std::uint64_t next_request_id_ = 1;
    // Since a change was refused for lack of memory, until the store is back under
    // kRoomAgainPercent of --max-memory: agents keep what it refused unacknowledged, and hold
    // back re-sending it, until then.
    bool full_ = false;
    RateLimitedLog malformed_log_{1000};
    RateLimitedLog memory_log_{10000};
    RateLimitedLog conflict_log_{10000};
    RateLimitedLog implausible_log_{10000};
    RateLimitedLog end_session_log_{10000};
    RateLimitedLog handover_unanswered_log_{10000};
    RateLimitedLog handover_skipped_log_{10000};
    RateLimitedLog restart_wait_log_{10000};
    RateLimitedLog unknown_offer_log_{10000};
    MetricsServer metrics_;  // --metrics: started when configured
    EndSessionRate end_session_rate_;
};

}  // namespace rhythm::node
