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

std::uint64_t steady_us() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
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
    std::string name;
    std::string updates_endpoint;  // connected on the publisher, once a heartbeat-ack named it
    std::uint64_t last_ack_ms = 0;
    std::uint64_t last_heartbeat_ms = 0;
    std::uint64_t last_heartbeat_id = 0;  // request id of the last heartbeat sent
    std::uint64_t last_answer_id = 0;     // ... and of the last one answered
    std::uint64_t asked_up_to = 0;        // the last heartbeat's next_sequence
    // Highest sequence of the current epoch up to which it holds every change of the shards it
    // owns (it acknowledges shard by shard; the changes of other shards do not hold it back).
    std::uint64_t acked = 0;
    wire::ShardSet owned;  // as its last acknowledgement said
    // Shards with changes the bank settled while this node was not up: it may have missed them
    // (its updates socket was not connected, or it stopped reading), and they are no longer in
    // flight to be sent again. Those it owns are published again once it answers again.
    wire::ShardSet missed;
    std::vector<std::uint64_t> shard_acked =  // per shard, the shard sequence it holds up to
        std::vector<std::uint64_t>(wire::kShardCount);
    // Shard heads the node asked for (by a resend), to go in the next heartbeat, and those sent
    // in heartbeat heads_request_id and after, until one of them is answered.
    std::map<std::uint16_t, std::uint64_t> heads_to_send;
    std::map<std::uint16_t, std::uint64_t> heads_sent;
    std::uint64_t heads_request_id = 0;
    bool up = false;
};

struct BackupAgent::PendingFetch {
    int fd = -1;
    SessionId id;
    std::uint64_t request_id = 0;
    std::uint64_t deadline_ms = 0;
    std::size_t asked = 0;
    std::size_t answered = 0;
    bool owners_only = false;  // the rest of the bank is still to be asked
    // The highest version answered so far (0: none), and its record.
    std::uint64_t best_version = 0;
    bool best_deleted = false;
    std::string best_data;
    std::int64_t best_expiry_us = 0;
};

BackupAgent::BackupAgent(SessionCache cache, AgentConfig config, AgentLog log)
    : cache_(cache),
      feed_(cache_),
      config_(std::move(config)),
      log_(log),
      shard_sequences_(wire::kShardCount),
      pacer_(config_.tick) {}

BackupAgent::~BackupAgent() {
    handshake_monitors_.clear();  // before zmq_ctx_term, which waits for every socket
    for (auto &node : nodes_) {
        if (node->dealer) {
            zmq_close(node->dealer);
        }
    }
    if (publisher_) {
        zmq_close(publisher_);
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
    publisher_ = zmq_socket(context_, ZMQ_PUB);
    int on = 1;
    int hwm = static_cast<int>(config_.max_in_flight);
    set_network_options(publisher_);
    // Without IMMEDIATE, messages queued for a dead node go to its replacement late, and its
    // subscriptions outlive it.
    zmq_setsockopt(publisher_, ZMQ_IMMEDIATE, &on, sizeof on);
    zmq_setsockopt(publisher_, ZMQ_SNDHWM, &hwm, sizeof hwm);
    watch_handshakes(publisher_);
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
        // Orphaned (the httpd parent was killed): stop. Checked every 100 ms, not every turn:
        // a system call is dear on a busy virtual machine.
        if (now - parent_checked_ms >= 100) {
            if (getppid() != parent) {
                break;
            }
            parent_checked_ms = now;
        }
        // The tick: changes are taken from the segment in one batch (tick_pacer.h). Between
        // ticks the agent wakes only for the nodes' answers and for fetches.
        poll_once(pacer_.wait_ms(steady_us()));
        std::uint64_t now_us = steady_us();
        now = now_us / 1000;
        continue_scans(now);
        settle_acknowledged(now);
        if (!in_flight_.empty() &&
            now - in_flight_.front().published_ms >= config_.resend_after_ms &&
            now - last_resend_ms_ >= config_.resend_after_ms) {
            std::uint64_t acked = in_flight_.front().sequence - 1;
            for (auto &node : nodes_) {
                if (node->up) {
                    acked = std::min(acked, node->acked);
                }
            }
            resend_in_flight(acked + 1, now);
        }
        if (pacer_.due(now_us)) {
            bool worked = publish_changes(now) > 0 || !in_flight_.empty() || !scans_.empty();
            pacer_.ticked(now_us, worked, cpu_wait.since_last_us());
        }
        // After publishing: a heartbeat sent now asks about this turn's changes too.
        send_heartbeats(now);
        expire_fetches(now);
        report(now);
    }
    log(AgentLogLevel::kInfo, "RS0303: backup agent stopping (%zu changes in flight)",
        in_flight_.size());
}

