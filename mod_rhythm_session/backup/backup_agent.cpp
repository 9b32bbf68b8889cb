// The backup agent's event loop (see backup_agent.h).
#include "backup_agent.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "backup/cpu_wait.h"
#include "backup/fetch_channel.h"
#include "backup/stop_drain.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "wire/event_loop.h"
#include "wire/session_key.h"
#include "wire/zmq_io.h"

namespace rhythm {
namespace {

using std::chrono::milliseconds;
using wire::ReceivedMessage;
using wire::send_frames;
using wire::set_network_options;

constexpr std::size_t kTakeBatch = 256;
constexpr std::size_t kTakeBytes = 1u << 20;
// Acknowledgements recorded per hold of the segment mutex, which requests wait for.
constexpr std::size_t kAcknowledgeBatch = 256;
constexpr std::uint32_t kScanBudget = 16384;  // entries per loop turn
// How often each node's unacknowledged changes are looked at for sending again: a change is sent
// again between resend_after_ms and this much later.
constexpr std::uint64_t kResendChecksPerInterval = 4;
// At most one "node is full" line per node this often, however often it fills up again.
constexpr std::uint64_t kFullLogEveryMs = 60000;
// How long closing a node's connection may wait for the restarting message to go out: the parent
// waits for the agent before it reads its configuration again.
constexpr std::uint64_t kRestartingLingerMs = 100;
// How often the agent checks that its httpd parent still lives.
constexpr std::uint64_t kParentCheckMs = 100;
// The agent's own loop this late is a stall of its own, not of its nodes (excuse_own_stall).
constexpr std::uint64_t kOwnStallMs = 1000;
// A subscription message from an XPUB socket: 1 (subscribe) or 0, then the topic.
constexpr std::size_t kSubscriptionBytes = 1 + wire::kTopicBytes;

bool in_shards(void *context, const SessionId &id) {
    return static_cast<const wire::ShardSet *>(context)->contains(wire::shard_of(id));
}

}  // namespace

struct BackupAgent::Node {
    std::string query_endpoint;
    std::string host;
    void *dealer = nullptr;
    // An XPUB of its own, connected to the node's updates endpoint once a heartbeat-ack names it:
    // the node's subscriptions arrive on it, so the agent knows when the node can receive a shard.
    void *publisher = nullptr;
    std::string name;
    std::string updates_endpoint;
    MonotonicTime last_ack;  // 0: it never answered
    MonotonicTime last_heartbeat;
    std::uint64_t last_heartbeat_id = 0;  // request id of the last heartbeat sent
    std::uint64_t last_answer_id = 0;     // ... and of the last one answered
    std::uint64_t asked_up_to = 0;        // the last heartbeat's next_sequence
    // After its connection closed: the first heartbeat request id whose answer shows it is made
    // again (0: not closed).
    std::uint64_t heartbeat_after_close = 0;
    MonotonicTime full_logged;
    MonotonicTime refused_logged;  // its last RS0329
};

BackupAgent::BackupAgent(SessionCache cache, AgentConfig config, AgentLog log)
    : cache_(cache),
      feed_(cache_),
      config_(std::move(config)),
      log_(log),
      window_(config_.nodes.size()),
      pacer_(config_.tick),
      fetches_(feed_,
               {config_.fetch_listener, config_.max_pending_fetches, config_.max_session_bytes,
                config_.outage_grace_ms},
               log, *this) {}

BackupAgent::~BackupAgent() {
    handshake_monitors_.clear();  // before zmq_ctx_term, which waits for every socket
    for (auto &node : nodes_) {
        if (node->dealer) {
            zmq_close(node->dealer);
        }
        if (node->publisher) {
            zmq_close(node->publisher);
        }
    }
    if (context_) {
        zmq_ctx_term(context_);
    }
}

// A node that never answered this agent counts as silent once it could have: a server restarted
// (or whose agent was) while the bank is down must not hold each fetch until its deadline, a 503
// for every user, as long as the bank stays down.
bool BackupAgent::silent(std::size_t node) const {
    if (window_.up(node)) {
        return false;
    }
    return nodes_[node]->last_ack != MonotonicTime() ||
           MonotonicTime::now() - started_ > milliseconds(config_.node_timeout_ms);
}

bool BackupAgent::owns(std::size_t node, std::uint32_t shard) const {
    return window_.owned(node).contains(shard);
}

bool BackupAgent::send(std::size_t node, const wire::Frames &frames) {
    return send_frames(nodes_[node]->dealer, nullptr, frames, ZMQ_DONTWAIT);
}

bool BackupAgent::reconnecting(std::size_t node) const {
    return nodes_[node]->heartbeat_after_close != 0;
}

bool BackupAgent::out_lately(std::size_t node, std::uint64_t within_ms) const {
    MonotonicTime last = nodes_[node]->last_ack;
    return !window_.up(node) && last != MonotonicTime() &&
           MonotonicTime::now() - last < milliseconds(within_ms);
}

bool BackupAgent::unheard_lately(std::size_t node, std::uint64_t within_ms) const {
    return nodes_[node]->last_ack == MonotonicTime() &&
           MonotonicTime::now() - started_ < milliseconds(within_ms);
}

std::string_view BackupAgent::name(std::size_t node) const {
    const Node &n = *nodes_[node];
    return n.name.empty() ? std::string_view(n.query_endpoint) : std::string_view(n.name);
}

// Counted from the agent's start at the earliest: SessionBackupOutageGrace runs from then for a
// bank this agent never reached.
MonotonicTime BackupAgent::last_answer() const {
    MonotonicTime last = started_;
    for (const auto &node : nodes_) {
        last = std::max(last, node->last_ack);
    }
    return last;
}

void BackupAgent::connect_nodes() {
    context_ = zmq_ctx_new();
    int on = 1;
    int hwm = static_cast<int>(config_.max_in_flight);
    for (const std::string &endpoint : config_.nodes) {
        auto node = std::make_unique<Node>();
        node->query_endpoint = endpoint;
        node->host = std::string(endpoint_host(endpoint));
        node->name = endpoint;
        node->dealer = zmq_socket(context_, ZMQ_DEALER);
        set_network_options(node->dealer);
        // A stopped node must not fill our queue for it: send only while connected.
        zmq_setsockopt(node->dealer, ZMQ_IMMEDIATE, &on, sizeof on);
        int reconnect = 100;
        zmq_setsockopt(node->dealer, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
        watch_handshakes(node->dealer, nodes_.size());  // its index once added below
        if (zmq_connect(node->dealer, endpoint.c_str()) != 0) {
            log_line(log_, AgentLogLevel::kError, "RS0301: cannot connect to node %s: %s",
                     endpoint.c_str(), zmq_strerror(zmq_errno()));
        }
        node->publisher = zmq_socket(context_, ZMQ_XPUB);
        set_network_options(node->publisher);
        zmq_setsockopt(node->publisher, ZMQ_SNDHWM, &hwm, sizeof hwm);
        // Every subscription message, a repeated one too: a node that reconnects sends them all
        // again before its old connection is gone.
        zmq_setsockopt(node->publisher, ZMQ_XPUB_VERBOSE, &on, sizeof on);
        watch_handshakes(node->publisher);
        nodes_.push_back(std::move(node));
    }
}

// Every socket gets the CURVE keys, when configured, and a monitor that logs a refused
// handshake: neither side falls back to plain text, so without it a misconfiguration would only
// show as a bank that never answers.
void BackupAgent::watch_handshakes(void *socket, std::size_t dealer_of) {
    if (config_.curve.enabled() && !wire::make_curve_client(socket, config_.curve)) {
        log_line(log_, AgentLogLevel::kError, "RS0316: cannot set up CURVE: %s",
                 zmq_strerror(zmq_errno()));
    }
    auto monitor = std::make_unique<wire::HandshakeMonitor>();
    std::string error;
    if (!monitor->attach(context_, socket, false, config_.curve.enabled(), "SessionBackupCurve",
                         &error, dealer_of != kNotADealer)) {
        log_line(log_, AgentLogLevel::kWarn, "RS0317: %s", error.c_str());
        return;
    }
    handshake_monitors_.push_back({std::move(monitor), dealer_of});
}

// Reads the monitor's events until none is left: its descriptor turns readable again only after
// that (see poll_once).
void BackupAgent::report_handshakes(std::size_t monitor, MonotonicTime now) {
    Monitor &m = handshake_monitors_[monitor];
    std::string report;
    wire::HandshakeMonitor::ConnectionEvent connection;
    while (m.watch->next(now, &report, &connection)) {
        if (!report.empty()) {
            log_line(log_, AgentLogLevel::kError, "RS0315: %s", report.c_str());
        }
        if (connection.kind == wire::HandshakeMonitor::ConnectionEvent::Kind::kClosed &&
            m.dealer_of != kNotADealer) {
            // Back once a heartbeat sent from now on is answered.
            nodes_[m.dealer_of]->heartbeat_after_close = next_request_id_;
            fetches_.on_connection_lost(m.dealer_of);
        }
    }
}

void BackupAgent::run(const volatile int *stop) {
    // Made first: its first turn's lateness counts from here, so a stop while the agent starts
    // is excused as one later is (a server stopped as its agent started found its node silent
    // on resuming, before it had tried to reach it, and answered a take-over 503).
    wire::EventLoop loop(MonotonicTime::now);
    started_ = loop.now();
    // Not in touch with the bank until a node answers: a first answer later than a stall means
    // the sessions are checked, as after any cut-off (back_in_touch).
    cut_off_since_ = started_;
    connect_nodes();
    feed_.start_agent(static_cast<std::int32_t>(getpid()), agent_id_.data(), &epoch_);
    log_line(log_, AgentLogLevel::kInfo, "RS0302: backup agent started (epoch %llu, %zu nodes)",
             static_cast<unsigned long long>(epoch_), nodes_.size());
    scans_.push_back(Scan{true, true, {}, 0, 0});
    watch(loop);
    // Orphaned (the httpd parent was killed): stop. Checked every 100 ms, not every turn: a
    // system call is dear on a busy virtual machine.
    pid_t parent = getppid();
    bool orphaned = false;
    loop.add_timer(MonotonicTime(), kParentCheckMs, [&] { orphaned = getppid() != parent; });
    // A PUB socket drops silently (a full queue, a connection being made again): what a node
    // lacks after resend_after_ms goes again, to that node alone; looked at a few times per
    // interval.
    loop.add_timer(MonotonicTime(),
                   std::max<std::uint64_t>(1, config_.resend_after_ms / kResendChecksPerInterval),
                   [&] { resend_unacknowledged(loop.now()); });
    // Measured from turn to turn, not over the poll alone: a stop that lands after the poll
    // returned would otherwise find every node silent in the next turn, and a check after the
    // stall would serve the copy here as if the bank were unreachable.
    loop.set_after_poll([&](MonotonicTime) { excuse_own_stall(loop.late()); });
    CpuWait cpu_wait;  // this thread's: the pacer's sign of CPUs busy with requests
    while (!*stop && !orphaned) {
        take_turn(loop, cpu_wait);
    }
    // At the server's end the segment goes with it; at a restart the next agent answers for it.
    bool restart = !orphaned && feed_.stop_is_restart();
    drain_before_stop(loop, cpu_wait, restart);
    if (restart) {
        say_restarting();
    }
    log_line(log_, AgentLogLevel::kInfo, "RS0303: backup agent stopping (%zu changes in flight)",
             window_.size());
}

void BackupAgent::take_turn(wire::EventLoop &loop, CpuWait &cpu_wait) {
    // The agent's progress, for the httpd parent's watch and server-status; and a sign of life
    // of the server, which finds out whether it stalled as a whole.
    if (std::int64_t stalled_us = feed_.agent_turn(MonotonicTime::coarse_now())) {
        log_line(log_, AgentLogLevel::kWarn,
                 "RS0108: this server did not run for %lld ms (stopped?): each session it holds is "
                 "checked against the bank before it is served again",
                 static_cast<long long>(stalled_us / 1000));
    }
    // The poll waits at most until the tick (tick_pacer.h): the loop wakes between ticks only
    // for the nodes' answers and subscriptions, and for fetches.
    if (!loop.run_once(pacer_.wait_ms(MonotonicTime::now().us()))) {
        return;  // a signal: the stop may be asked
    }
    // The turn's time, read as the poll returned, not the clock now: a stop that lands in this
    // turn's handlers is then seen (and excused) at the next turn's poll before any node's
    // silence is judged against it.
    MonotonicTime now = loop.now();
    continue_scans();
    settle_acknowledged();
    if (pacer_.due(now.us())) {
        bool worked = publish_changes(now) > 0 || !window_.empty() || !scans_.empty();
        pacer_.ticked(now.us(), worked, cpu_wait.since_last_us());
    }
    // After publishing: a heartbeat sent now asks about this turn's changes too.
    send_heartbeats(now);
    fetches_.expire(now);
    report(now);
}

// Told to stop, the agent first gives the bank what it lacks, within a bound (stop_drain.h); at
// the server's end, what is still not acknowledged then is lost with it, and said so.
void BackupAgent::drain_before_stop(wire::EventLoop &loop, CpuWait &cpu_wait, bool restart) {
    StopDrain drain(restart ? StopDrain::Stop::kRestart : StopDrain::Stop::kEnd,
                    MonotonicTime::now());
    const char *at = restart ? "at a restart" : "at the server's end";
    std::uint64_t unacknowledged = feed_.unacknowledged();
    if (drain.go_on(MonotonicTime::now(), unacknowledged, any_node_up())) {
        log_line(log_, AgentLogLevel::kInfo,
                 "RS0333: backup agent stopping %s with %llu session(s) the bank has not "
                 "acknowledged yet: it waits up to %llu ms for the bank to",
                 at, static_cast<unsigned long long>(unacknowledged),
                 static_cast<unsigned long long>(drain.bound_ms()));
        MonotonicTime began = MonotonicTime::now();
        while (drain.go_on(MonotonicTime::now(), unacknowledged, any_node_up())) {
            take_turn(loop, cpu_wait);
            unacknowledged = feed_.unacknowledged();
        }
        log_line(log_, AgentLogLevel::kInfo,
                 "RS0333: backup agent stopping %s: %llu session(s) still not acknowledged after "
                 "%lld ms",
                 at, static_cast<unsigned long long>(unacknowledged),
                 static_cast<long long>((MonotonicTime::now() - began).count() / 1000));
    }
    if (unacknowledged == 0) {
        return;
    }
    if (restart) {
        log_line(log_, AgentLogLevel::kInfo,
                 "RS0334: %llu session(s) not acknowledged by the bank are left to the next agent",
                 static_cast<unsigned long long>(unacknowledged));
    } else {
        log_line(log_, AgentLogLevel::kWarn,
                 "RS0334: the server stops with %llu session(s) whose last change the bank has "
                 "not acknowledged (%zu of %zu nodes answering): those changes are lost unless a "
                 "node stored them meanwhile",
                 static_cast<unsigned long long>(unacknowledged), nodes_answering(), nodes_.size());
    }
}

// The nodes are told that this server restarts, so that until its next agent reaches them they
// do not take it for gone: a fetch that would ask it for a handover waits rather than be answered
// without the changes the bank lacks (the fault campaign: a node that had no agent of a
// restarting server to ask answered a take-over from a copy 8 changes old). The last message on
// each connection; the sockets linger a little for it.
void BackupAgent::say_restarting() {
    int linger_ms = static_cast<int>(kRestartingLingerMs);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        zmq_setsockopt(nodes_[i]->dealer, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        send(i, wire::encode_message(wire::Restarting{next_request_id_++}));
    }
}

// What wakes the loop: each node's answers (its DEALER) and subscriptions (its XPUB), the
// workers' fetch connections, and the handshake monitors, watched as plain descriptors so that
// the poll does not check each monitor socket on every turn (two system calls each).
void BackupAgent::watch(wire::EventLoop &loop) {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        loop.watch_socket(nodes_[i]->dealer, [this, i, &loop] { drain_node(i, loop.now()); });
        loop.watch_socket(nodes_[i]->publisher, [this, i] { on_subscriptions(i); });
    }
    if (fetches_.listener() >= 0) {
        loop.watch_descriptor(fetches_.listener(), [this, &loop] {
            fetches_.accept_all();
            // Each new connection is watched until its request has come.
            for (int fd : fetches_.waiting()) {
                if (waiting_watches_.count(fd) == 0) {
                    waiting_watches_[fd] = loop.watch_descriptor(fd, [this, fd, &loop] {
                        loop.unwatch(waiting_watches_[fd]);
                        waiting_watches_.erase(fd);
                        fetches_.on_request(fd, loop.now());
                    });
                }
            }
        });
    }
    for (std::size_t m = 0; m < handshake_monitors_.size(); ++m) {
        loop.watch_descriptor(handshake_monitors_[m].watch->fd(),
                              [this, m, &loop] { report_handshakes(m, loop.now()); });
    }
}

void BackupAgent::drain_node(std::size_t i, MonotonicTime now) {
    ReceivedMessage message;
    while (message.receive(nodes_[i]->dealer, ZMQ_DONTWAIT)) {
        wire::Message decoded;
        wire::DecodeResult result =
            wire::decode_message(wire::FrameSpan(message.frames(), message.size()), &decoded);
        if (!result.ok()) {
            log_line(log_, AgentLogLevel::kWarn,
                     "RS0304: malformed message from node %s dropped: %s", nodes_[i]->name.c_str(),
                     result.message);
            continue;
        }
        on_node_message(i, decoded, now);
    }
}

// This agent did not run for `late` more than it meant to sleep (stopped, or starved of CPU): the
// nodes' answers waiting meanwhile are unread, so they are not counted as late for it, and the
// log says whose fault it was.
void BackupAgent::excuse_own_stall(Duration late) {
    if (late < milliseconds(kOwnStallMs)) {
        return;
    }
    log_line(log_, AgentLogLevel::kWarn,
             "RS0322: the backup agent did not run for %llu ms (stopped, or starved of CPU): its "
             "nodes are not counted as silent for that",
             static_cast<unsigned long long>(late / milliseconds(1)));
    for (auto &node : nodes_) {
        if (node->last_ack != MonotonicTime()) {
            node->last_ack += late;
        }
        // The node may have closed the connection meanwhile (3 s without ZMTP heartbeats), and
        // ZeroMQ makes it again before this loop hears of the close: until a heartbeat sent from
        // now on is answered, no fetch goes to it, or it could reach the node on the new
        // connection before any heartbeat names this agent there, and the node would neither ask
        // the server that made the session for a newer copy nor note the take-over (the fault
        // campaign, s90j: a server resumed from a 4.4 s pause took a session over, and the
        // server it came from was never told and served its own copy).
        node->heartbeat_after_close = next_request_id_;
    }
    started_ += late;
}

void BackupAgent::on_node_message(std::size_t node, const wire::Message &message,
                                  MonotonicTime now) {
    if (auto *ack = std::get_if<wire::HeartbeatAck>(&message)) {
        on_heartbeat_ack(node, *ack, now);
    } else if (auto *resend = std::get_if<wire::Resend>(&message)) {
        on_resend(node, *resend, now);
    } else if (auto *refused = std::get_if<wire::Refused>(&message)) {
        for (const wire::Refusal &r : refused->refusals) {
            feed_.drop_if_older(r.key, r.version);
        }
    } else if (auto *end = std::get_if<wire::EndSession>(&message)) {
        // Sent by a node for scope all only (one session's end comes as a Refused).
        if (end->scope == wire::EndScope::kAll) {
            feed_.all_sessions_ended();
            log_line(log_, AgentLogLevel::kWarn,
                     "RS0330: node %s says an operator ended every session: each session held "
                     "here is checked against the bank before it is served again",
                     nodes_[node]->name.c_str());
        }
    } else if (auto *handover = std::get_if<wire::Handover>(&message)) {
        on_handover(node, *handover);
    } else if (auto *reply = std::get_if<wire::FetchReply>(&message)) {
        fetches_.on_reply(node, *reply, now);
    } else if (auto *error = std::get_if<wire::ErrorReply>(&message)) {
        log_line(log_, AgentLogLevel::kWarn, "RS0305: node %s answered an error: %.*s",
                 nodes_[node]->name.c_str(), static_cast<int>(error->text.size()),
                 error->text.data());
    }
}

// `change` as this server's record of it on the wire (its data is `change`'s, not a copy).
wire::SessionRecord BackupAgent::record_of(const ChangeRecord &change) const {
    wire::SessionRecord r;
    r.key = change.id;
    r.version = change.version;
    r.expires_at_ms =
        change.expiry_us > 0 ? static_cast<std::uint64_t>(change.expiry_us / 1000) : 0;
    r.tombstone = change.tombstone;
    r.origin = config_.server_id;
    r.data = change.data;
    return r;
}

// The record goes to the node that asked and to no other: the change itself is still on its way
// through the replication window, to every owner, as any change is.
void BackupAgent::on_handover(std::size_t node, const wire::Handover &handover) {
    wire::HandoverReply reply;
    reply.request_id = handover.request_id;
    ChangeRecord newer;
    if (feed_.hand_over(handover.key, handover.version, &newer)) {
        reply.newer = true;
        reply.record = record_of(newer);
    }
    send(node, wire::encode_message(reply));
    fetches_.on_handed_over(handover.key);  // after the answer: a check asked again follows it
}

void BackupAgent::on_heartbeat_ack(std::size_t i, const wire::HeartbeatAck &ack,
                                   MonotonicTime now) {
    Node &node = *nodes_[i];
    if (!window_.up(i)) {
        log_line(log_, AgentLogLevel::kInfo, "RS0306: node %s (%.*s) is up",
                 node.query_endpoint.c_str(), static_cast<int>(ack.node_name.size()),
                 ack.node_name.data());
        report_.soon();  // server-status shows it at once
        if (node.last_ack != MonotonicTime()) {
            node_back(node, ack, now);
        }
        back_in_touch(now);
    }
    node.last_ack = now;
    node.last_answer_id = std::max(node.last_answer_id, ack.request_id);
    node.name.assign(ack.node_name.data(), ack.node_name.size());
    window_.on_answered(i, ack.request_id);
    if (ack.epoch == epoch_) {
        auto outcome = window_.on_ack(i, ReplicationWindow::Ack{ack.owned, ack.full, ack.refused,
                                                                ack.refusing, &ack.shard_acks});
        if (!outcome.repair.empty()) {
            log_line(
                log_, AgentLogLevel::kInfo,
                "RS0319: node %s missed changes of %zu of its shards while it was not up or had "
                "no room: publishing those shards again",
                node.name.c_str(), outcome.repair.count());
            republish_shards(i, outcome.repair);
        }
        feed_.count_refused(outcome.newly_refused);
        if (outcome.became_full && now - node.full_logged >= milliseconds(kFullLogEveryMs)) {
            node.full_logged = now;
            log_line(
                log_, AgentLogLevel::kWarn,
                "RS0320: node %s (%s) is full: it refused %llu changes of this server for lack of "
                "memory; they stay unacknowledged there until it has room (raise its max-memory "
                "or add nodes)",
                node.query_endpoint.c_str(), node.name.c_str(),
                static_cast<unsigned long long>(ack.refused));
        }
        if (outcome.newly_refused > 0 && !ack.full &&
            now - node.refused_logged >= milliseconds(kFullLogEveryMs)) {
            node.refused_logged = now;
            log_line(log_, AgentLogLevel::kWarn,
                     "RS0329: node %s (%s) refused %llu changes of this server with room to "
                     "spare: an expiry or a version it finds implausible (its RN0301 lines say "
                     "which; is this server's clock right?); they stay unacknowledged",
                     node.query_endpoint.c_str(), node.name.c_str(),
                     static_cast<unsigned long long>(outcome.newly_refused));
        }
        if (outcome.room_again) {
            log_line(log_, AgentLogLevel::kInfo,
                     "RS0321: node %s (%s) has room again: sending it what it refused",
                     node.query_endpoint.c_str(), node.name.c_str());
            window_.resend(i, now, 0,
                           [&](const ReplicationWindow::Change &c) { send_update(i, c); });
        }
        if (outcome.became_full || outcome.room_again) {
            report_.soon();
        }
    }
    if (node.heartbeat_after_close != 0 && ack.request_id >= node.heartbeat_after_close) {
        node.heartbeat_after_close = 0;  // connected again: on_node_answer asks what was lost
    }
    fetches_.on_node_answer();
    std::string endpoint = endpoint_reached_at(ack.updates_endpoint, node.host);
    if (endpoint != node.updates_endpoint) {
        if (!node.updates_endpoint.empty()) {
            zmq_disconnect(node.publisher, node.updates_endpoint.c_str());
        }
        if (zmq_connect(node.publisher, endpoint.c_str()) != 0) {
            log_line(log_, AgentLogLevel::kError, "RS0307: cannot publish to %s: %s",
                     endpoint.c_str(), zmq_strerror(zmq_errno()));
            return;
        }
        node.updates_endpoint = endpoint;
    }
}

bool BackupAgent::any_node_up() const {
    return nodes_answering() > 0;
}

std::size_t BackupAgent::nodes_answering() const {
    std::size_t up = 0;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        up += window_.up(i) ? 1 : 0;
    }
    return up;
}

