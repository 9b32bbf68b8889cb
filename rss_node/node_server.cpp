// The daemon's loop: its sockets on the event loop, and what arrives dispatched to the store, the
// agent tracker, the membership, the snapshot fills and the snapshot server.
#include "rss_node/node_server.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <malloc.h>
#include <sys/stat.h>
#include <zmq.h>

#include "rss_node/node_metrics.h"
#include "rss_node/node_status.h"
#include "rss_node/session_ending.h"
#include "rss_node/shard_ownership.h"
#include "wire/curve.h"
#include "wire/rendezvous.h"
#include "wire/session_key.h"
#include "wire/zmq_io.h"

namespace rhythm::node {
namespace {

using std::chrono::milliseconds;

// How much one turn of the loop does before looking at the other sockets and the timers.
constexpr int kUpdatesPerTurn = 4096;
constexpr int kQueriesPerTurn = 512;
// A peer's answers: as many as the snapshot records a turn sends.
constexpr std::size_t kPeerMessagesPerTurn = SnapshotServer::kRecordsPerTurn;

constexpr std::uint64_t kSweepIntervalMs = 100;
constexpr std::uint32_t kShardsPerSweep = 32;  // every shard about every 3.2 s
constexpr std::uint64_t kPingIntervalMs = 1000;
// During the start-up grace: a ping sent before the connection to a peer is made is dropped
// (ZMQ_IMMEDIATE), so ask again soon rather than a second later.
constexpr std::uint64_t kStartupPingIntervalMs = 100;
// A loop turn this much later than the last one means the node itself was stopped or starved.
constexpr std::uint64_t kStallMs = 1000;
// A shard this node no longer owns is kept this long, so that its new owner can take a snapshot
// of it from here, then dropped: it no longer receives updates, and a copy kept until its
// sessions expire would answer fetches with versions that grow older.
constexpr std::uint64_t kLostShardLingerMs = 10000;
constexpr std::uint64_t kAgentIdleMs = 600000;
// An agent heard from within this (an idle agent heartbeats every 500 ms) is asked for its copy
// of a session another server fetches; one silent longer is taken for hung or gone.
constexpr std::uint64_t kHandoverReachableMs = 1500;
// A server silent to this node for longer than kHandoverReachableMs, up to this, may be out of
// this node's reach only (packet loss, a one-sided cut), its changes acknowledged meanwhile by
// the other owners: the node cannot vouch for its copy of that server's sessions (the fault
// campaign, s100b). Past it the server is taken for gone, and the copy here for the best there is.
constexpr std::uint64_t kServerSilentLatelyMs = 10000;
// How long after its start a node may not have heard from every web server's agent yet (each
// heartbeats every 500 ms, once its connection is made again): until then it cannot ask a server
// it has not heard from for a newer copy, and answers fetches of that server's sessions
// provisionally (the fault campaign, seed 61: a node 145 ms old answered a take-over from its
// fresh snapshot, 4 changes behind the server's).
constexpr std::uint64_t kAgentsHeardWithinMs = 3000;
constexpr std::uint64_t kAgentCheckIntervalMs = 1000;
// How often the page --metrics serves is written again: a scrape reads figures at most this old.
constexpr std::uint64_t kMetricsIntervalMs = 1000;

constexpr int kQueriesHighWaterMark = 10000;

constexpr int kMallocTrimThreshold = 32 * 1024 * 1024;

// The text of a version-mismatch answer; its header carries the same version.
constexpr char kVersionMismatchText[] = "this node speaks protocol version 7";
static_assert(wire::kProtocolVersion == 7, "kVersionMismatchText names the protocol version");
// A full node has room again once its store is this far under --max-memory: far enough that the
// changes it refused, sent again, are not refused at once.
constexpr std::uint64_t kRoomAgainPercent = 95;
// How long an operator's tombstone of a session not held here is kept, without
// --max-session-lifetime.
constexpr std::uint64_t kUnheldEndedMs = 24 * 3600 * 1000;

// A bound socket sends no ZMTP PINGs of its own over TCP, where the connection watch drops a
// connection that goes silent instead (connection_guard.h says why); over ipc:// it cannot
// measure, and keeps them.
bool pings_only_over_ipc(void *socket, const std::string &endpoint) {
    int off = 0;
    return endpoint.rfind("tcp://", 0) != 0 ||
           zmq_setsockopt(socket, ZMQ_HEARTBEAT_IVL, &off, sizeof off) == 0;
}

// Binds `socket` to `endpoint`. An ipc:// socket file gets `ipc_mode`: it is created with the
// owner's bits alone (the umask, in this thread, where libzmq binds an ipc listener), so nobody
// else connects before the chmod that gives the group its bits.
bool bind_endpoint(void *socket, const std::string &endpoint, unsigned ipc_mode, const char *which,
                   std::string *error) {
    constexpr std::string_view kIpc = "ipc://";
    bool ipc = endpoint.compare(0, kIpc.size(), kIpc) == 0;
    mode_t umask_before = ipc ? umask(0177) : 0;
    int rc = zmq_bind(socket, endpoint.c_str());
    int bind_errno = errno;
    if (ipc) {
        umask(umask_before);
    }
    if (rc != 0) {
        *error = std::string("cannot bind ") + which + " endpoint " + endpoint + ": " +
                 zmq_strerror(bind_errno);
        return false;
    }
    std::string path = endpoint.substr(kIpc.size());
    if (ipc && chmod(path.c_str(), ipc_mode) != 0) {
        *error = std::string("cannot set the mode of ") + which + " endpoint " + endpoint + ": " +
                 std::strerror(errno);
        return false;
    }
    return true;
}

std::string last_endpoint(void *socket) {
    char buf[1100];
    std::size_t len = sizeof buf;
    if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, buf, &len) != 0 || len == 0) {
        return "";
    }
    return std::string(buf, strnlen(buf, len));
}

}  // namespace

void use_node_malloc_settings() {
    mallopt(M_TRIM_THRESHOLD, kMallocTrimThreshold);
}

NodeServer::NodeServer(const NodeConfig &config)
    : config_(config),
      store_(config.max_memory, config.max_session_lifetime_s * 1000),
      membership_(config.name, config.peers, MonotonicTime::now().ms()),
      snapshots_(store_),
      connections_(config, &counters_),
      loop_(MonotonicTime::now),
      handovers_(config.handover_wait_ms) {}

NodeServer::~NodeServer() {
    // Sockets first: zmq_ctx_term waits for every socket of its context to close.
    handshake_monitors_.clear();
    zap_.close();
    for (void *socket : peer_sockets_) {
        zmq_close(socket);
    }
    if (updates_ != nullptr) {
        zmq_close(updates_);
    }
    if (queries_ != nullptr) {
        zmq_close(queries_);
    }
    if (context_ != nullptr) {
        zmq_ctx_term(context_);
    }
}