void BackupAgent::poll_once(std::uint64_t timeout_ms) {
    std::vector<zmq_pollitem_t> items;
    for (auto &node : nodes_) {
        items.push_back({node->dealer, 0, ZMQ_POLLIN, 0});
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
    if (zmq_poll(items.data(), static_cast<int>(items.size()), static_cast<long>(timeout_ms)) <=
        0) {
        return;
    }
    std::uint64_t now_ms = steady_ms();
    std::size_t k = 0;
    for (auto &node : nodes_) {
        if (items[k++].revents & ZMQ_POLLIN) {
            ReceivedMessage message;
            while (message.receive(node->dealer, ZMQ_DONTWAIT)) {
                wire::Message decoded;
                wire::DecodeResult result = wire::decode_message(
                    wire::FrameSpan(message.frames(), message.size()), &decoded);
                if (!result.ok()) {
                    log(AgentLogLevel::kWarn, "RS0304: malformed message from node %s dropped: %s",
                        node->name.c_str(), result.message);
                    continue;
                }
                on_node_message(*node, decoded, now_ms);
            }
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

void BackupAgent::on_node_message(Node &node, const wire::Message &message, std::uint64_t now_ms) {
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
        log(AgentLogLevel::kWarn, "RS0305: node %s answered an error: %.*s", node.name.c_str(),
            static_cast<int>(error->text.size()), error->text.data());
    }
}

void BackupAgent::on_heartbeat_ack(Node &node, const wire::HeartbeatAck &ack,
                                   std::uint64_t now_ms) {
    bool first_answer = node.last_ack_ms == 0;
    bool was_up = node.up;
    if (!node.up) {
        log(AgentLogLevel::kInfo, "RS0306: node %s (%.*s) is up", node.query_endpoint.c_str(),
            static_cast<int>(ack.node_name.size()), ack.node_name.data());
        last_report_ms_ = 0;  // server-status shows it at once
    }
    node.up = true;
    node.last_ack_ms = now_ms;
    node.last_answer_id = std::max(node.last_answer_id, ack.request_id);
    node.name.assign(ack.node_name.data(), ack.node_name.size());
    if (ack.request_id >= node.heads_request_id) {
        node.heads_sent.clear();
    }
    if (ack.epoch == epoch_) {
        // What it missed of the shards it owned at its previous answer: a re-send it asked for
        // with that answer (one that restarted empty asks for all its shards) came before this
        // one on the same connection and was taken, so no shard is published twice.
        wire::ShardSet repair = was_up ? node.missed.common(node.owned) : wire::ShardSet{};
        if (repair.count() > 0) {
            log(AgentLogLevel::kInfo,
                "RS0319: node %s missed changes of %zu of its shards while it was not up: "
                "publishing those shards again",
                node.name.c_str(), repair.count());
            republish_shards(node, repair);
        }
        node.owned = ack.owned;
        for (const wire::ShardSequence &a : ack.shard_acks) {
            node.shard_acked[a.shard] = std::max(node.shard_acked[a.shard], a.shard_sequence);
        }
        advance_acked(node);
    }
    if (first_answer) {
        ask_waiting_fetches();
    }
    std::string endpoint = resolve_wildcard(
        std::string(ack.updates_endpoint.data(), ack.updates_endpoint.size()), node.host);
    if (endpoint != node.updates_endpoint) {
        if (!node.updates_endpoint.empty()) {
            zmq_disconnect(publisher_, node.updates_endpoint.c_str());
        }
        if (zmq_connect(publisher_, endpoint.c_str()) != 0) {
            log(AgentLogLevel::kError, "RS0307: cannot publish to %s: %s", endpoint.c_str(),
                zmq_strerror(zmq_errno()));
            return;
        }
        node.updates_endpoint = endpoint;
    }
}

// Moves the node's stream-wide acknowledgement past every change in flight that it holds or that
// is not of its shards. In flight is contiguous in sequence, so the walk starts where it stopped.
void BackupAgent::advance_acked(Node &node) {
    std::size_t pos = 0;
    if (!in_flight_.empty() && node.acked >= in_flight_.front().sequence) {
        pos = static_cast<std::size_t>(node.acked + 1 - in_flight_.front().sequence);
    }
    for (; pos < in_flight_.size(); ++pos) {
        const InFlight &f = in_flight_[pos];
        if (node.owned.contains(f.shard) && node.shard_acked[f.shard] < f.shard_sequence) {
            return;
        }
        node.acked = f.sequence;
    }
    node.acked = next_sequence_ - 1;
}

// A change counts as held by the bank once some node that is up owns its shard (and, with the
// stream-wide check in settle_acknowledged, every such node has it).
bool BackupAgent::held_by_an_owner(const InFlight &f) const {
    return std::any_of(nodes_.begin(), nodes_.end(), [&](const auto &node) {
        return node->up && node->owned.contains(f.shard) &&
               node->shard_acked[f.shard] >= f.shard_sequence;
    });
}

void BackupAgent::on_resend(Node &node, const wire::Resend &resend, std::uint64_t now_ms) {
    if (resend.epoch == epoch_ && resend.from_sequence > 0) {
        resend_in_flight(resend.from_sequence, now_ms);
    }
    if (resend.shards.count() > 0) {
        republish_shards(node, resend.shards);
    }
}

// The node counts each of these shards from its head as it is now, before the sessions are
// published again (continue_scans, later): they all come after it.
void BackupAgent::republish_shards(Node &node, const wire::ShardSet &shards) {
    shards.for_each([&](std::uint32_t shard) {
        node.heads_to_send[static_cast<std::uint16_t>(shard)] = shard_sequences_[shard];
    });
    node.missed.remove_all(shards);
    scans_.push_back(Scan{true, false, shards, 0, 0});
}

void BackupAgent::send_heartbeats(std::uint64_t now_ms) {
    // A node that has answered is asked at once about changes published since it was last
    // asked, and again every heartbeat_busy_ms while changes are in flight (it may have answered
    // before they reached it): acknowledgements follow publications within a millisecond or two.
    bool busy = !in_flight_.empty();
    for (auto &node : nodes_) {
        bool answered = node->last_answer_id >= node->last_heartbeat_id;
        std::uint64_t interval = !busy                                ? config_.heartbeat_idle_ms
                                 : !answered                          ? config_.heartbeat_retry_ms
                                 : node->asked_up_to < next_sequence_ ? 0
                                                                      : config_.heartbeat_busy_ms;
        if (node->up && now_ms - node->last_ack_ms > config_.node_timeout_ms) {
            node->up = false;
            log(AgentLogLevel::kWarn, "RS0308: node %s (%s) is down: no answer for %llums",
                node->query_endpoint.c_str(), node->name.c_str(),
                static_cast<unsigned long long>(now_ms - node->last_ack_ms));
            last_report_ms_ = 0;
        }
        if (now_ms - node->last_heartbeat_ms < interval) {
            continue;
        }
        wire::Heartbeat hb;
        hb.request_id = next_request_id_++;
        hb.agent_id = agent_id_;
        hb.epoch = epoch_;
        hb.next_sequence = next_sequence_;
        node->last_heartbeat_id = hb.request_id;
        node->asked_up_to = next_sequence_;
        hb.server_name = config_.server_id;
        // Heads go in every heartbeat until one that carried them is answered.
        if (node->heads_sent.empty() && !node->heads_to_send.empty()) {
            node->heads_sent.swap(node->heads_to_send);
            node->heads_request_id = hb.request_id;
        }
        for (const auto &[shard, head] : node->heads_sent) {
            hb.heads.push_back(wire::ShardSequence{shard, head});
        }
        if (!send_frames(node->dealer, nullptr, wire::encode_message(hb), ZMQ_DONTWAIT)) {
            // Not connected (yet): try again after heartbeat_retry_ms, not a whole interval, so
            // that a new agent reaches a node, and can fetch from it, as soon as it is reachable.
            node->last_heartbeat_ms =
                now_ms - interval + std::min(interval, config_.heartbeat_retry_ms);
            continue;
        }
        node->last_heartbeat_ms = now_ms;
    }
}

std::size_t BackupAgent::publish_changes(std::uint64_t now_ms) {
    bool reachable = std::any_of(nodes_.begin(), nodes_.end(), [](const auto &node) {
        return node->up && !node->updates_endpoint.empty();
    });
    if (!reachable) {
        return 0;  // changes wait in the segment until a node is back
    }
    std::size_t published = 0;
    std::vector<ChangeRecord> batch;
    while (in_flight_.size() < config_.max_in_flight &&
           in_flight_bytes_ < config_.max_in_flight_bytes) {
        batch.clear();
        feed_.take_changes(&batch, kTakeBatch, kTakeBytes);
        if (batch.empty()) {
            break;
        }
        for (const ChangeRecord &change : batch) {
            wire::Published p;
            p.sender.agent_id = agent_id_;
            p.sender.epoch = epoch_;
            p.sender.sequence = next_sequence_++;
            std::uint32_t shard = wire::shard_of(change.id);
            p.sender.shard_sequence = ++shard_sequences_[shard];
            p.record.key = change.id;
            p.record.version = change.version;
            p.record.expires_at_ms =
                change.expiry_us > 0 ? static_cast<std::uint64_t>(change.expiry_us / 1000) : 0;
            p.record.tombstone = change.tombstone;
            p.record.origin = config_.server_id;
            p.record.data = change.data;
            InFlight f{
                p.sender.sequence,  shard,  p.sender.shard_sequence,  change.id, change.version,
                change.saved_at_us, now_ms, wire::encode_published(p)};
            send_frames(publisher_, nullptr, f.frames, ZMQ_DONTWAIT);
            in_flight_bytes_ += change.data.size() + 128;
            in_flight_.push_back(std::move(f));
        }
        feed_.count_published(batch.size());
        published += batch.size();
    }
    return published;
}

void BackupAgent::settle_acknowledged(std::uint64_t now_ms) {
    (void)now_ms;
    bool any_up = false;
    std::uint64_t acked = ~0ULL;
    for (auto &node : nodes_) {
        if (node->up) {
            any_up = true;
            acked = std::min(acked, node->acked);
        }
    }
    if (!any_up) {
        return;
    }
    std::int64_t now_us = wall_us();
    bool settled = false;
    while (!in_flight_.empty() && in_flight_.front().sequence <= acked &&
           held_by_an_owner(in_flight_.front())) {
        const InFlight &f = in_flight_.front();
        for (auto &node : nodes_) {
            if (!node->up) {
                node->missed.add(f.shard);
            }
        }
        settling_.push_back({f.id, f.version, f.saved_at_us});
        if (settling_.size() == kAcknowledgeBatch) {
            feed_.acknowledge(settling_.data(), settling_.size(), now_us);
            settling_.clear();
        }
        in_flight_bytes_ -= std::min(in_flight_bytes_, f.frames.back().size() + 128);
        in_flight_.pop_front();
        settled = true;
    }
    if (settled) {
        feed_.acknowledge(settling_.data(), settling_.size(), now_us);
        settling_.clear();
        feed_.set_oldest_in_flight(in_flight_.empty() ? 0 : in_flight_.front().saved_at_us);
    }
}

void BackupAgent::resend_in_flight(std::uint64_t from_sequence, std::uint64_t now_ms) {
    last_resend_ms_ = now_ms;
    if (in_flight_.empty()) {
        return;
    }
    if (from_sequence < in_flight_.front().sequence) {
        new_epoch("a node asked for changes this agent no longer holds");
        return;
    }
    std::size_t resent = 0;
    for (InFlight &f : in_flight_) {
        if (f.sequence >= from_sequence) {
            send_frames(publisher_, nullptr, f.frames, ZMQ_DONTWAIT);
            f.published_ms = now_ms;
            ++resent;
        }
    }
    log(AgentLogLevel::kDebug, "RS0309: re-sent %zu unacknowledged changes from sequence %llu",
        resent, static_cast<unsigned long long>(from_sequence));
}

void BackupAgent::new_epoch(const char *why) {
    std::int64_t now_us = wall_us();
    for (const InFlight &f : in_flight_) {
        feed_.requeue(f.id, now_us);
    }
    in_flight_.clear();
    in_flight_bytes_ = 0;
    feed_.start_agent(static_cast<std::int32_t>(getpid()), agent_id_.data(), &epoch_);
    next_sequence_ = 1;
    std::fill(shard_sequences_.begin(), shard_sequences_.end(), 0);
    for (auto &node : nodes_) {
        node->acked = 0;
        std::fill(node->shard_acked.begin(), node->shard_acked.end(), 0);
        // A new epoch counts every shard from 0: no head is needed.
        node->heads_to_send.clear();
        node->heads_sent.clear();
    }
    scans_.push_back(Scan{true, true, {}, 0, 0});
    log(AgentLogLevel::kInfo, "RS0310: new epoch %llu: %s", static_cast<unsigned long long>(epoch_),
        why);
}

void BackupAgent::continue_scans(std::uint64_t now_ms) {
    (void)now_ms;
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
    fetch->deadline_ms = now_ms + request.timeout_ms;
    if (fetches_.size() >= config_.max_pending_fetches) {
        answer_fetch(*fetch, static_cast<std::uint8_t>(FetchOutcome::kShed));
        return;
    }
    fetch->request_id = next_request_id_++;
    if (ask_bank(*fetch) == 0 && reached_the_bank()) {
        answer_fetch(*fetch, static_cast<std::uint8_t>(FetchOutcome::kTimedOut));
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
    for (auto &node : nodes_) {
        bool silent = !node->up && node->last_ack_ms != 0;
        bool owner = node->up && node->owned.contains(shard);
        if (!silent && owner == fetch.owners_only &&
            send_frames(node->dealer, nullptr, frames, ZMQ_DONTWAIT)) {
            ++asked;
        }
    }
    fetch.asked += asked;
    return asked;
}

// The highest version among the answers wins: a node that was hung, or is still filling a shard
// it took over, may answer with an older one. So a fetch waits for every node it asked (a silent
// one is never asked), or, once one has the session, kOtherAnswersGraceMs more at most.
void BackupAgent::on_fetch_reply(const wire::FetchReply &reply, std::uint64_t now_ms) {
    auto it = fetches_.find(reply.request_id);
    if (it == fetches_.end()) {
        return;  // answered already, or given up
    }
    PendingFetch &fetch = *it->second;
    ++fetch.answered;
    if (reply.status != wire::FetchStatus::kNotFound && reply.record.version > fetch.best_version) {
        if (fetch.best_version == 0) {
            fetch.deadline_ms = std::min(fetch.deadline_ms, now_ms + kOtherAnswersGraceMs);
        }
        fetch.best_version = reply.record.version;
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
    finish_fetch(fetch, false);
    fetches_.erase(it);
}

void BackupAgent::expire_fetches(std::uint64_t now_ms) {
    for (auto it = fetches_.begin(); it != fetches_.end();) {
        if (now_ms >= it->second->deadline_ms) {
            finish_fetch(*it->second, true);
            it = fetches_.erase(it);
        } else {
            ++it;
        }
    }
}

// Stores the best version found, if any, and answers the worker.
void BackupAgent::finish_fetch(PendingFetch &fetch, bool deadline_passed) {
    FetchOutcome outcome;
    if (fetch.best_version == 0) {
        outcome = deadline_passed ? FetchOutcome::kTimedOut : FetchOutcome::kNotFound;
    } else if (fetch.best_deleted) {
        outcome = FetchOutcome::kDeleted;
    } else {
        SessionCache::Save saved =
            feed_.insert_fetched(fetch.id, fetch.best_data.data(), fetch.best_data.size(),
                                 fetch.best_expiry_us, fetch.best_version);
        outcome =
            saved == SessionCache::Save::kNoSpace ? FetchOutcome::kNotFound : FetchOutcome::kFound;
    }
    answer_fetch(fetch, static_cast<std::uint8_t>(outcome));
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
    for (auto &node : nodes_) {
        up += node->up ? 1 : 0;
    }
    feed_.set_nodes(static_cast<std::uint32_t>(nodes_.size()), up);
    report_nodes(now_ms);
    feed_.set_oldest_in_flight(in_flight_.empty() ? 0 : in_flight_.front().saved_at_us);
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
        r.state = node.up                 ? NodeState::kUp
                  : node.last_ack_ms != 0 ? NodeState::kDown
                                          : NodeState::kUnknown;
        // Changes leave the in-flight queue once every node that is up has them, so a node that
        // is down may lack more than the queue holds: count from the sequence, and date what the
        // queue no longer holds from the node's last answer (it is behind since then at least).
        std::uint64_t published = next_sequence_ - 1;
        r.unacknowledged = published > node.acked ? published - node.acked : 0;
        auto first =
            std::partition_point(in_flight_.begin(), in_flight_.end(),
                                 [&](const InFlight &f) { return f.sequence <= node.acked; });
        if (r.unacknowledged == 0) {
            r.oldest_unacknowledged_us = 0;
        } else if (first != in_flight_.end() && first->sequence == node.acked + 1) {
            r.oldest_unacknowledged_us = first->saved_at_us;
        } else {
            r.oldest_unacknowledged_us = r.last_answer_us;
        }
    }
    feed_.set_node_reports(reports, count);
}

}  // namespace rhythm