// A node this agent had counted down (no answer for node_timeout_ms) answers again. It may have
// counted this server silent too (as long without its heartbeats): then it let another server
// take this server's sessions over from its copy without asking this one (no handover), and
// nothing told this server. So its copies are checked against the bank before they are served
// again. (The fault campaign, seed 90: under packet loss web-1, off a node for 2 s, served its
// own copy 15 changes behind the server that had taken the session over through that node.)
void BackupAgent::node_back(const Node &node, const wire::HeartbeatAck &ack, MonotonicTime now) {
    feed_.node_back();
    log_line(log_, AgentLogLevel::kInfo,
             "RS0332: node %.*s answers again after %llu ms: each session this server holds is "
             "checked against the bank before it is served again",
             static_cast<int>(ack.node_name.size()), ack.node_name.data(),
             static_cast<unsigned long long>((now - node.last_ack) / milliseconds(1)));
}

// A node answers after no node did for a while. Cut off from the bank (a partition, or every
// node down), this server heard of no session another server took over meanwhile (the nodes'
// refusals), so its copies are checked against the bank before they are served again, as after
// a stall of the server itself.
void BackupAgent::back_in_touch(MonotonicTime now) {
    if (cut_off_since_ == MonotonicTime()) {
        return;
    }
    Duration cut_off = now - cut_off_since_;
    cut_off_since_ = MonotonicTime();
    if (cut_off <= Duration(kStallUs)) {
        return;
    }
    feed_.cut_off_from_bank();
    log_line(log_, AgentLogLevel::kWarn,
             "RS0328: this server could not reach the bank for %llu ms: each session it holds is "
             "checked against the bank before it is served again",
             static_cast<unsigned long long>(cut_off / milliseconds(1)));
}

