// The backup agent: the one process of a web server that talks to the bank. Forked by the httpd
// parent, it owns every ZeroMQ socket (none exists before the fork). This is its event loop
// (wire/event_loop.h): it
//   - publishes each changed session behind the requests, on its shard's topic, to each node on
//     a socket of its own once the node's subscriptions have arrived there, and heartbeats every
//     node; it feeds the nodes' answers to the replication window (replication_window.h), which
//     says what the bank holds and what goes again to whom;
//   - publishes whole shards again when a node asks or missed them, and drops the local copies
//     the bank says are superseded;
//   - hands the workers' fetches to the fetch service (fetch_service.h) and writes its figures
//     for server-status (agent_report.h);
//   - notices its own stalls and the server's (the signs of life in the segment).
// Shared memory is the source of truth: an agent that starts finds every change the bank has not
// acknowledged there. The class is httpd-free; the module's glue forks and supervises it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backup/agent_log.h"
#include "backup/agent_report.h"
#include "backup/fetch_service.h"
#include "backup/replication_window.h"
#include "backup/tick_pacer.h"
#include "common/clock.h"
#include "core/backup_feed.h"
#include "core/session_cache.h"
#include "wire/curve.h"
#include "wire/event_loop.h"
#include "wire/handshake_monitor.h"
#include "wire/messages.h"

namespace rhythm {

class CpuWait;

struct AgentConfig {
    std::string server_id;                  // this web server's name in the bank
    std::vector<std::string> nodes;         // each rss_node's query endpoint
    wire::CurveClientKeys curve;            // every socket is a CURVE client when enabled
    int fetch_listener = -1;                // fetch_channel.h's listening socket
    TickPacer::Settings tick;               // how often changes are taken from the segment
    std::uint64_t heartbeat_busy_ms = 2;    // heartbeat interval while changes are in flight
    std::uint64_t heartbeat_retry_ms = 20;  // ... when the last one is not answered yet
    std::uint64_t heartbeat_idle_ms = 500;  // ... and otherwise
    std::uint64_t node_timeout_ms = 1500;   // a node silent this long is down
    std::uint64_t resend_after_ms = 1000;   // re-send what stays unacknowledged this long
    // Most changes in flight (published, not acknowledged), and their bytes: past these the agent
    // waits for acknowledgements and the rest waits in the segment.
    std::size_t max_in_flight = 100000;
    std::size_t max_in_flight_bytes = 64u << 20;
    // Most failover fetches waiting for the bank at once; past it a fetch is answered at once as
    // shed (a new session). A client sending made-up IDs can then hold at most this many
    // workers for SessionBackupTimeout, and the bank sees no more than this many at a time.
    std::size_t max_pending_fetches = 32;
    // SessionBackupOutageGrace (fetch_service.h): how long after the bank's last word a take-over
    // is answered 503 rather than start a new session.
    std::uint64_t outage_grace_ms = 30000;
    // RhythmSessionMaxSize: a session the bank holds at a larger size is not taken over (a
    // request could not save it here); the bank's copy stays for a server that can.
    std::uint64_t max_session_bytes = 64u << 10;
};

class BackupAgent : private FetchService::Bank {
  public:
    BackupAgent(SessionCache cache, AgentConfig config, AgentLog log);
    ~BackupAgent();
    BackupAgent(const BackupAgent &) = delete;
    BackupAgent &operator=(const BackupAgent &) = delete;

    // Runs until *stop becomes true (a signal handler sets it) or the parent process is gone.
    void run(const volatile int *stop);

  private:
    struct Node;