bool NodeServer::start(std::string *error) {
    context_ = zmq_ctx_new();
    if (context_ == nullptr) {
        *error = std::string("cannot create a ZeroMQ context: ") + zmq_strerror(errno);
        return false;
    }
    updates_ = zmq_socket(context_, ZMQ_SUB);
    queries_ = zmq_socket(context_, ZMQ_ROUTER);
    int updates_hwm = kUpdatesHighWaterMark;
    int queries_hwm = kQueriesHighWaterMark;
    int mandatory = 1;
    int backlog = connections_.listen_backlog();
    // A SUB sends its subscriptions again on every (re)connect and silently drops those past its
    // send high-water mark: 1024 shard topics need more than the default 1000.
    int subscriptions_hwm = 0;
    if (updates_ == nullptr || queries_ == nullptr || !wire::set_network_options(updates_) ||
        !wire::set_network_options(queries_) || !pings_only_over_ipc(updates_, config_.updates) ||
        !pings_only_over_ipc(queries_, config_.queries) ||
        zmq_setsockopt(updates_, ZMQ_BACKLOG, &backlog, sizeof backlog) != 0 ||
        zmq_setsockopt(queries_, ZMQ_BACKLOG, &backlog, sizeof backlog) != 0 ||
        zmq_setsockopt(updates_, ZMQ_RCVHWM, &updates_hwm, sizeof updates_hwm) != 0 ||
        zmq_setsockopt(updates_, ZMQ_SNDHWM, &subscriptions_hwm, sizeof subscriptions_hwm) != 0 ||
        zmq_setsockopt(queries_, ZMQ_RCVHWM, &queries_hwm, sizeof queries_hwm) != 0 ||
        zmq_setsockopt(queries_, ZMQ_SNDHWM, &queries_hwm, sizeof queries_hwm) != 0 ||
        // A reply to a requester that is gone or full fails at once instead of blocking.
        zmq_setsockopt(queries_, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory) != 0) {
        *error = std::string("cannot set up sockets: ") + zmq_strerror(errno);
        return false;
    }
    if (!secure_sockets(error)) {
        return false;
    }
    // A node without peers owns every shard at once, and subscribes before binding: no update
    // that arrives can find it deaf. A node with peers waits for them (see tick).
    MonotonicTime mono = MonotonicTime::now();
    if (membership_.settled(mono.ms())) {
        update_ownership(mono);
    }
    if (!bind_endpoint(updates_, config_.updates, config_.ipc_mode, "updates", error) ||
        !bind_endpoint(queries_, config_.queries, config_.ipc_mode, "queries", error)) {
        return false;
    }
    updates_endpoint_ = last_endpoint(updates_);
    queries_endpoint_ = last_endpoint(queries_);
    if (!config_.metrics.empty() && !metrics_.start(config_.metrics, error)) {
        return false;
    }
    for (const auto &endpoint : config_.peers) {
        void *socket = zmq_socket(context_, ZMQ_DEALER);
        int hwm = 100;
        int immediate = 1;  // no pings queued for a peer that is not there
        if (socket == nullptr || !wire::set_network_options(socket) ||
            zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
            zmq_setsockopt(socket, ZMQ_IMMEDIATE, &immediate, sizeof immediate) != 0 ||
            // The nodes of a bank share its key pair, and admit it as a client.
            (keys_.enabled() &&
             !wire::make_curve_client(
                 socket,
                 wire::CurveClientKeys{keys_.public_key, keys_.public_key, keys_.secret})) ||
            !watch_handshakes(socket, false, error) || zmq_connect(socket, endpoint.c_str()) != 0) {
            *error = "cannot connect to peer " + endpoint + ": " +
                     (error->empty() ? zmq_strerror(errno) : *error);
            if (socket != nullptr) {
                zmq_close(socket);
            }
            return false;
        }
        peer_sockets_.push_back(socket);
    }
    started_ = MonotonicTime::now();
    std::string security = keys_.enabled() ? "CURVE, " + std::to_string(keys_.clients.size()) +
                                                 " client key(s) from " + config_.curve_clients
                                           : "plain text (no CURVE)";
    RSS_LOG(LogLevel::kInfo,
            "RN0101: rss_node %s started: updates %s, queries %s, %zu peer(s), %s, "
            "max memory %llu bytes (0: none), protocol version %u, %s, metrics %s",
            config_.name.c_str(), updates_endpoint_.c_str(), queries_endpoint_.c_str(),
            peer_sockets_.size(),
            ownership_decided_ ? "every shard owned" : "shards owned once the peers answer",
            static_cast<unsigned long long>(config_.max_memory), unsigned{wire::kProtocolVersion},
            security.c_str(),
            metrics_.running()
                ? ("on port " + std::to_string(metrics_.port()) + " (/metrics)").c_str()
                : "off");
    return true;
}

bool NodeServer::secure_sockets(std::string *error) {
    if (!load_node_keys(config_, &keys_, error)) {
        return false;
    }
    if (keys_.enabled()) {
        // The handler must be there before the first handshake: with domain enforcement, a
        // CURVE socket refuses everyone when no handler answers.
        if (!zap_.start(context_, keys_, config_.curve_clients, error)) {
            return false;
        }
        if (!wire::make_curve_server(updates_, keys_.secret) ||
            !wire::make_curve_server(queries_, keys_.secret)) {
            *error = std::string("cannot set up CURVE: ") + zmq_strerror(errno);
            return false;
        }
    }
    return watch_handshakes(updates_, true, error, ConnectionWatch::kUpdatesSocket) &&
           watch_handshakes(queries_, true, error, ConnectionWatch::kQueriesSocket);
}

bool NodeServer::watch_handshakes(void *socket, bool curve_server, std::string *error,
                                  int guarded) {
    auto monitor = std::make_unique<wire::HandshakeMonitor>();
    if (!monitor->attach(context_, socket, curve_server, keys_.enabled(),
                         "--curve-secret and --curve-clients", error, guarded >= 0)) {
        return false;
    }
    handshake_monitors_.push_back(std::move(monitor));
    monitor_guarded_.push_back(guarded);
    return true;
}

// Reports the handshake events waiting and passes the connection events on, until none is left:
// the monitor's descriptor turns readable again only after that.
void NodeServer::drain_monitor(wire::HandshakeMonitor *monitor, int guarded) {
    using Kind = wire::HandshakeMonitor::ConnectionEvent::Kind;
    std::string report;
    wire::HandshakeMonitor::ConnectionEvent event;
    std::vector<wire::HandshakeMonitor::ConnectionEvent> events;
    while (monitor->next(mono_, &report, &event)) {
        if (event.kind == Kind::kHandshakeFailed && connections_.explains_failed_handshake(mono_)) {
            continue;
        }
        if (!report.empty()) {
            RSS_LOG(LogLevel::kWarn, "RN0401: %s", report.c_str());
        }
        if (event.kind == Kind::kAccepted || event.kind == Kind::kClosed) {
            events.push_back(event);
        }
    }
    if (guarded >= 0 && !events.empty()) {
        connections_.on_events(static_cast<std::size_t>(guarded), events, mono_);
    }
}

void NodeServer::reload_clients() {
    if (!keys_.enabled()) {
        RSS_LOG(LogLevel::kInfo, "RN0106: SIGHUP: nothing to reload (no curve-clients file)");
        return;
    }
    std::string error;
    if (zap_.reload(&error)) {
        RSS_LOG(LogLevel::kInfo, "RN0107: SIGHUP: %zu CURVE client key(s) admitted from %s",
                zap_.clients_listed(), config_.curve_clients.c_str());
    } else {
        RSS_LOG(LogLevel::kError, "RN0108: SIGHUP: %s; the %zu key(s) read before stay in force",
                error.c_str(), zap_.clients_listed());
    }
}

void NodeServer::update_ownership(MonotonicTime mono) {
    std::vector<std::string> live = membership_.live_members();
    if (!ownership_decided_) {
        // What the bank looked like before this node joined it: who held the shards it takes.
        previous_members_.clear();
        for (const auto &m : live) {
            if (m != config_.name) {
                previous_members_.push_back(m);
            }
        }
    }
    wire::ShardSet owned = owned_shards(config_.name, live, config_.replicas);
    OwnershipChange change = ownership_change(owned_, owned);
    // Subscribe before asking for snapshots and re-sends (zguide Clone pattern): what is
    // published meanwhile arrives here, and the highest version wins.
    for (std::uint32_t shard = 0; shard < wire::kShardCount; ++shard) {
        std::string topic = wire::topic_for_shard(shard);
        if (change.gained.contains(shard)) {
            zmq_setsockopt(updates_, ZMQ_SUBSCRIBE, topic.data(), topic.size());
            drop_lost_at_[shard] = MonotonicTime();
        } else if (change.lost.contains(shard)) {
            zmq_setsockopt(updates_, ZMQ_UNSUBSCRIBE, topic.data(), topic.size());
            drop_lost_at_[shard] = mono + milliseconds(kLostShardLingerMs);
        }
    }
    owned_ = owned;
    catch_up_.on_ownership(membership_.peers(), owned_);
    // A shard's stream starts again at the next message: what came before a gain is re-sent.
    agents_.forget_shards(change.gained);
    agents_.forget_shards(change.lost);
    if (!change.gained.empty()) {
        agents_.request_resend(change.gained);
        fills_.ask(snapshot_sources(change.gained, config_.name, previous_members_, live,
                                    config_.replicas),
                   membership_.peers(), &next_request_id_);
    }
    if (ownership_decided_ || !membership_.peers().empty()) {
        std::string names;
        for (const auto &m : live) {
            names += (names.empty() ? "" : ", ") + m;
        }
        RSS_LOG(LogLevel::kInfo,
                "RN0201: membership: %zu live (%s); %zu shard(s) owned, %zu gained, %zu lost; "
                "%zu snapshot(s) to ask of peers",
                live.size(), names.c_str(), owned_.count(), change.gained.count(),
                change.lost.count(), fills_.size());
    }
    counters_.ownership_changes++;
    previous_members_ = std::move(live);
    ownership_decided_ = true;
    send_snapshot_requests(mono);
}