// The node's subscriptions (and their end, when its connection goes) as its XPUB reports them.
// A shard it has just subscribed to gets at once what is in flight of it: what was published
// before went nowhere.
void BackupAgent::on_subscriptions(std::size_t i) {
    char buf[kSubscriptionBytes + 1];
    for (;;) {
        int n = zmq_recv(nodes_[i]->publisher, buf, sizeof buf, ZMQ_DONTWAIT);
        if (n < 0) {
            return;
        }
        if (n != static_cast<int>(kSubscriptionBytes)) {
            continue;  // not a shard topic: nothing this agent publishes matches it
        }
        std::uint32_t shard =
            (static_cast<std::uint8_t>(buf[1]) << 8) | static_cast<std::uint8_t>(buf[2]);
        if (shard >= wire::kShardCount) {
            continue;
        }
        if (buf[0] == 1) {
            window_.on_subscribed(i, shard,
                                  [&](const ReplicationWindow::Change &c) { send_update(i, c); });
        } else {
            window_.on_unsubscribed(i, shard);
        }
    }
}

void BackupAgent::on_resend(std::size_t node, const wire::Resend &resend, MonotonicTime now) {
    if (resend.epoch == epoch_ && resend.from_sequence > 0) {
        window_.resend(node, now, 0,
                       [&](const ReplicationWindow::Change &c) { send_update(node, c); });
    }
    if (!resend.shards.empty()) {
        republish_shards(node, resend.shards);
    }
}

