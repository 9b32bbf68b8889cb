// The backup agent's event loop (see backup_agent.h).
#include "backup_agent.h"

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "backup/cpu_wait.h"
#include "backup/fetch_channel.h"
#include "core/monotonic_clock.h"
#include "wire/session_key.h"
#include "wire/zmq_io.h"

namespace rhythm {
namespace {

using wire::ReceivedMessage;
using wire::send_frames;
using wire::set_network_options;

constexpr std::size_t kTakeBatch = 256;
constexpr std::size_t kTakeBytes = 1u << 20;
// Acknowledgements recorded per hold of the segment mutex, which requests wait for.
constexpr std::size_t kAcknowledgeBatch = 256;
constexpr std::uint32_t kScanBudget = 16384;  // entries per loop turn
constexpr std::uint64_t kReportEveryMs = 100;
constexpr std::uint64_t kLagWindowMs = 10000;
// Once one node has a session, how long a fetch still waits for the others' answers (a newer
// version) before it takes the best one: nodes that are well answer within a millisecond or two;
// one that hung and is not known to yet must not hold the request for SessionBackupTimeout.
constexpr std::uint64_t kOtherAnswersGraceMs = 20;
// How often each node's unacknowledged changes are looked at for sending again: a change is sent
// again between resend_after_ms and this much later.
constexpr std::uint64_t kResendChecksPerInterval = 4;
// At most one "node is full" line per node this often, however often it fills up again.
constexpr std::uint64_t kFullLogEveryMs = 60000;
// The agent's own loop this late is a stall of its own, not of its nodes (excuse_own_stall).
constexpr std::uint64_t kOwnStallMs = 1000;
// A subscription message from an XPUB socket: 1 (subscribe) or 0, then the topic.
constexpr std::size_t kSubscriptionBytes = 1 + wire::kTopicBytes;
// At most one RS0323 line (a fetched session too large to keep) per this interval.
constexpr std::uint64_t kTooLargeLogEveryMs = 10000;

std::uint64_t steady_us() {
    return static_cast<std::uint64_t>(monotonic_us());
}

std::uint64_t steady_ms() {
    return steady_us() / 1000;
}

std::int64_t wall_us() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// "tcp://host:port" -> "host" (brackets kept for IPv6); empty for other transports.
std::string host_of(const std::string &endpoint) {
    const std::string tcp = "tcp://";
    if (endpoint.compare(0, tcp.size(), tcp) != 0) {
        return "";
    }
    std::size_t colon = endpoint.rfind(':');
    return colon > tcp.size() ? endpoint.substr(tcp.size(), colon - tcp.size()) : "";
}

// A node reports the endpoint it bound; a wildcard host means "wherever you reached me".
std::string resolve_wildcard(const std::string &endpoint, const std::string &reached_host) {
    std::string host = host_of(endpoint);
    if (!reached_host.empty() && (host == "*" || host == "0.0.0.0" || host == "[::]")) {
        return "tcp://" + reached_host + endpoint.substr(6 + host.size());
    }
    return endpoint;
}

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
    std::uint64_t last_ack_ms = 0;
    std::uint64_t last_heartbeat_ms = 0;
    std::uint64_t last_heartbeat_id = 0;  // request id of the last heartbeat sent
    std::uint64_t last_answer_id = 0;     // ... and of the last one answered
    std::uint64_t asked_up_to = 0;        // the last heartbeat's next_sequence
    std::uint64_t last_resend_check_ms = 0;
    std::uint64_t full_logged_ms = 0;
};

struct BackupAgent::PendingFetch {
    int fd = -1;
    SessionId id;
    std::uint64_t request_id = 0;
    std::uint64_t deadline_ms = 0;
    std::size_t asked = 0;
    std::size_t answered = 0;
    bool owners_only = false;  // the rest of the bank is still to be asked
    bool check = false;        // a check of a copy held here, not a take-over
    // The best version answered so far (0: none), and its record.
    std::uint64_t best_version = 0;
    std::string best_origin;
    bool best_deleted = false;
    std::string best_data;
    std::int64_t best_expiry_us = 0;
};

BackupAgent::BackupAgent(SessionCache cache, AgentConfig config, AgentLog log)
    : cache_(cache),
      feed_(cache_),
      config_(std::move(config)),
      log_(log),
      window_(config_.nodes.size()),
      pacer_(config_.tick) {}

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
    for (int fd : accepted_) {
        close(fd);
    }
    for (auto &entry : fetches_) {
        close(entry.second->fd);
    }
    if (context_) {
        zmq_ctx_term(context_);
    }
}