// A peer up again after this node counted it down is offered the shards it owned meanwhile; an
// offer its socket did not take goes in a later turn.
void NodeServer::send_catch_up_offers() {
    const auto &peers = membership_.peers();
    for (std::size_t i = 0; i < peers.size(); ++i) {
        const wire::ShardSet &shards = catch_up_.offer_for(i);
        if (shards.empty() || peers[i].state != PeerState::kUp) {
            continue;
        }
        if (!wire::send_frames(
                peer_sockets_[i], nullptr,
                wire::encode_message(wire::CatchUpOffer{next_request_id_++, shards, config_.name}),
                ZMQ_DONTWAIT)) {
            continue;
        }
        counters_.catch_up_offers_sent++;
        RSS_LOG(LogLevel::kInfo,
                "RN0208: peer %s is back after this node counted it down: offered it the %zu "
                "shard(s) owned here meanwhile",
                peers[i].name.c_str(), shards.count());
        catch_up_.offer_sent(i);
    }
}

void NodeServer::on_catch_up_offer(const wire::CatchUpOffer &offer) {
    counters_.catch_up_offers_received++;
    if (catch_up_.offered(membership_.peers(), offer.node_name, offer.shards)) {
        fill_offered_shards(mono_);
        return;
    }
    std::uint64_t suppressed = 0;
    if (unknown_offer_log_.admit(mono_.ms(), &suppressed)) {
        RSS_LOG(LogLevel::kWarn,
                "RN0210: ignored an offer of %zu shard(s) from \"%.*s\", which is no peer of this "
                "node (%llu since the last line)",
                offer.shards.count(), static_cast<int>(offer.node_name.size()),
                offer.node_name.data(), static_cast<unsigned long long>(suppressed + 1));
    }
}

// The offered shards this node owns are filled from the peer that offered them, as gained ones:
// until the snapshot ends, fetches are answered provisionally and the highest version wins.
void NodeServer::fill_offered_shards(MonotonicTime mono) {
    std::map<std::string, wire::ShardSet> due =
        catch_up_.fills_due(membership_.peers(), owned_, fills_.shards());
    if (due.empty()) {
        return;
    }
    for (const auto &[name, shards] : due) {
        RSS_LOG(LogLevel::kInfo,
                "RN0209: peer %s held %zu shard(s) of this node's while it was counted down: "
                "filling them from its snapshot",
                name.c_str(), shards.count());
    }
    fills_.ask(due, membership_.peers(), &next_request_id_);
    send_snapshot_requests(mono);
}

void NodeServer::send_snapshot_requests(MonotonicTime mono) {
    counters_.snapshots_requested +=
        fills_.send_due(mono.ms(), [this](std::size_t peer, const wire::SnapshotRequest &request) {
            return wire::send_frames(peer_sockets_[peer], nullptr, wire::encode_message(request),
                                     ZMQ_DONTWAIT);
        });
}

void NodeServer::on_snapshot_record(const wire::SnapshotRecord &snapshot, WallTime now,
                                    MonotonicTime mono) {
    if (!fills_.accept(snapshot, owned_, mono.ms())) {
        return;
    }
    // Like an update: the highest version wins, so a version never moves backwards.
    const char *implausible = nullptr;
    ApplyOutcome outcome = store_.apply(snapshot.record, now.ms(), &implausible);
    if (outcome.result == ApplyResult::kApplied) {
        counters_.snapshot_records_applied++;
        copied_from_peers_.add(wire::shard_of(snapshot.record.key));
    } else if (outcome.result == ApplyResult::kNoMemory) {
        refused_for_memory();
    } else if (outcome.result == ApplyResult::kImplausible) {
        refused_implausible(snapshot.record, implausible, "a peer's snapshot");
    }
}

void NodeServer::forget_fills(MonotonicTime mono) {
    if (fills_.size() == 0) {
        return;  // the usual case, in every turn
    }
    wire::ShardSet resend = fills_.give_up(membership_.peers(), mono.ms());
    if (!resend.empty()) {
        agents_.request_resend(resend);
    }
}

wire::ShardSet NodeServer::short_shards() const {
    if (membership_.live_members().size() < config_.replicas) {
        return wire::ShardSet::all();
    }
    // This node's copy of a shard it is still filling is not a copy yet.
    return fills_.shards();
}

void NodeServer::watch_events() {
    loop_.set_after_poll([this](MonotonicTime mono) { begin_turn(mono); });
    loop_.watch_socket(updates_, [this] { drain_updates(now_); });
    loop_.watch_socket(queries_, [this] { drain_queries(now_); });
    for (std::size_t i = 0; i < peer_sockets_.size(); ++i) {
        loop_.watch_socket(peer_sockets_[i], [this, i] { drain_peer(i, now_, mono_); });
    }
    // Handshake events and ZAP requests only need to wake the loop. Their descriptors are polled
    // as such, so that zmq_poll does not check each of these sockets on every pass (a quarter of
    // the node's system calls per wake-up); readable means drain them.
    for (std::size_t i = 0; i < handshake_monitors_.size(); ++i) {
        wire::HandshakeMonitor *m = handshake_monitors_[i].get();
        int guarded = monitor_guarded_[i];
        loop_.watch_descriptor(m->fd(), [this, m, guarded] { drain_monitor(m, guarded); });
    }
    if (zap_.fd() >= 0) {
        loop_.watch_descriptor(zap_.fd(), [this] { zap_.answer(mono_.ms()); });
    }
    // Each due at once, in the first turn.
    loop_.add_timer(MonotonicTime(), kSweepIntervalMs, [this] { sweep(); });
    loop_.add_timer(MonotonicTime(), ConnectionWatch::kCheckIntervalMs,
                    [this] { connections_.check(mono_, loop_.late()); });
    ping_timer_ = loop_.add_timer(MonotonicTime(), 0, [this] { ping_peers(); });
    loop_.add_timer(MonotonicTime(), kAgentCheckIntervalMs,
                    [this] { agents_.forget_idle(mono_.ms(), kAgentIdleMs); });
    handover_timer_ = loop_.add_timer(MonotonicTime(), 0, [this] { expire_handovers(); });
    if (metrics_.running()) {
        loop_.add_timer(MonotonicTime(), kMetricsIntervalMs, [this] {
            metrics_.publish(node_metrics(node_status(), resident_bytes()));
        });
    }
}

void NodeServer::run(const volatile std::sig_atomic_t *stop, volatile std::sig_atomic_t *reload) {
    watch_events();
    while (!*stop) {
        if (*reload) {
            *reload = 0;
            reload_clients();
        }
        // A snapshot in progress wants the next turn soon; one whose requester is behind, a
        // little later. Otherwise the timers say, and end_turn's checks run at least every
        // kSweepIntervalMs.
        std::uint64_t max_wait_ms = snapshots_.idle()      ? kSweepIntervalMs
                                    : snapshots_.blocked() ? 1
                                                           : 0;
        if (!loop_.run_once(max_wait_ms)) {
            if (errno == EINTR) {
                continue;
            }
            RSS_LOG(LogLevel::kError, "RN0104: zmq_poll failed: %s", zmq_strerror(errno));
            break;
        }
        advance_snapshots(now_);
        end_turn();
    }
    RSS_LOG(LogLevel::kInfo,
            "RN0102: rss_node %s stopping: %llu sessions, %llu updates applied, %llu refused, "
            "%llu malformed",
            config_.name.c_str(), static_cast<unsigned long long>(store_.live_sessions()),
            static_cast<unsigned long long>(counters_.updates_applied),
            static_cast<unsigned long long>(counters_.updates_refused()),
            static_cast<unsigned long long>(counters_.malformed_frames));
}