// The node counts each of these shards from its head as it is now, before the sessions are
// published again (continue_scans, later): they all come after it.
void BackupAgent::republish_shards(std::size_t node, const wire::ShardSet &shards) {
    window_.republish(node, shards);
    scans_.push_back(Scan{true, false, shards, 0, 0});
}

void BackupAgent::send_update(std::size_t node, const ReplicationWindow::Change &change) {
    // A full queue (the node is far behind) drops it: it stays unacknowledged and goes again.
    zmq_send(nodes_[node]->publisher, change.message.data(), change.message.size(), ZMQ_DONTWAIT);
}

void BackupAgent::send_heartbeats(MonotonicTime now) {
    // A node that has answered is asked at once about changes published since it was last
    // asked, and again every heartbeat_busy_ms while changes are in flight (it may have answered
    // before they reached it): acknowledgements follow publications within a millisecond or two.
    bool busy = !window_.empty();
    std::uint64_t next_sequence = window_.next_sequence();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        Node &node = *nodes_[i];
        bool answered = node.last_answer_id >= node.last_heartbeat_id;
        // A connection being made again is asked at once, and again every heartbeat_retry_ms
        // until it answers: the fetches to that node wait for it (FetchService::ask).
        bool rejoining = node.heartbeat_after_close != 0 && window_.up(i);
        milliseconds interval(rejoining   ? (node.last_heartbeat_id < node.heartbeat_after_close
                                                 ? 0
                                                 : config_.heartbeat_retry_ms)
                              : !busy     ? config_.heartbeat_idle_ms
                              : !answered ? config_.heartbeat_retry_ms
                              : node.asked_up_to < next_sequence ? 0
                                                                 : config_.heartbeat_busy_ms);
        if (window_.up(i) && now - node.last_ack > milliseconds(config_.node_timeout_ms)) {
            window_.on_down(i);
            log_line(log_, AgentLogLevel::kWarn,
                     "RS0308: node %s (%s) is down: no answer for %llums",
                     node.query_endpoint.c_str(), node.name.c_str(),
                     static_cast<unsigned long long>((now - node.last_ack) / milliseconds(1)));
            report_.soon();
            if (cut_off_since_ == MonotonicTime() && !any_node_up()) {
                cut_off_since_ = node.last_ack;  // the bank's last word to this server
            }
        }
        if (now - node.last_heartbeat < interval) {
            continue;
        }
        wire::Heartbeat hb;
        hb.request_id = next_request_id_++;
        hb.agent_id = agent_id_;
        hb.epoch = epoch_;
        hb.next_sequence = next_sequence;
        node.last_heartbeat_id = hb.request_id;
        node.asked_up_to = next_sequence;
        hb.server_name = config_.server_id;
        // Heads go in every heartbeat until one that carried them is answered.
        hb.heads = window_.heads_for(i, hb.request_id);
        if (!send_frames(node.dealer, nullptr, wire::encode_message(hb), ZMQ_DONTWAIT)) {
            // Not connected (yet): try again after heartbeat_retry_ms, not a whole interval, so
            // that a new agent reaches a node, and can fetch from it, as soon as it is reachable.
            node.last_heartbeat =
                now - interval + std::min(interval, milliseconds(config_.heartbeat_retry_ms));
            continue;
        }
        node.last_heartbeat = now;
    }
}