    // FetchService::Bank: the nodes, as the failover fetches see them.
    std::size_t node_count() const override { return nodes_.size(); }
    bool up(std::size_t node) const override { return window_.up(node); }
    bool silent(std::size_t node) const override;
    bool owns(std::size_t node, std::uint32_t shard) const override;
    bool send(std::size_t node, const wire::Frames &frames) override;
    bool reconnecting(std::size_t node) const override;
    MonotonicTime last_answer() const override;
    bool out_lately(std::size_t node, std::uint64_t within_ms) const override;
    bool unheard_lately(std::size_t node, std::uint64_t within_ms) const override;
    std::string_view name(std::size_t node) const override;

    void connect_nodes();
    // `dealer_of`: the node whose DEALER `socket` is, whose connection's close is reported.
    void watch_handshakes(void *socket, std::size_t dealer_of = kNotADealer);
    void report_handshakes(std::size_t monitor, MonotonicTime now);
    void watch(wire::EventLoop &loop);
    void take_turn(wire::EventLoop &loop, CpuWait &cpu_wait);
    // `restart`: the segment stays for the next agent (else it goes with the server).
    void drain_before_stop(wire::EventLoop &loop, CpuWait &cpu_wait, bool restart);
    void say_restarting();
    void drain_node(std::size_t node, MonotonicTime now);
    void excuse_own_stall(Duration late);
    void on_node_message(std::size_t node, const wire::Message &message, MonotonicTime now);
    void on_heartbeat_ack(std::size_t node, const wire::HeartbeatAck &ack, MonotonicTime now);
    void on_subscriptions(std::size_t node);
    bool any_node_up() const;
    std::size_t nodes_answering() const;
    void node_back(const Node &node, const wire::HeartbeatAck &ack, MonotonicTime now);
    void back_in_touch(MonotonicTime now);
    void on_resend(std::size_t node, const wire::Resend &resend, MonotonicTime now);
    wire::SessionRecord record_of(const ChangeRecord &change) const;
    // Another server takes a session over: answer with this server's newer copy, if any.
    void on_handover(std::size_t node, const wire::Handover &handover);
    void republish_shards(std::size_t node, const wire::ShardSet &shards);
    void send_update(std::size_t node, const ReplicationWindow::Change &change);
    void send_heartbeats(MonotonicTime now);
    // Returns how many changes it published.
    std::size_t publish_changes(MonotonicTime now);
    // Read the wall clock themselves: the lag of an acknowledgement is measured to the moment it
    // is recorded, and a session re-queued is dated as it is put back.
    void settle_acknowledged();
    void continue_scans();
    void resend_unacknowledged(MonotonicTime now);
    void report(MonotonicTime now);

    SessionCache cache_;
    BackupFeed feed_;
    AgentConfig config_;
    AgentLog log_;
    void *context_ = nullptr;
    std::vector<std::unique_ptr<Node>> nodes_;
    static constexpr std::size_t kNotADealer = SIZE_MAX;
    struct Monitor {
        std::unique_ptr<wire::HandshakeMonitor> watch;
        std::size_t dealer_of;  // the node whose DEALER it watches, or kNotADealer
    };
    std::vector<Monitor> handshake_monitors_;
    wire::AgentId agent_id_{};
    std::uint64_t epoch_ = 0;
    std::uint64_t next_request_id_ = 1;
    ReplicationWindow window_;
    std::vector<BackupFeed::Acknowledgement> settling_;  // reused by settle_acknowledged
    TickPacer pacer_;
    // A scan that puts sessions back on the dirty list: all unacknowledged ones (at start), or
    // those of the shards a node asked for.
    struct Scan {
        bool active = false;
        bool unacknowledged_only = true;
        wire::ShardSet shards;
        std::uint32_t cursor = 0;
        std::uint32_t scanned = 0;
    };
    std::vector<Scan> scans_;
    FetchService fetches_;
    std::map<int, wire::EventLoop::Id> waiting_watches_;  // fetch connections watched
    MonotonicTime started_;        // moved on by the agent's own stalls, as the nodes' last_ack
    MonotonicTime cut_off_since_;  // no node up since (0: some node is)
    AgentReport report_{feed_};
};

}  // namespace rhythm