// The poll has returned: the turn's times, and a stall of the node itself noticed before any
// pong is taken in.
void NodeServer::begin_turn(MonotonicTime mono) {
    now_ = WallTime::now();
    mono_ = mono;
    std::uint64_t late_ms = static_cast<std::uint64_t>(loop_.late() / milliseconds(1));
    if (late_ms > kStallMs) {
        RSS_LOG(LogLevel::kWarn, "RN0105: this node did not run for %llu ms (stopped?)",
                static_cast<unsigned long long>(late_ms));
        membership_.excuse_stall(late_ms);
    }
}

// An operator ends a session or all (rss_node end-session): tombstones in a new term here
// (session_ending.h), then every web server's agent is told, at once or at its next heartbeat:
// any of them may hold a copy it would serve.
wire::EndSessionReply NodeServer::end_sessions(const wire::EndSession &request, WallTime now) {
    std::uint64_t unheld_lifetime_ms =
        config_.max_session_lifetime_s > 0 ? config_.max_session_lifetime_s * 1000 : kUnheldEndedMs;
    EndedSessions ended =
        node::end_sessions(request, owned_, now.ms(), unheld_lifetime_ms, &store_);
    counters_.sessions_ended += ended.count;
    bool all = request.scope == wire::EndScope::kAll;
    // Every session: the web servers are told by each owner, whatever it held (a server may hold
    // sessions this node lacks, after its restart).
    if (all && ended.outcome != wire::EndSessionOutcome::kNotOwner) {
        agents_.end_all_sessions();
    } else if (!all && ended.count > 0) {
        agents_.add_refusal_for_all(wire::Refusal{request.key, ended.version});
    }
    // One session: its first 6 characters, as the module logs them (enough to correlate, too
    // little to use).
    std::string what =
        all ? std::string("every session")
            : "session " + wire::format_session_key(request.key).substr(0, 6) + "...";
    if (ended.outcome == wire::EndSessionOutcome::kEnded) {
        RSS_LOG(LogLevel::kInfo, "RN0307: an operator ended %s (%llu tombstone(s) stored here)",
                what.c_str(), static_cast<unsigned long long>(ended.count));
    } else if (ended.outcome == wire::EndSessionOutcome::kRefused) {
        RSS_LOG(LogLevel::kError,
                "RN0308: an operator's end of %s was not stored in full: the store is full "
                "(%llu ended); run the command again once it has room",
                what.c_str(), static_cast<unsigned long long>(ended.count));
    }
    return wire::EndSessionReply{request.request_id, ended.outcome, ended.count};
}

void NodeServer::drain_updates(WallTime now) {
    wire::ReceivedMessage message;
    for (int i = 0; i < kUpdatesPerTurn && message.receive(updates_, ZMQ_DONTWAIT); ++i) {
        connections_.on_delivered(message.source_fd(), message.wire_bytes(keys_.enabled(), false));
        if (message.overflow()) {
            malformed("updates", wire::decode_fail(wire::DecodeError::kFrameCount,
                                                   "published message: not one frame"));
            continue;
        }
        handle_published(message.frames(), message.size(), now);
    }
}

void NodeServer::handle_published(const std::string_view *frames, std::size_t count, WallTime now) {
    wire::Published published;
    wire::DecodeResult result = wire::decode_published(wire::FrameSpan(frames, count), &published);
    if (!result.ok()) {
        if (result.error == wire::DecodeError::kVersionMismatch) {
            counters_.version_mismatches++;
        }
        malformed("updates", result);
        return;
    }
    const char *implausible = nullptr;
    ApplyOutcome outcome = store_.apply(published.record, now.ms(), &implausible);
    std::uint32_t shard = wire::shard_of(published.record.key);
    switch (outcome.result) {
        case ApplyResult::kApplied:
            counters_.updates_applied++;
            if (!outcome.replaced_origin.empty()) {
                // A failover, or a conflict this version won: the server that made the replaced
                // version must not serve it again.
                agents_.add_refusal_for_server(
                    outcome.replaced_origin,
                    wire::Refusal{published.record.key, published.record.version});
            }
            break;
        case ApplyResult::kDuplicate:
            counters_.updates_duplicate++;
            break;
        case ApplyResult::kStale:
            counters_.refused_stale++;
            if (outcome.newer_from_other_origin) {
                agents_.add_refusal(published.sender.agent_id,
                                    wire::Refusal{published.record.key, outcome.held_version});
            }
            break;
        case ApplyResult::kExpired:
            counters_.expired_on_arrival++;
            break;
        case ApplyResult::kNoMemory:
            // Not stored, so not received: the agent keeps it unacknowledged.
            refused_for_memory();
            agents_.on_refused(published.sender, shard, mono_.ms());
            return;
        case ApplyResult::kImplausible:
            refused_implausible(published.record, implausible, "an update");
            agents_.on_refused(published.sender, shard, mono_.ms());
            return;
    }
    if (outcome.conflict) {
        count_conflict(published.record, outcome);
    }
    agents_.on_published(published.sender, shard, mono_.ms());
}

void NodeServer::refused_for_memory() {
    counters_.refused_memory++;
    full_ = true;
    std::uint64_t suppressed = 0;
    if (memory_log_.admit(mono_.ms(), &suppressed)) {
        RSS_LOG(
            LogLevel::kWarn,
            "RN0302: memory limit of %llu bytes reached: refusing new sessions and larger versions "
            "(%llu refused so far); the web servers keep them unacknowledged until there is "
            "room (raise --max-memory or add nodes)",
            static_cast<unsigned long long>(store_.max_memory()),
            static_cast<unsigned long long>(counters_.refused_memory));
    }
}

void NodeServer::leave_full_when_room() {
    if (full_ && store_.bytes() * 100 <= store_.max_memory() * kRoomAgainPercent) {
        full_ = false;
        RSS_LOG(LogLevel::kInfo,
                "RN0303: room again: %llu of %llu bytes used; the web servers send again what was "
                "refused",
                static_cast<unsigned long long>(store_.bytes()),
                static_cast<unsigned long long>(store_.max_memory()));
    }
}

// The session's ID stays out of the log: it is the user's credential.
void NodeServer::refused_implausible(const wire::SessionRecord &record, const char *why,
                                     const char *what) {
    counters_.refused_implausible++;
    std::uint64_t suppressed = 0;
    if (implausible_log_.admit(mono_.ms(), &suppressed)) {
        RSS_LOG(LogLevel::kWarn,
                "RN0301: refused %s from %.*s (version %llu, expiry %llu): %s (%llu refused so "
                "far, %llu since the last line)",
                what, static_cast<int>(record.origin.size()), record.origin.data(),
                static_cast<unsigned long long>(record.version),
                static_cast<unsigned long long>(record.expires_at_ms), why,
                static_cast<unsigned long long>(counters_.refused_implausible),
                static_cast<unsigned long long>(suppressed + 1));
    }
}

void NodeServer::count_conflict(const wire::SessionRecord &record, const ApplyOutcome &outcome) {
    counters_.conflicts++;
    std::uint64_t suppressed = 0;
    if (!conflict_log_.admit(mono_.ms(), &suppressed)) {
        return;
    }
    if (outcome.result == ApplyResult::kApplied) {
        RSS_LOG(LogLevel::kWarn,
                "RN0304: conflict: version %llu of a session was made by %.*s and by %s; %.*s's "
                "wins, as "
                "on every node (%llu conflicts in all)",
                static_cast<unsigned long long>(record.version),
                static_cast<int>(record.origin.size()), record.origin.data(),
                outcome.replaced_origin.c_str(), static_cast<int>(record.origin.size()),
                record.origin.data(), static_cast<unsigned long long>(counters_.conflicts));
    } else {
        RSS_LOG(LogLevel::kWarn,
                "RN0305: conflict: version %llu of a session made by %.*s is refused: another web "
                "server's copy of that version wins, as on every node (%llu conflicts in all)",
                static_cast<unsigned long long>(record.version),
                static_cast<int>(record.origin.size()), record.origin.data(),
                static_cast<unsigned long long>(counters_.conflicts));
    }
}