void BackupAgent::log(AgentLogLevel level, const char *format, ...) {
    char buf[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    log_(level, buf);
}

void BackupAgent::connect_nodes() {
    context_ = zmq_ctx_new();
    int on = 1;
    int hwm = static_cast<int>(config_.max_in_flight);
    for (const std::string &endpoint : config_.nodes) {
        auto node = std::make_unique<Node>();
        node->query_endpoint = endpoint;
        node->host = host_of(endpoint);
        node->name = endpoint;
        node->dealer = zmq_socket(context_, ZMQ_DEALER);
        set_network_options(node->dealer);
        // A stopped node must not fill our queue for it: send only while connected.
        zmq_setsockopt(node->dealer, ZMQ_IMMEDIATE, &on, sizeof on);
        int reconnect = 100;
        zmq_setsockopt(node->dealer, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
        watch_handshakes(node->dealer);
        if (zmq_connect(node->dealer, endpoint.c_str()) != 0) {
            log(AgentLogLevel::kError, "RS0301: cannot connect to node %s: %s", endpoint.c_str(),
                zmq_strerror(zmq_errno()));
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
void BackupAgent::watch_handshakes(void *socket) {
    if (config_.curve.enabled() && !wire::make_curve_client(socket, config_.curve)) {
        log(AgentLogLevel::kError, "RS0316: cannot set up CURVE: %s", zmq_strerror(zmq_errno()));
    }
    auto monitor = std::make_unique<wire::HandshakeMonitor>();
    std::string error;
    if (!monitor->attach(context_, socket, false, config_.curve.enabled(), "SessionBackupCurve",
                         &error)) {
        log(AgentLogLevel::kWarn, "RS0317: %s", error.c_str());
        return;
    }
    handshake_monitors_.push_back(std::move(monitor));
}

// Reads every monitor's events until none is left: its descriptor turns readable again only after
// that (see poll_once).
void BackupAgent::report_handshakes(std::uint64_t now_ms) {
    std::string report;
    for (auto &monitor : handshake_monitors_) {
        while (monitor->next(now_ms, &report)) {
            if (!report.empty()) {
                log(AgentLogLevel::kError, "RS0315: %s", report.c_str());
            }
        }
    }
}

void BackupAgent::run(const volatile int *stop) {
    connect_nodes();
    feed_.start_agent(static_cast<std::int32_t>(getpid()), agent_id_.data(), &epoch_);
    log(AgentLogLevel::kInfo, "RS0302: backup agent started (epoch %llu, %zu nodes)",
        static_cast<unsigned long long>(epoch_), nodes_.size());
    scans_.push_back(Scan{true, true, {}, 0, 0});
    pid_t parent = getppid();
    std::uint64_t parent_checked_ms = 0;
    CpuWait cpu_wait;  // this thread's: the pacer's sign of CPUs busy with requests
    while (!*stop) {
        std::uint64_t now = steady_ms();
        // The agent's progress, for the httpd parent's watch and server-status; and a sign of
        // life of the server, which finds out whether it stalled as a whole.
        if (std::int64_t stalled_us = feed_.agent_turn(monotonic_coarse_us())) {
            log(AgentLogLevel::kWarn,
                "RS0108: this server did not run for %lld ms (stopped?): each session it holds is "
                "checked against the bank before it is served again",
                static_cast<long long>(stalled_us / 1000));
        }
        // Orphaned (the httpd parent was killed): stop. Checked every 100 ms, not every turn:
        // a system call is dear on a busy virtual machine.
        if (now - parent_checked_ms >= 100) {
            if (getppid() != parent) {
                break;
            }
            parent_checked_ms = now;
        }
        // The tick: changes are taken from the segment in one batch (tick_pacer.h). Between
        // ticks the agent wakes only for the nodes' answers and subscriptions, and for fetches.
        poll_once(pacer_.wait_ms(steady_us()));
        std::uint64_t now_us = steady_us();
        now = now_us / 1000;
        continue_scans();
        settle_acknowledged();
        resend_unacknowledged(now);
        if (pacer_.due(now_us)) {
            bool worked = publish_changes(now) > 0 || !window_.empty() || !scans_.empty();
            pacer_.ticked(now_us, worked, cpu_wait.since_last_us());
        }
        // After publishing: a heartbeat sent now asks about this turn's changes too.
        send_heartbeats(now);
        expire_fetches(now);
        report(now);
    }
    log(AgentLogLevel::kInfo, "RS0303: backup agent stopping (%zu changes in flight)",
        window_.size());
}

void BackupAgent::poll_once(std::uint64_t timeout_ms) {
    std::vector<zmq_pollitem_t> items;
    for (auto &node : nodes_) {
        items.push_back({node->dealer, 0, ZMQ_POLLIN, 0});
        items.push_back({node->publisher, 0, ZMQ_POLLIN, 0});
    }
    if (config_.fetch_listener >= 0) {
        items.push_back({nullptr, config_.fetch_listener, ZMQ_POLLIN, 0});
    }
    for (int fd : accepted_) {
        items.push_back({nullptr, fd, ZMQ_POLLIN, 0});
    }
    // Polled as plain descriptors, so that zmq_poll does not check each monitor socket on every
    // turn (two system calls each); readable means read them all (report_handshakes).
    const std::size_t first_monitor = items.size();
    for (auto &monitor : handshake_monitors_) {
        items.push_back({nullptr, monitor->fd(), ZMQ_POLLIN, 0});
    }
    std::uint64_t polled_ms = steady_ms();
    int events =
        zmq_poll(items.data(), static_cast<int>(items.size()), static_cast<long>(timeout_ms));
    std::uint64_t now_ms = steady_ms();
    excuse_own_stall(now_ms - polled_ms - std::min(now_ms - polled_ms, timeout_ms));
    if (events <= 0) {
        return;
    }
    std::size_t k = 0;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (items[k++].revents & ZMQ_POLLIN) {
            ReceivedMessage message;
            while (message.receive(nodes_[i]->dealer, ZMQ_DONTWAIT)) {
                wire::Message decoded;
                wire::DecodeResult result = wire::decode_message(
                    wire::FrameSpan(message.frames(), message.size()), &decoded);
                if (!result.ok()) {
                    log(AgentLogLevel::kWarn, "RS0304: malformed message from node %s dropped: %s",
                        nodes_[i]->name.c_str(), result.message);
                    continue;
                }
                on_node_message(i, decoded, now_ms);
            }
        }
        if (items[k++].revents & ZMQ_POLLIN) {
            on_subscriptions(i);
        }
    }
    if (config_.fetch_listener >= 0 && (items[k++].revents & ZMQ_POLLIN)) {
        accept_fetches(now_ms);
    }
    std::vector<int> readable;
    for (int fd : accepted_) {
        if (k < items.size() && items[k].fd == fd &&
            (items[k].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) {
            readable.push_back(fd);
        }
        ++k;
    }
    for (int fd : readable) {
        accepted_.erase(std::find(accepted_.begin(), accepted_.end(), fd));
        on_fetch_request(fd, now_ms);
    }
    for (std::size_t i = first_monitor; i < items.size(); ++i) {
        if (items[i].revents & ZMQ_POLLIN) {
            report_handshakes(now_ms);
            break;
        }
    }
}

// This agent did not run for `late_ms` more than it meant to sleep (stopped, or starved of CPU):
// the nodes' answers waiting meanwhile are unread, so they are not counted as late for it, and
// the log says whose fault it was.
void BackupAgent::excuse_own_stall(std::uint64_t late_ms) {
    if (late_ms < kOwnStallMs) {
        return;
    }
    log(AgentLogLevel::kWarn,
        "RS0322: the backup agent did not run for %llu ms (stopped, or starved of CPU): its "
        "nodes are not counted as silent for that",
        static_cast<unsigned long long>(late_ms));
    for (auto &node : nodes_) {
        if (node->last_ack_ms != 0) {
            node->last_ack_ms += late_ms;
        }
    }
}

void BackupAgent::on_node_message(std::size_t node, const wire::Message &message,
                                  std::uint64_t now_ms) {
    if (auto *ack = std::get_if<wire::HeartbeatAck>(&message)) {
        on_heartbeat_ack(node, *ack, now_ms);
    } else if (auto *resend = std::get_if<wire::Resend>(&message)) {
        on_resend(node, *resend, now_ms);
    } else if (auto *refused = std::get_if<wire::Refused>(&message)) {
        for (const wire::Refusal &r : refused->refusals) {
            feed_.drop_if_older(r.key, r.version);
        }
    } else if (auto *reply = std::get_if<wire::FetchReply>(&message)) {
        on_fetch_reply(*reply, now_ms);
    } else if (auto *error = std::get_if<wire::ErrorReply>(&message)) {
        if (error->code == wire::ErrorCode::kFilling) {
            // An owner still being filled with the session's shard: the others decide.
            on_fetch_reply(wire::FetchReply{error->request_id, wire::FetchStatus::kNotFound, {}},
                           now_ms);
            return;
        }
        log(AgentLogLevel::kWarn, "RS0305: node %s answered an error: %.*s",
            nodes_[node]->name.c_str(), static_cast<int>(error->text.size()), error->text.data());
    }
}

void BackupAgent::on_heartbeat_ack(std::size_t i, const wire::HeartbeatAck &ack,
                                   std::uint64_t now_ms) {
    Node &node = *nodes_[i];
    bool first_answer = node.last_ack_ms == 0;
    if (!window_.up(i)) {
        log(AgentLogLevel::kInfo, "RS0306: node %s (%.*s) is up", node.query_endpoint.c_str(),
            static_cast<int>(ack.node_name.size()), ack.node_name.data());
        last_report_ms_ = 0;  // server-status shows it at once
        back_in_touch(now_ms);
    }
    node.last_ack_ms = now_ms;
    node.last_answer_id = std::max(node.last_answer_id, ack.request_id);
    node.name.assign(ack.node_name.data(), ack.node_name.size());
    window_.on_answered(i, ack.request_id);
    if (ack.epoch == epoch_) {
        auto outcome = window_.on_ack(i, ReplicationWindow::Ack{ack.owned, ack.full, ack.refused,
                                                                ack.refusing, &ack.shard_acks});
        if (outcome.repair.count() > 0) {
            log(AgentLogLevel::kInfo,
                "RS0319: node %s missed changes of %zu of its shards while it was not up or had "
                "no room: publishing those shards again",
                node.name.c_str(), outcome.repair.count());
            republish_shards(i, outcome.repair);
        }
        feed_.count_refused(outcome.newly_refused);
        if (outcome.became_full && now_ms - node.full_logged_ms >= kFullLogEveryMs) {
            node.full_logged_ms = now_ms;
            log(AgentLogLevel::kWarn,
                "RS0320: node %s (%s) is full: it refused %llu changes of this server for lack of "
                "memory; they stay unacknowledged there until it has room (raise its max-memory "
                "or add nodes)",
                node.query_endpoint.c_str(), node.name.c_str(),
                static_cast<unsigned long long>(ack.refused));
        }
        if (outcome.room_again) {
            log(AgentLogLevel::kInfo,
                "RS0321: node %s (%s) has room again: sending it what it refused",
                node.query_endpoint.c_str(), node.name.c_str());
            window_.resend(i, now_ms, 0,
                           [&](const ReplicationWindow::Change &c) { send_update(i, c); });
        }
        if (outcome.became_full || outcome.room_again) {
            last_report_ms_ = 0;
        }
    }
    if (first_answer) {
        ask_waiting_fetches();
    }
    std::string endpoint = resolve_wildcard(
        std::string(ack.updates_endpoint.data(), ack.updates_endpoint.size()), node.host);
    if (endpoint != node.updates_endpoint) {
        if (!node.updates_endpoint.empty()) {
            zmq_disconnect(node.publisher, node.updates_endpoint.c_str());
        }
        if (zmq_connect(node.publisher, endpoint.c_str()) != 0) {
            log(AgentLogLevel::kError, "RS0307: cannot publish to %s: %s", endpoint.c_str(),
                zmq_strerror(zmq_errno()));
            return;
        }
        node.updates_endpoint = endpoint;
    }
}

bool BackupAgent::any_node_up() const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (window_.up(i)) {
            return true;
        }
    }
    return false;
}

// A node answers after no node did for a while. Cut off from the bank (a partition, or every
// node down), this server heard of no session another server took over meanwhile (the nodes'
// refusals), so its copies are checked against the bank before they are served again, as after
// a stall of the server itself.
void BackupAgent::back_in_touch(std::uint64_t now_ms) {
    if (cut_off_since_ms_ == 0) {
        return;
    }
    std::uint64_t cut_off_ms = now_ms - cut_off_since_ms_;
    cut_off_since_ms_ = 0;
    if (cut_off_ms * 1000 <= static_cast<std::uint64_t>(kStallUs)) {
        return;
    }
    feed_.cut_off_from_bank();
    log(AgentLogLevel::kWarn,
        "RS0328: this server could not reach the bank for %llu ms: each session it holds is "
        "checked against the bank before it is served again",
        static_cast<unsigned long long>(cut_off_ms));
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

void BackupAgent::on_resend(std::size_t node, const wire::Resend &resend, std::uint64_t now_ms) {
    if (resend.epoch == epoch_ && resend.from_sequence > 0) {
        window_.resend(node, now_ms, 0,
                       [&](const ReplicationWindow::Change &c) { send_update(node, c); });
    }
    if (resend.shards.count() > 0) {
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

void BackupAgent::send_heartbeats(std::uint64_t now_ms) {
    // A node that has answered is asked at once about changes published since it was last
    // asked, and again every heartbeat_busy_ms while changes are in flight (it may have answered
    // before they reached it): acknowledgements follow publications within a millisecond or two.
    bool busy = !window_.empty();
    std::uint64_t next_sequence = window_.next_sequence();
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        Node &node = *nodes_[i];
        bool answered = node.last_answer_id >= node.last_heartbeat_id;
        std::uint64_t interval = !busy                              ? config_.heartbeat_idle_ms
                                 : !answered                        ? config_.heartbeat_retry_ms
                                 : node.asked_up_to < next_sequence ? 0
                                                                    : config_.heartbeat_busy_ms;
        if (window_.up(i) && now_ms - node.last_ack_ms > config_.node_timeout_ms) {
            window_.on_down(i);
            log(AgentLogLevel::kWarn, "RS0308: node %s (%s) is down: no answer for %llums",
                node.query_endpoint.c_str(), node.name.c_str(),
                static_cast<unsigned long long>(now_ms - node.last_ack_ms));
            last_report_ms_ = 0;
            if (cut_off_since_ms_ == 0 && !any_node_up()) {
                cut_off_since_ms_ = node.last_ack_ms;  // the bank's last word to this server
            }
        }
        if (now_ms - node.last_heartbeat_ms < interval) {
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
            node.last_heartbeat_ms =
                now_ms - interval + std::min(interval, config_.heartbeat_retry_ms);
            continue;
        }
        node.last_heartbeat_ms = now_ms;
    }
}

std::size_t BackupAgent::publish_changes(std::uint64_t now_ms) {
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
            p.record.key = change.id;
            p.record.version = change.version;
            p.record.expires_at_ms =
                change.expiry_us > 0 ? static_cast<std::uint64_t>(change.expiry_us / 1000) : 0;
            p.record.tombstone = change.tombstone;
            p.record.origin = config_.server_id;
            p.record.data = change.data;
            const ReplicationWindow::Change &c =
                window_.add(shard, numbers, change.id, change.version, change.saved_at_us, now_ms,
                            std::move(wire::encode_published(p)[0]));
            for (std::size_t i = 0; i < nodes_.size(); ++i) {
                if (window_.sends_to(i, shard)) {
                    send_update(i, c);
                }
            }
        }
        feed_.count_published(batch.size());
        published += batch.size();
    }
    return published;
}

void BackupAgent::settle_acknowledged() {
    std::int64_t now_us = wall_us();
    std::size_t settled = window_.settle([&](const ReplicationWindow::Change &c) {
        settling_.push_back({c.id, c.version, c.saved_at_us});
        if (settling_.size() == kAcknowledgeBatch) {
            feed_.acknowledge(settling_.data(), settling_.size(), now_us);
            settling_.clear();
        }
    });
    if (settled > 0) {
        feed_.acknowledge(settling_.data(), settling_.size(), now_us);
        settling_.clear();
        feed_.set_oldest_in_flight(window_.oldest_saved_at_us());
    }
}

// A PUB socket drops silently (a full queue, a connection being remade): what a node lacks
// after resend_after_ms goes again, to that node alone.
void BackupAgent::resend_unacknowledged(std::uint64_t now_ms) {
    std::uint64_t every =
        std::max<std::uint64_t>(1, config_.resend_after_ms / kResendChecksPerInterval);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (window_.empty() || now_ms - nodes_[i]->last_resend_check_ms < every) {
            continue;
        }
        nodes_[i]->last_resend_check_ms = now_ms;
        std::size_t resent =
            window_.resend(i, now_ms, config_.resend_after_ms,
                           [&](const ReplicationWindow::Change &c) { send_update(i, c); });
        if (resent > 0) {
            log(AgentLogLevel::kDebug, "RS0309: re-sent %zu unacknowledged changes to node %s",
                resent, nodes_[i]->name.c_str());
        }
    }
}

void BackupAgent::continue_scans() {
    std::int64_t now_us = wall_us();
    for (Scan &scan : scans_) {
        bool done = scan.unacknowledged_only
                        ? feed_.requeue_scan(&scan.cursor, &scan.scanned, kScanBudget, nullptr,
                                             nullptr, now_us)
                        : feed_.requeue_scan(&scan.cursor, &scan.scanned, kScanBudget, in_shards,
                                             &scan.shards, now_us);
        scan.active = !done;
    }
    scans_.erase(
        std::remove_if(scans_.begin(), scans_.end(), [](const Scan &scan) { return !scan.active; }),
        scans_.end());
}

void BackupAgent::accept_fetches(std::uint64_t now_ms) {
    (void)now_ms;
    for (;;) {
        int fd = accept4(config_.fetch_listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        accepted_.push_back(fd);
    }
}

void BackupAgent::on_fetch_request(int fd, std::uint64_t now_ms) {
    unsigned char buf[kFetchRequestBytes + 1];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    FetchRequest request;
    if (n <= 0 || !decode_fetch_request(buf, static_cast<std::size_t>(n), &request)) {
        close(fd);
        return;
    }
    auto fetch = std::make_unique<PendingFetch>();
    fetch->fd = fd;
    fetch->id = request.id;
    fetch->check = request.check;
    fetch->deadline_ms = now_ms + request.timeout_ms;
    if (fetches_.size() >= config_.max_pending_fetches) {
        if (fetch->check) {
            finish_check(*fetch, true);  // unchecked: the worker serves its copy
        } else {
            answer_fetch(*fetch, static_cast<std::uint8_t>(FetchOutcome::kShed));
        }
        return;
    }
    fetch->request_id = next_request_id_++;
    if (ask_bank(*fetch) == 0 && reached_the_bank()) {
        finish_fetch(*fetch, true, now_ms);
        return;
    }
    // Asked, or waiting (until its deadline) for the first node to answer: a server just
    // started, or whose agent just restarted, must not start new sessions for the users that
    // fail over to it only because its connections to the bank are still being made.
    std::uint64_t request_id = fetch->request_id;
    fetches_[request_id] = std::move(fetch);
}

// Asks the session's owners, or when none can be asked the rest of the bank.
std::size_t BackupAgent::ask_bank(PendingFetch &fetch) {
    fetch.owners_only = true;
    std::size_t asked = ask_for_fetch(fetch);
    if (asked == 0) {
        fetch.owners_only = false;
        asked = ask_for_fetch(fetch);
    }
    return asked;
}

bool BackupAgent::reached_the_bank() const {
    return std::any_of(nodes_.begin(), nodes_.end(),
                       [](const auto &node) { return node->last_ack_ms != 0; });
}

// A node answered for the first time: the fetches that found no node to ask go to it now.
void BackupAgent::ask_waiting_fetches() {
    for (auto &entry : fetches_) {
        PendingFetch &fetch = *entry.second;
        if (fetch.asked == 0) {
            ask_bank(fetch);
        }
    }
}

// Asks the session's owners (those that are up and own its shard), or with owners_only clear
// the rest of the bank; returns how many were asked. A node that stopped answering heartbeats
// (hung, or gone without closing its connection) is never asked: it would hold the fetch until
// its deadline. A node not heard from yet is asked with the rest.
std::size_t BackupAgent::ask_for_fetch(PendingFetch &fetch) {
    wire::Frames frames = wire::encode_message(wire::Fetch{fetch.request_id, fetch.id});
    std::uint32_t shard = wire::shard_of(fetch.id);
    std::size_t asked = 0;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        bool silent = !window_.up(i) && nodes_[i]->last_ack_ms != 0;
        bool owner = window_.up(i) && window_.owned(i).contains(shard);
        if (!silent && owner == fetch.owners_only &&
            send_frames(nodes_[i]->dealer, nullptr, frames, ZMQ_DONTWAIT)) {
            ++asked;
        }
    }
    fetch.asked += asked;
    return asked;
}

// The highest version among the answers wins (wire::supersedes): a node that was hung, or is
// still filling a shard it took over, may answer with an older one. So a fetch waits for every node
// it asked (a silent one is never asked), or, once one has the session, kOtherAnswersGraceMs more
// at most.
void BackupAgent::on_fetch_reply(const wire::FetchReply &reply, std::uint64_t now_ms) {
    auto it = fetches_.find(reply.request_id);
    if (it == fetches_.end()) {
        return;  // answered already, or given up
    }
    PendingFetch &fetch = *it->second;
    ++fetch.answered;
    if (reply.status != wire::FetchStatus::kNotFound &&
        (fetch.best_version == 0 || wire::supersedes(reply.record.version, reply.record.origin,
                                                     fetch.best_version, fetch.best_origin))) {
        if (fetch.best_version == 0) {
            fetch.deadline_ms = std::min(fetch.deadline_ms, now_ms + kOtherAnswersGraceMs);
        }
        fetch.best_version = reply.record.version;
        fetch.best_origin.assign(reply.record.origin.data(), reply.record.origin.size());
        fetch.best_deleted = reply.status == wire::FetchStatus::kDeleted;
        fetch.best_data.assign(reply.record.data.data(), reply.record.data.size());
        fetch.best_expiry_us = static_cast<std::int64_t>(reply.record.expires_at_ms) * 1000;
    }
    if (fetch.answered < fetch.asked) {
        return;
    }
    if (fetch.best_version == 0 && fetch.owners_only) {
        // The owners do not have it: a node that owned its shard before the bank changed may.
        fetch.owners_only = false;
        if (ask_for_fetch(fetch) > 0) {
            return;
        }
    }
    finish_fetch(fetch, false, now_ms);
    fetches_.erase(it);
}

void BackupAgent::expire_fetches(std::uint64_t now_ms) {
    for (auto it = fetches_.begin(); it != fetches_.end();) {
        if (now_ms >= it->second->deadline_ms) {
            finish_fetch(*it->second, true, now_ms);
            it = fetches_.erase(it);
        } else {
            ++it;
        }
    }
}

// Stores the best version found, if any, and answers the worker. A session larger than this
// server's RhythmSessionMaxSize is not stored: every save a request made of it would be refused
// (RS0103) while the user is answered 200, so the changes would be lost; a new session is
// visible, and the bank's copy stays intact for a server with the larger limit.
void BackupAgent::finish_fetch(PendingFetch &fetch, bool deadline_passed, std::uint64_t now_ms) {
    if (fetch.check) {
        finish_check(fetch, deadline_passed);
        return;
    }
    FetchOutcome outcome;
    if (fetch.best_version == 0) {
        outcome = deadline_passed ? FetchOutcome::kTimedOut : FetchOutcome::kNotFound;
    } else if (fetch.best_deleted) {
        outcome = FetchOutcome::kDeleted;
    } else if (fetch.best_data.size() > config_.max_session_bytes) {
        outcome = FetchOutcome::kTooLarge;
        log_too_large(fetch, now_ms);
    } else {
        SessionCache::Save saved =
            feed_.insert_fetched(fetch.id, fetch.best_data.data(), fetch.best_data.size(),
                                 fetch.best_expiry_us, fetch.best_version);
        outcome =
            saved == SessionCache::Save::kNoSpace ? FetchOutcome::kNoSpace : FetchOutcome::kFound;
    }
    answer_fetch(fetch, static_cast<std::uint8_t>(outcome));
}

// A copy held here after the server stalled, against the bank's best: replaced when the bank's
// is newer (BackupFeed::reconcile). A deadline with no answer leaves it unchecked: the worker
// serves it (with every node down, nobody can have continued it from the bank either).
void BackupAgent::finish_check(PendingFetch &fetch, bool deadline_passed) {
    FetchOutcome outcome = FetchOutcome::kTimedOut;
    if (fetch.best_version != 0 || !deadline_passed) {
        BackupFeed::BankCopy bank;
        bank.found = fetch.best_version != 0;
        bank.deleted = fetch.best_deleted;
        bank.version = fetch.best_version;
        bank.data = fetch.best_data;
        bank.expiry_us = fetch.best_expiry_us;
        bank.too_large = fetch.best_data.size() > config_.max_session_bytes;
        using R = BackupFeed::Reconciled;
        R result = feed_.reconcile(fetch.id, bank);
        outcome = result == R::kCurrent    ? FetchOutcome::kCurrent
                  : result == R::kReplaced ? FetchOutcome::kReplaced
                  : result == R::kDeleted  ? FetchOutcome::kDeleted
                  : result == R::kTooLarge ? FetchOutcome::kTooLarge
                  : result == R::kNoSpace  ? FetchOutcome::kNoSpace
                                           : FetchOutcome::kTimedOut;
        if (result != R::kNotWaiting) {
            feed_.count_check(result != R::kCurrent);
        }
    }
    send(fetch.fd, &outcome, 1, MSG_NOSIGNAL);
    close(fetch.fd);
    fetch.fd = -1;
}

// RS0323, at most one line per kTooLargeLogEveryMs: the sessions that fail over are many when a
// server dies, and each would say the same.
void BackupAgent::log_too_large(const PendingFetch &fetch, std::uint64_t now_ms) {
    if (too_large_logged_ms_ != 0 && now_ms - too_large_logged_ms_ < kTooLargeLogEveryMs) {
        ++too_large_unlogged_;
        return;
    }
    char prefix[7];
    session_id_log_prefix(fetch.id, prefix);
    char unlogged[64] = "";
    if (too_large_unlogged_ > 0) {
        std::snprintf(unlogged, sizeof unlogged, " (and %llu more since the last such line)",
                      static_cast<unsigned long long>(too_large_unlogged_));
    }
    log(AgentLogLevel::kWarn,
        "RS0323: session %s... not taken over: the bank holds it at %zu bytes, more than "
        "RhythmSessionMaxSize here (%llu bytes); give every server of the bank the same "
        "RhythmSessionMaxSize%s",
        prefix, fetch.best_data.size(), static_cast<unsigned long long>(config_.max_session_bytes),
        unlogged);
    too_large_logged_ms_ = now_ms;
    too_large_unlogged_ = 0;
}

void BackupAgent::answer_fetch(PendingFetch &fetch, std::uint8_t outcome) {
    // Counted before the worker hears: its request may end, and server-status be read, before
    // this process runs again.
    using Count = BackupFeed::FetchCount;
    switch (static_cast<FetchOutcome>(outcome)) {
        case FetchOutcome::kFound:
            feed_.count_fetch(Count::kFound);
            break;
        case FetchOutcome::kTimedOut:
            feed_.count_fetch(Count::kTimedOut);
            break;
        case FetchOutcome::kShed:
            feed_.count_fetch(Count::kShed);
            break;
        case FetchOutcome::kTooLarge:
            feed_.count_fetch(Count::kTooLarge);
            break;
        case FetchOutcome::kNoSpace:
            feed_.count_fetch(Count::kNoSpace);
            break;
        default:
            feed_.count_fetch(Count::kMissing);
            break;
    }
    send(fetch.fd, &outcome, 1, MSG_NOSIGNAL);
    close(fetch.fd);
    fetch.fd = -1;
}

void BackupAgent::report(std::uint64_t now_ms) {
    if (now_ms - last_report_ms_ < kReportEveryMs) {
        return;
    }
    last_report_ms_ = now_ms;
    std::uint32_t up = 0;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        up += window_.up(i) ? 1 : 0;
    }
    feed_.set_nodes(static_cast<std::uint32_t>(nodes_.size()), up);
    report_nodes(now_ms);
    feed_.set_oldest_in_flight(window_.oldest_saved_at_us());
    if (now_ms - last_lag_rotation_ms_ >= kLagWindowMs) {
        feed_.rotate_lag_window();
        last_lag_rotation_ms_ = now_ms;
    }
}

void BackupAgent::report_nodes(std::uint64_t now_ms) {
    NodeReport reports[kReportedNodes] = {};
    std::size_t count = std::min(nodes_.size(), kReportedNodes);
    std::int64_t now_us = wall_us();
    for (std::size_t i = 0; i < count; ++i) {
        const Node &node = *nodes_[i];
        NodeReport &r = reports[i];
        std::snprintf(r.endpoint, sizeof r.endpoint, "%s", node.query_endpoint.c_str());
        if (node.last_ack_ms != 0) {
            std::snprintf(r.name, sizeof r.name, "%s", node.name.c_str());
            r.last_answer_us = now_us - static_cast<std::int64_t>(now_ms - node.last_ack_ms) * 1000;
        }
        ReplicationWindow::NodeFigures f = window_.figures(i);
        r.state = window_.up(i)           ? (f.full ? NodeState::kFull : NodeState::kUp)
                  : node.last_ack_ms != 0 ? NodeState::kDown
                                          : NodeState::kUnknown;
        r.unacknowledged = f.unacknowledged;
        r.refused = f.refused;
        // What it lacks that is no longer in flight (settled while it was down or refusing) is
        // dated from its last answer: it is behind since then at least.
        std::int64_t oldest = f.oldest_saved_at_us;
        if (f.lacks_settled && r.last_answer_us != 0 &&
            (oldest == 0 || r.last_answer_us < oldest)) {
            oldest = r.last_answer_us;
        }
        r.oldest_unacknowledged_us = f.unacknowledged == 0 ? 0 : oldest;
    }
    feed_.set_node_reports(reports, count);
}

}  // namespace rhythm