std::size_t BackupAgent::publish_changes(MonotonicTime now) {
    bool reachable = false;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        reachable = reachable || (window_.up(i) && !nodes_[i]->updates_endpoint.empty());
    }
    if (!reachable) {
        return 0;  // changes wait in the segment until a node is back
    }
    std::size_t published = 0;
    std::vector<ChangeRecord> batch;
    while (window_.size() < config_.max_in_flight &&
           window_.bytes() < config_.max_in_flight_bytes) {
        batch.clear();
        feed_.take_changes(&batch, kTakeBatch, kTakeBytes);
        if (batch.empty()) {
            break;
        }
        for (const ChangeRecord &change : batch) {
            std::uint32_t shard = wire::shard_of(change.id);
            ReplicationWindow::Numbers numbers = window_.number(shard);
            wire::Published p;
            p.sender.agent_id = agent_id_;
            p.sender.epoch = epoch_;
            p.sender.sequence = numbers.sequence;
            p.sender.shard_sequence = numbers.shard_sequence;
            p.record = record_of(change);
            const ReplicationWindow::Change &c =
                window_.add(shard, numbers, change.id, change.version, WallTime(change.saved_at_us),
                            now, std::move(wire::encode_published(p)[0]));
            for (std::size_t i = 0; i < nodes_.size(); ++i) {
                if (window_.sends_to(i, shard)) {
                    send_update(i, c);
                }
            }
        }
        published += batch.size();
    }
    return published;
}