void NodeServer::drain_queries(WallTime now) {
    wire::ReceivedMessage message;
    for (int i = 0; i < kQueriesPerTurn && message.receive(queries_, ZMQ_DONTWAIT); ++i) {
        connections_.on_delivered(message.source_fd(), message.wire_bytes(keys_.enabled(), true));
        if (message.overflow()) {
            malformed("queries", wire::decode_fail(wire::DecodeError::kFrameCount,
                                                   "request: more than 2 frames"));
            continue;
        }
        handle_query(message.frames(), message.size(), now);
    }
}

void NodeServer::handle_query(const std::string_view *frames, std::size_t count, WallTime now) {
    // frames[0] is the ROUTER's routing identity of the requester.
    std::string routing_id(frames[0]);
    wire::Message message;
    wire::DecodeResult result =
        wire::decode_message(wire::FrameSpan(frames + 1, count - 1), &message);
    if (!result.ok()) {
        malformed("queries", result);
        wire::ErrorReply error;
        if (result.error == wire::DecodeError::kVersionMismatch) {
            counters_.version_mismatches++;
            error.code = wire::ErrorCode::kVersionMismatch;
            error.text = kVersionMismatchText;
        } else {
            error.code = wire::ErrorCode::kMalformed;
            error.text = result.message;
        }
        reply(routing_id, error);
        return;
    }
    if (auto *fetch = std::get_if<wire::Fetch>(&message)) {
        counters_.fetches++;
        if (hold_for_handover(routing_id, *fetch, now)) {
            // Said at once, so that the web server waits for this answer rather than take
            // another owner's older copy, as it would from an owner that is hung.
            wire::FetchReply asking;  // an owner's, with no record
            asking.request_id = fetch->request_id;
            asking.asking = true;
            reply(routing_id, asking);
        } else {
            answer_fetch(routing_id, fetch->request_id, fetch->key, now);
        }
    } else if (auto *handover = std::get_if<wire::HandoverReply>(&message)) {
        on_handover_reply(routing_id, *handover, now);
    } else if (auto *heartbeat = std::get_if<wire::Heartbeat>(&message)) {
        answer_heartbeat(routing_id, *heartbeat);
    } else if (auto *end = std::get_if<wire::EndSession>(&message)) {
        if (end_session_rate_.admit(end->scope, mono_.ms())) {
            reply(routing_id, end_sessions(*end, now));
        } else {
            counters_.end_sessions_refused++;
            std::uint64_t suppressed = 0;
            if (end_session_log_.admit(mono_.ms(), &suppressed)) {
                RSS_LOG(LogLevel::kWarn,
                        "RN0309: answered an end-session request busy: at most 1000 ends of one "
                        "session a second and one of every session each 10 s (%llu refused so "
                        "far, %llu since the last line)",
                        static_cast<unsigned long long>(counters_.end_sessions_refused),
                        static_cast<unsigned long long>(suppressed + 1));
            }
            reply(routing_id,
                  wire::ErrorReply{end->request_id, wire::ErrorCode::kBusy,
                                   end->scope == wire::EndScope::kAll
                                       ? "busy: one end of every session each 10 s; ask again"
                                       : "busy: at most 1000 ends of one session a second; ask "
                                         "again"});
        }
    } else if (auto *request = std::get_if<wire::SnapshotRequest>(&message)) {
        if (!snapshots_.start(routing_id, *request)) {
            reply(routing_id, wire::ErrorReply{request->request_id, wire::ErrorCode::kBusy,
                                               "too many snapshots in progress"});
            return;
        }
    } else if (auto *status = std::get_if<wire::StatusRequest>(&message)) {
        std::string json = status_json();
        reply(routing_id, wire::StatusReply{status->request_id, json});
    } else if (auto *ping = std::get_if<wire::Ping>(&message)) {
        reply(routing_id, wire::Pong{ping->request_id, config_.name});
    } else if (auto *offer = std::get_if<wire::CatchUpOffer>(&message)) {
        on_catch_up_offer(*offer);
    } else if (std::get_if<wire::Restarting>(&message) != nullptr) {
        std::string_view server = agents_.on_restarting(routing_id, mono_.ms());
        if (!server.empty()) {
            RSS_LOG(LogLevel::kInfo,
                    "RN0312: web server %.*s restarts: a fetch that would ask it for a handover "
                    "waits for its next agent (at most %llu ms)",
                    static_cast<int>(server.size()), server.data(),
                    static_cast<unsigned long long>(AgentTracker::kRestartWaitMs));
        }
    } else {
        malformed("queries", wire::decode_fail(wire::DecodeError::kUnexpectedType,
                                               "request: a reply type sent to a node"));
        wire::ErrorReply error;
        error.code = wire::ErrorCode::kUnsupported;
        error.text =
            "a node answers fetch, heartbeat, snapshot-request, status-request, ping, end-session, "
            "handover-reply, catch-up-offer, restarting";
        reply(routing_id, error);
    }
}

void NodeServer::answer_fetch(const std::string &routing_id, std::uint64_t request_id,
                              const wire::SessionKey &key, WallTime now) {
    wire::FetchReply answer;
    answer.request_id = request_id;
    answer.owner = owned_.contains(wire::shard_of(key));
    // Not here yet, or here at an older version, may mean not copied yet: the asker is to ask
    // the rest of the bank too. So for a node that counts every peer down: it may be the one cut
    // off, reached by a web server before by its peers once the cut heals, while they took its
    // shards and every change since (the fault campaign, s90k: node-1, alone by its own count
    // for 4 s, vouched for a copy 63 changes old).
    bool filling = fills_.filling(wire::shard_of(key));
    answer.provisional = answer.owner && (filling || membership_.cut_off());
    const char *why_provisional = filling ? "being filled" : "every peer counted down";
    // For the log: the servers that may hold a newer copy, and when this node last heard from
    // each.
    std::string newer_heard;
    const AgentTracker::Agent *asker = agents_.find_by_routing_id(routing_id);
    if (store_.find(key, now.ms(), &answer.record)) {
        counters_.fetch_hits++;
        answer.status =
            answer.record.tombstone ? wire::FetchStatus::kDeleted : wire::FetchStatus::kFound;
        // Before this fetch is noted as a take-over: the servers to ask are those that took the
        // session over before it, if any, and the one that made the copy.
        NewerHolders newer_at;
        if (answer.owner && asker != nullptr && !answer.record.tombstone) {
            newer_at = may_have_newer(key, answer.record, asker->server_name);
        }
        bool newer_may_be_out = false, newer_not_handed_over = false;
        for (std::string_view server : newer_at) {
            newer_may_be_out = newer_may_be_out || silent_lately(server);
            newer_not_handed_over =
                newer_not_handed_over || handover_given_up(key, answer.record.version, server);
        }
        if (log_enabled(LogLevel::kDebug)) {
            newer_heard = newer_holders_heard(newer_at);  // the views are the note's, below
        }
        if (asker != nullptr && !answer.record.tombstone) {
            takeovers_.note(key, asker->server_name, answer.record.version, mono_.ms());
        }
        // Nor can a node just started vouch for a copy another server made, to a third server,
        // where it has not heard from that server's agent yet (it could not ask it for a newer
        // one: a handover; the fault campaign, seed 61: a node 145 ms old answered from its
        // fresh snapshot, 4 changes behind the server's), or copied the session's shard from a
        // peer (it did not see which server took the session over lately, recent_takeovers.h,
        // while the other owners may have and be asking that server; seed 80: a node 0.3 s old
        // vouched for a copy that a server which had just taken the session over had changed).
        bool just_started_other_origin =
            mono_ - started_ < milliseconds(kAgentsHeardWithinMs) && !answer.record.tombstone &&
            (asker == nullptr || asker->server_name != answer.record.origin);
        bool cannot_vouch_yet =
            just_started_other_origin &&
            (copied_from_peers_.contains(wire::shard_of(key)) ||
             agents_.reachable_agent_of_server(answer.record.origin, mono_.ms(),
                                               kHandoverReachableMs) == nullptr);
        if (!answer.provisional && answer.owner && cannot_vouch_yet) {
            answer.provisional = true;
            why_provisional = "just started, a copy of another server";
        } else if (!answer.provisional && newer_may_be_out) {
            answer.provisional = true;
            why_provisional = "a server that may hold a newer copy was silent lately";
        } else if (!answer.provisional && newer_not_handed_over) {
            answer.provisional = true;
            why_provisional = "a server that may hold a newer copy left its handover unanswered";
        }
    } else {
        answer.status = wire::FetchStatus::kNotFound;
        answer.record = wire::SessionRecord{};
        // Nor can a node just started vouch that it lacks a session: its first snapshot may come
        // from a peer that lacked it too, the copies a peer held for it while it was counted down
        // (a catch-up offer) and the web servers' re-sends a moment later (s103-90: node-2, 170 ms
        // old, said as owner that it had no such session, and a misroute was answered from a
        // former owner's older copy; the catch-up offer brought the session 50 ms later).
        if (!answer.provisional && answer.owner &&
            mono_ - started_ < milliseconds(kAgentsHeardWithinMs)) {
            answer.provisional = true;
            why_provisional = "just started, the session may not have reached it yet";
        }
    }
    if (log_enabled(LogLevel::kDebug)) {
        log_fetch_answer(key, asker, answer, why_provisional, newer_heard);
    }
    reply(routing_id, answer);
}

// RN0501 (debug): what a fetch was answered and why, so that a fault campaign's rollback can be
// traced to the answers it was taken from.
void NodeServer::log_fetch_answer(const wire::SessionKey &key, const AgentTracker::Agent *asker,
                                  const wire::FetchReply &answer, const char *why_provisional,
                                  const std::string &newer_heard) const {
    std::string_view by = asker != nullptr ? std::string_view(asker->server_name) : "an operator";
    char held[320] = "not found";
    if (answer.status != wire::FetchStatus::kNotFound) {
        std::snprintf(held, sizeof held, "%s version %llu.%llu made by %.*s",
                      answer.record.tombstone ? "ended at" : "found",
                      static_cast<unsigned long long>(wire::version_term(answer.record.version)),
                      static_cast<unsigned long long>(wire::version_count(answer.record.version)),
                      static_cast<int>(answer.record.origin.size()), answer.record.origin.data());
    }
    RSS_LOG(LogLevel::kDebug, "RN0501: fetch of session %.6s... by %.*s: %s, %s%s%s%s",
            wire::format_session_key(key).c_str(), static_cast<int>(by.size()), by.data(), held,
            answer.owner ? "owner" : "no owner",
            answer.provisional ? ", provisional: " : ", vouched",
            answer.provisional ? why_provisional : "", newer_heard.c_str());
}

// For RN0501: "; web-b, which may hold a newer copy, last heard from 12 ms ago", for each.
std::string NodeServer::newer_holders_heard(const NewerHolders &servers) const {
    std::string text;
    for (std::string_view server : servers) {
        if (server.empty()) {
            continue;
        }
        const AgentTracker::Agent *heard = agents_.reachable_agent_of_server(
            server, mono_.ms(), std::numeric_limits<std::uint64_t>::max());
        char line[320];
        if (heard == nullptr) {
            std::snprintf(line, sizeof line, "; %.*s, which may hold a newer copy, not heard from",
                          static_cast<int>(server.size()), server.data());
        } else {
            std::snprintf(line, sizeof line,
                          "; %.*s, which may hold a newer copy, last heard from %lld ms ago",
                          static_cast<int>(server.size()), server.data(),
                          static_cast<long long>(mono_.ms() - heard->last_heartbeat_mono_ms));
        }
        text += line;
    }
    return text;
}

// The servers that took the session over last, at the version held here, may have changed it
// since (recent_takeovers.h); so may the one that made this version, where the take-over did not
// reach it in time (the fault campaign, s104-97, under packet loss: web-1 took a session over from
// web-3's copy, web-3, not told, went on with it, and a third server's fetch asked web-1 alone).
// None is the asker.
NodeServer::NewerHolders NodeServer::may_have_newer(const wire::SessionKey &key,
                                                    const wire::SessionRecord &held,
                                                    std::string_view asker) const {
    NewerHolders candidates{};
    RecentTakeovers::Takers takers = takeovers_.takers(key, held.version, mono_.ms());
    std::copy(takers.begin(), takers.end(), candidates.begin());
    candidates.back() = held.origin;
    NewerHolders servers;
    std::size_t n = 0;
    for (std::string_view server : candidates) {
        if (!server.empty() && server != asker &&
            std::find(servers.begin(), servers.begin() + n, server) == servers.begin() + n) {
            servers[n++] = server;
        }
    }
    return servers;
}

// Heard from within kServerSilentLatelyMs, and not within kHandoverReachableMs.
bool NodeServer::silent_lately(std::string_view server_name) const {
    return !server_name.empty() &&
           agents_.reachable_agent_of_server(server_name, mono_.ms(), kServerSilentLatelyMs) !=
               nullptr &&
           agents_.reachable_agent_of_server(server_name, mono_.ms(), kHandoverReachableMs) ==
               nullptr;
}

// In touch, but it left a handover of this version unanswered for HandoverOutcomes::kGiveUpMs:
// the node answers from its copy without vouching for it, as for a server silent lately. Its
// requests to the server may be what is lost (packet loss one way: its heartbeats still come),
// and the changes it made may have reached the other owner (the fault campaign, s108-80all:
// node-2 gave up on web-3 and vouched for a copy 15 changes behind the one node-3 held, and
// web-2, which had counted node-3 down, took it).
bool NodeServer::handover_given_up(const wire::SessionKey &key, std::uint64_t version,
                                   std::string_view server_name) const {
    if (server_name.empty()) {
        return false;
    }
    const AgentTracker::Agent *agent =
        agents_.reachable_agent_of_server(server_name, mono_.ms(), kHandoverReachableMs);
    return agent != nullptr &&
           handover_outcomes_.verdict(key, {server_name, agent->routing_id}, version, mono_.ms()) ==
               HandoverOutcomes::Verdict::kGiveUp;
}