void BackupAgent::settle_acknowledged() {
    WallTime now = WallTime::now();
    std::size_t settled = window_.settle([&](const ReplicationWindow::Change &c) {
        settling_.push_back({c.id, c.version, c.saved_at});
        if (settling_.size() == kAcknowledgeBatch) {
            feed_.acknowledge(settling_.data(), settling_.size(), now);
            settling_.clear();
        }
    });
    if (settled > 0) {
        feed_.acknowledge(settling_.data(), settling_.size(), now);
        settling_.clear();
        feed_.set_oldest_in_flight(window_.oldest_saved_at());
    }
}

void BackupAgent::resend_unacknowledged(MonotonicTime now) {
    for (std::size_t i = 0; i < nodes_.size() && !window_.empty(); ++i) {
        std::size_t resent =
            window_.resend(i, now, config_.resend_after_ms,
                           [&](const ReplicationWindow::Change &c) { send_update(i, c); });
        if (resent > 0) {
            log_line(log_, AgentLogLevel::kDebug,
                     "RS0309: re-sent %zu unacknowledged changes to node %s", resent,
                     nodes_[i]->name.c_str());
        }
    }
}

void BackupAgent::continue_scans() {
    WallTime now = WallTime::now();
    for (Scan &scan : scans_) {
        bool done = scan.unacknowledged_only
                        ? feed_.requeue_scan(&scan.cursor, &scan.scanned, kScanBudget, nullptr,
                                             nullptr, now)
                        : feed_.requeue_scan(&scan.cursor, &scan.scanned, kScanBudget, in_shards,
                                             &scan.shards, now);
        scan.active = !done;
    }
    scans_.erase(
        std::remove_if(scans_.begin(), scans_.end(), [](const Scan &scan) { return !scan.active; }),
        scans_.end());
}

void BackupAgent::report(MonotonicTime now) {
    std::vector<AgentReport::NodeView> views;
    for (const auto &node : nodes_) {
        views.push_back({&node->query_endpoint, &node->name, node->last_ack});
    }
    report_.write(now, WallTime::now(), window_, views);
}

}  // namespace rhythm