// A web server's agent fetches a session this node owns whose newest version here another server
// made, or another server took over since (recent_takeovers.h): when such a server's agent is in
// touch, the fetch waits for its copy (handover_waits.h), and for both servers' where both may
// hold a newer one. An operator's `rss_node get` (no agent) changes nothing anywhere.
bool NodeServer::hold_for_handover(const std::string &routing_id, const wire::Fetch &fetch,
                                   WallTime now) {
    wire::SessionRecord held;
    if (config_.handover_wait_ms == 0 || !owned_.contains(wire::shard_of(fetch.key)) ||
        !store_.find(fetch.key, now.ms(), &held) || held.tombstone) {
        return false;
    }
    const AgentTracker::Agent *asker = agents_.find_by_routing_id(routing_id);
    if (asker == nullptr) {
        return false;
    }
    handover_outcomes_.fetched_by(fetch.key, asker->server_name, mono_.ms());
    NewerHolders newer_at = may_have_newer(fetch.key, held, asker->server_name);
    for (std::string_view server : newer_at) {
        if (server.empty() || !agents_.between_agents(server, mono_.ms())) {
            continue;
        }
        // Its stopping agent said it restarts, and the next one has not reached this node yet:
        // the fetch is left unanswered (the asker's 503; its next request asks the next agent).
        // Answered from here, it would miss the changes that server made since.
        counters_.handovers_held_for_restart++;
        std::uint64_t suppressed = 0;
        if (restart_wait_log_.admit(mono_.ms(), &suppressed)) {
            RSS_LOG(LogLevel::kWarn,
                    "RN0313: a fetch of a session web server %.*s made is left unanswered while "
                    "that server restarts and its next agent has not reached this node (%llu such "
                    "fetches so far, %llu since the last line)",
                    static_cast<int>(server.size()), server.data(),
                    static_cast<unsigned long long>(counters_.handovers_held_for_restart),
                    static_cast<unsigned long long>(suppressed + 1));
        }
        return true;
    }
    std::vector<std::string> to_ask;
    for (std::string_view server : newer_at) {
        const AgentTracker::Agent *origin =
            server.empty()
                ? nullptr
                : agents_.reachable_agent_of_server(server, mono_.ms(), kHandoverReachableMs);
        if (origin == nullptr) {
            continue;  // gone, or hung: what is here is the best it has
        }
        using Verdict = HandoverOutcomes::Verdict;
        switch (handover_outcomes_.verdict(fetch.key, {server, origin->routing_id}, held.version,
                                           mono_.ms())) {
            case Verdict::kAnswered:
                continue;  // it gave the session up at this version
            case Verdict::kGiveUp:
                counters_.handovers_given_up++;
                continue;  // hung for this session: what is here is the best it has
            case Verdict::kAsk:
                to_ask.push_back(origin->routing_id);
                break;
        }
    }
    if (to_ask.empty()) {
        return false;
    }
    std::uint64_t handover_id = 0;
    switch (handovers_.hold(fetch.key, to_ask, {routing_id, fetch.request_id}, mono_.ms(),
                            &handover_id)) {
        case HandoverWaits::Held::kAsk:
            for (const std::string &origin_routing_id : to_ask) {
                counters_.handovers_asked++;
                if (reply(origin_routing_id,
                          wire::Handover{handover_id, fetch.key, held.version})) {
                    continue;
                }
                // Its connection is gone (the server died): nothing to wait for from it.
                wire::SessionKey key;
                HandoverWaits::Wait unsent;
                if (handovers_.answered(origin_routing_id, handover_id, &key, &unsent) ==
                    HandoverWaits::Answer::kEnded) {
                    return false;  // nobody left to wait for: what is here is the best it has
                }
            }
            arm_handover_timer();
            return true;
        case HandoverWaits::Held::kJoined:
            return true;
        case HandoverWaits::Held::kFull:
            break;
    }
    counters_.handovers_skipped++;
    std::uint64_t suppressed = 0;
    if (handover_skipped_log_.admit(mono_.ms(), &suppressed)) {
        RSS_LOG(LogLevel::kWarn,
                "RN0311: a fetch of a session another server made was answered without asking "
                "that server for a newer copy: %zu handovers wait already (%llu such fetches so "
                "far, %llu since the last line)",
                handovers_.size(), static_cast<unsigned long long>(counters_.handovers_skipped),
                static_cast<unsigned long long>(suppressed + 1));
    }
    return false;
}

// A server in touch that did not answer a handover in time (slow, its answer lost, or hung a
// moment ago) may well hold changes the bank lacks: the fetches held for it are left unanswered,
// so the web server that asked answers 503 (no owner answered by its deadline) and asks again
// with the next request, rather than take the session over from this node's older copy (the
// fault campaign: seeds 52, 55 and 80, under packet loss or added latency). A late answer is
// still stored (on_handover_reply). Once the server has been silent kHandoverReachableMs it is
// taken for hung or gone, is not asked, and fetches are answered from this node's copy; so they
// are once it has left one version of the session unanswered that long (handover_outcomes.h).
void NodeServer::handover_unanswered(std::size_t fetches_held) {
    counters_.handovers_unanswered++;
    std::uint64_t suppressed = 0;
    if (handover_unanswered_log_.admit(mono_.ms(), &suppressed)) {
        RSS_LOG(LogLevel::kWarn,
                "RN0310: a server that made or took over a session did not answer a handover in "
                "%llu ms (slow, cut off or hung): %zu fetch(es) of it by another server left "
                "unanswered "
                "(that server answers 503 and asks again; after %llu ms without an answer the "
                "fetch is answered from this node's copy, which lacks the changes the bank had "
                "not received) (%llu such handovers so far, %llu since the last line)",
                static_cast<unsigned long long>(config_.handover_wait_ms), fetches_held,
                static_cast<unsigned long long>(HandoverOutcomes::kGiveUpMs),
                static_cast<unsigned long long>(counters_.handovers_unanswered),
                static_cast<unsigned long long>(suppressed + 1));
    }
}

void NodeServer::on_handover_reply(const std::string &routing_id,
                                   const wire::HandoverReply &handover, WallTime now) {
    HandoverWaits::Wait wait;
    wire::SessionKey key;
    // After its deadline (the fetches held were left unanswered) the answer counts all the same:
    // the next fetch finds its copy, and need not ask again.
    HandoverWaits::Answer answer =
        handovers_.answered(routing_id, handover.request_id, &key, &wait);
    if (answer == HandoverWaits::Answer::kNotAsked &&
        !handovers_.answered_late(routing_id, handover.request_id, &key)) {
        return;  // not asked of that agent
    }
    const AgentTracker::Agent *origin = agents_.find_by_routing_id(routing_id);
    if (handover.newer && handover.record.key == key && origin != nullptr &&
        handover.record.origin == origin->server_name) {
        const char *implausible = nullptr;
        ApplyOutcome outcome = store_.apply(handover.record, now.ms(), &implausible);
        switch (outcome.result) {
            case ApplyResult::kApplied:
                counters_.handovers_newer++;
                break;
            case ApplyResult::kNoMemory:
                // The same change comes again through the updates, and is refused there as
                // any change: the agent keeps it unacknowledged.
                refused_for_memory();
                break;
            case ApplyResult::kImplausible:
                refused_implausible(handover.record, implausible, "a handover");
                break;
            case ApplyResult::kDuplicate:
            case ApplyResult::kStale:
            case ApplyResult::kExpired:
                break;
        }
    }
    wire::SessionRecord held;
    if (origin != nullptr && store_.find(key, now.ms(), &held)) {
        handover_outcomes_.answered(key, {origin->server_name, routing_id}, held.version,
                                    mono_.ms());
    }
    if (answer == HandoverWaits::Answer::kEnded) {
        answer_held(wait, now);
    }
}

void NodeServer::expire_handovers() {
    std::vector<HandoverWaits::Wait> expired;
    handovers_.expire(mono_.ms(), &expired);
    for (const HandoverWaits::Wait &wait : expired) {
        handover_unanswered(wait.fetches.size());
        wire::SessionRecord held;
        if (!store_.find(wait.key, now_.ms(), &held)) {
            continue;
        }
        for (const std::string &origin_routing_id : wait.unanswered) {
            const AgentTracker::Agent *origin = agents_.find_by_routing_id(origin_routing_id);
            if (origin != nullptr) {
                handover_outcomes_.unanswered(wait.key, {origin->server_name, origin_routing_id},
                                              held.version, mono_.ms());
            }
        }
    }
    arm_handover_timer();
}

void NodeServer::arm_handover_timer() {
    std::uint64_t next = handovers_.next_deadline_ms();
    if (next != 0) {
        loop_.rearm_timer(handover_timer_, MonotonicTime::from_ms(static_cast<std::int64_t>(next)));
    }
}

void NodeServer::answer_held(const HandoverWaits::Wait &wait, WallTime now) {
    for (const HandoverWaits::HeldFetch &fetch : wait.fetches) {
        answer_fetch(fetch.routing_id, fetch.request_id, wait.key, now);
    }
}

void NodeServer::answer_heartbeat(const std::string &routing_id, const wire::Heartbeat &hb) {
    counters_.heartbeats++;
    wire::HeartbeatAck ack;
    ack.request_id = hb.request_id;
    ack.epoch = hb.epoch;
    ack.node_name = config_.name;
    ack.updates_endpoint = updates_endpoint_;
    // Until the node knows what it owns, it owns nothing: the agent then counts nothing as held
    // here.
    if (ownership_decided_) {
        ack.owned = owned_;
    }
    ack.full = full_;
    AgentTracker::Agent *agent = agents_.on_heartbeat(hb, routing_id, ack.owned, mono_.ms());
    if (agent != nullptr && agent->epoch == hb.epoch) {
        ack.shard_acks = agents_.take_acks(agent, ack.owned, mono_.ms());
        ack.refused = agent->refused;
        ack.refusing = agent->refusing.common(ack.owned);
    }
    reply(routing_id, ack);
    if (agent == nullptr) {
        return;
    }
    // During the start-up grace the node does not know yet which shards to ask for.
    if (ownership_decided_ && (!agent->resend_requested || !agent->resend_shards.empty())) {
        // First contact: whatever this agent published before we met is unknown to us. Later:
        // shards this node has gained since.
        wire::Resend resend;
        resend.epoch = agent->epoch;
        resend.from_sequence = 0;  // the agent re-sends what stays unacknowledged by itself
        resend.shards = agent->resend_shards;
        if (!agent->resend_requested) {
            resend.shards.add_all(owned_);
        }
        if (reply(routing_id, resend)) {
            agent->resend_requested = true;
            agent->resend_shards = wire::ShardSet{};
        }
    }
    send_refusals(routing_id, agent);
}

void NodeServer::send_refusals(const std::string &routing_id, AgentTracker::Agent *agent) {
    if (agent->all_sessions_ended &&
        reply(routing_id, wire::EndSession{0, wire::EndScope::kAll, {}})) {
        agent->all_sessions_ended = false;
    }
    while (!agent->refusals.empty()) {
        std::size_t n = std::min(agent->refusals.size(), wire::kMaxRefusalsPerMessage);
        wire::Refused refused;
        refused.refusals.assign(agent->refusals.end() - static_cast<long>(n),
                                agent->refusals.end());
        if (!reply(routing_id, refused)) {
            break;  // its queue is full: after its next heartbeat
        }
        agent->refusals.resize(agent->refusals.size() - n);
    }
}

bool NodeServer::reply(const std::string &routing_id, const wire::Message &message) {
    if (!wire::send_frames(queries_, &routing_id, wire::encode_message(message), ZMQ_DONTWAIT)) {
        counters_.replies_dropped++;
        return false;
    }
    return true;
}

void NodeServer::advance_snapshots(WallTime now) {
    SnapshotServer::Turn turn = snapshots_.advance(now.ms(), [this](const std::string &routing_id,
                                                                    const wire::Message &message) {
        if (wire::send_frames(queries_, &routing_id, wire::encode_message(message), ZMQ_DONTWAIT)) {
            return SnapshotServer::Sent::kSent;
        }
        return errno == EAGAIN ? SnapshotServer::Sent::kWouldBlock : SnapshotServer::Sent::kGone;
    });
    counters_.snapshots_served += turn.served;
    counters_.replies_dropped += turn.dropped;
}

void NodeServer::drain_peer(std::size_t peer, WallTime now, MonotonicTime mono) {
    wire::ReceivedMessage message;
    for (std::size_t i = 0;
         i < kPeerMessagesPerTurn && message.receive(peer_sockets_[peer], ZMQ_DONTWAIT); ++i) {
        wire::Message reply_message;
        wire::DecodeResult result =
            message.overflow()
                ? wire::decode_fail(wire::DecodeError::kFrameCount, "peer reply: too many frames")
                : wire::decode_message(wire::FrameSpan(message.frames(), message.size()),
                                       &reply_message);
        if (!result.ok()) {
            malformed("peer", result);
            continue;
        }
        membership_.on_heard(peer, mono.ms());
        if (auto *pong = std::get_if<wire::Pong>(&reply_message)) {
            bool was_up = membership_.peers()[peer].state == PeerState::kUp;
            if (membership_.on_pong(peer, pong->node_name, mono.ms())) {
                membership_changed_ = true;
            }
            if (!was_up) {
                RSS_LOG(LogLevel::kInfo, "RN0202: peer %s (%s) is up",
                        membership_.peers()[peer].endpoint.c_str(),
                        membership_.peers()[peer].name.c_str());
            }
        } else if (auto *record = std::get_if<wire::SnapshotRecord>(&reply_message)) {
            on_snapshot_record(*record, now, mono);
        } else if (auto *end = std::get_if<wire::SnapshotEnd>(&reply_message)) {
            fills_.on_end(end->request_id, membership_.peers()[peer].name);
        } else if (auto *error = std::get_if<wire::ErrorReply>(&reply_message)) {
            fills_.on_error(*error, membership_.peers()[peer].name, mono.ms());
        }
    }
}

void NodeServer::ping_peers() {
    loop_.rearm_timer(
        ping_timer_,
        mono_ + milliseconds(ownership_decided_ ? kPingIntervalMs : kStartupPingIntervalMs));
    for (void *socket : peer_sockets_) {
        wire::send_frames(socket, nullptr,
                          wire::encode_message(wire::Ping{next_request_id_++, config_.name}),
                          ZMQ_DONTWAIT);
    }
}

void NodeServer::sweep() {
    for (std::uint32_t i = 0; i < kShardsPerSweep; ++i) {
        std::uint32_t shard = sweep_shard_;
        sweep_shard_ = (sweep_shard_ + 1) % wire::kShardCount;
        if (drop_lost_at_[shard] != MonotonicTime() && mono_ >= drop_lost_at_[shard] &&
            !snapshots_.serving(shard)) {
            drop_lost_at_[shard] = MonotonicTime();
            store_.drop_shard(shard);
            continue;
        }
        counters_.sessions_expired += store_.sweep_shard(shard, now_.ms());
    }
}

void NodeServer::end_turn() {
    agents_.send_waiting_refusals(
        [this](const std::string &routing_id, AgentTracker::Agent *agent) {
            send_refusals(routing_id, agent);
        });
    leave_full_when_room();
    for (std::size_t peer : membership_.expire(mono_.ms())) {
        RSS_LOG(LogLevel::kWarn, "RN0203: peer %s (%s) stopped answering",
                membership_.peers()[peer].endpoint.c_str(), membership_.peers()[peer].name.c_str());
        membership_changed_ = true;
    }
    forget_fills(mono_);
    if ((membership_changed_ || !ownership_decided_) && membership_.settled(mono_.ms())) {
        membership_changed_ = false;
        update_ownership(mono_);
    }
    send_catch_up_offers();
    fill_offered_shards(mono_);
    send_snapshot_requests(mono_);
}

void NodeServer::malformed(const char *socket, const wire::DecodeResult &result) {
    counters_.malformed_frames++;
    std::uint64_t suppressed = 0;
    if (malformed_log_.admit(mono_.ms(), &suppressed)) {
        RSS_LOG(
            LogLevel::kWarn,
            "RN0306: dropped a malformed message on %s: %s (%s); %llu more dropped since the last "
            "such line, %llu in all",
            socket, wire::decode_error_name(result.error), result.message,
            static_cast<unsigned long long>(suppressed),
            static_cast<unsigned long long>(counters_.malformed_frames));
    }
}

std::string NodeServer::status_json() const {
    return rhythm::node::status_json(node_status());
}

NodeStatus NodeServer::node_status() const {
    NodeStatus status;
    status.name = config_.name;
    MonotonicTime mono = MonotonicTime::now();
    status.uptime_seconds = static_cast<std::uint64_t>((mono - started_) / std::chrono::seconds(1));
    status.updates_endpoint = updates_endpoint_;
    status.queries_endpoint = queries_endpoint_;
    status.store = &store_;
    status.full = full_;
    status.owned = owned_;
    status.short_shards = short_shards();
    status.ownership_decided = ownership_decided_;
    status.replicas = config_.replicas;
    status.counters = &counters_;
    status.agents = agents_.size();
    status.connections_updates = connections_.connections(ConnectionWatch::kUpdatesSocket);
    status.connections_queries = connections_.connections(ConnectionWatch::kQueriesSocket);
    status.unfinished_bytes = connections_.held_total();
    status.curve = keys_.enabled();
    status.curve_clients = zap_.clients_listed();
    status.curve_admitted = zap_.admitted();
    status.curve_refused = zap_.refused();
    for (const auto &monitor : handshake_monitors_) {
        status.handshake_failures += monitor->failures();
    }
    status.metrics_refused = metrics_.refused();
    status.peers = &membership_.peers();
    status.mono_ms = mono.ms();
    return status;
}

}  // namespace rhythm::node
