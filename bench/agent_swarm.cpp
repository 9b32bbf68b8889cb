// agent_swarm: one rss_node and many web servers' backup agents (issue 17 §2). One process, one
// ZeroMQ context, simulates N agents on the real protocol (wire/): each has its own DEALER to the
// node's queries endpoint and its own XPUB to its updates endpoint (connected once a heartbeat-ack
// names it), its own agent id, epoch and sequences, and publishes a shard only once the node's
// subscription to it has arrived, as mod_rhythm_session's backup agent does. Heartbeats follow
// the real agent's settings (AgentConfig: every 500 ms idle; while changes are in flight at once
// after a publication, then every 2 ms, every 20 ms while one is unanswered); a resend is answered
// with each shard's head and every session of the shard published again; what stays
// unacknowledged for 1 s is published again.
//
// For each number of agents it starts an rss_node of its own (--replicas 1, on 127.0.0.1 ports it
// picks), connects the agents, and measures beside each other: the node's CPU per change
// acknowledged (/proc/PID/stat) at a total change rate shared evenly by the agents, the
// heartbeats the node handled per second (its status), its resident memory growth per agent,
// the replication lag (publication to the heartbeat-ack that acknowledges it) p50/p99, the node's
// CPU with every agent idle, and the time to restore the node's copies (the node killed -9 and
// started empty on the same ports, until it holds every session again). Every process it starts
// it stops by its PID.
//
//     agent_swarm --node _build/rss_node/rss_node [--agents 100,1000,3000] [--rate 5000]
//                 [--seconds 5] [--idle-seconds 5] [--sessions 30000] [--size 1024]
//                 [--io-threads 8] [--connect-rate 1000] [--no-restore] [--log-dir DIR]
//
// The sessions are shared among the agents (the same total whatever N), so that the restore
// moves the same bytes at every size; each change is a new version of one of its agent's
// sessions, the agents taking turns.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <netinet/in.h>
#include <queue>
#include <random>
#include <string>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>
#include <zmq.h>

#include "wire/messages.h"
#include "wire/session_key.h"
#include "wire/zmq_io.h"

namespace {

using namespace rhythm;

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The real agent's settings (mod_rhythm_session/backup/backup_agent.h, AgentConfig).
constexpr std::int64_t kHeartbeatBusyUs = 2000;
constexpr std::int64_t kHeartbeatRetryUs = 20000;
constexpr std::int64_t kHeartbeatIdleUs = 500000;
constexpr std::int64_t kNodeTimeoutUs = 1500000;
constexpr std::int64_t kResendAfterUs = 1000000;
constexpr std::int64_t kResendCheckUs = kResendAfterUs / 4;
constexpr std::int64_t kNever = INT64_MAX;

struct Options {
    std::string node_binary;
    std::vector<std::size_t> agents{100, 1000, 3000};
    double rate = 5000;
    double seconds = 5;
    double idle_seconds = 5;
    std::size_t sessions = 30000;
    std::size_t size = 1024;
    // The swarm's I/O threads: libzmq walks every timer of an I/O thread to cancel one (its
    // poller_base_t::cancel_timer), so thousands of connections on one thread cost the swarm far
    // more than the same connections in thousands of web servers; spread over 8 threads, an
    // eighth.
    int io_threads = 8;
    double connect_rate = 1000;  // agents started per second (0: all at once)
    bool restore = true;
    std::string log_dir = "/tmp";
};

// ---- the node process -----------------------------------------------------------------------

int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        std::perror("agent_swarm: picking a port");
        std::exit(1);
    }
    close(fd);
    return ntohs(addr.sin_port);
}

struct NodeProcess {
    std::string binary;
    std::string updates;
    std::string queries;
    std::string log_path;
    pid_t pid = -1;

    void start() {
        pid = fork();
        if (pid < 0) {
            std::perror("agent_swarm: fork");
            std::exit(1);
        }
        if (pid == 0) {
            // A swarm that dies (libzmq aborts it now and then, see run_size) takes its node along.
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (log >= 0) {
                dup2(log, 1);
                dup2(log, 2);
                close(log);
            }
            // Each web server's agent connects from 127.0.0.1: the per-address bound (64 by
            // default) is raised for the load generator, as docs/rss_node.md says.
            execl(binary.c_str(), binary.c_str(), "--name", "swarm-node", "--updates",
                  updates.c_str(), "--queries", queries.c_str(), "--replicas", "1",
                  "--max-connections-per-address", "100000", static_cast<char *>(nullptr));
            _exit(127);
        }
    }
    void kill_hard() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            pid = -1;
        }
    }
    void stop() {
        if (pid <= 0) {
            return;
        }
        kill(pid, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (waitpid(pid, nullptr, WNOHANG) == pid) {
                pid = -1;
                return;
            }
            usleep(50000);
        }
        kill_hard();
    }
};

// utime + stime in clock ticks: the whole process, and its threads by kind (the node's own
// thread, ZeroMQ's I/O threads).
struct Cpu {
    std::uint64_t total = 0;
    std::uint64_t main = 0;
    std::uint64_t io = 0;
};

bool stat_ticks(const std::string &path, std::uint64_t *ticks, std::string *comm) {
    FILE *f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        return false;
    }
    char buf[1024];
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    char *open_paren = std::strchr(buf, '(');
    char *close_paren = std::strrchr(buf, ')');
    if (open_paren == nullptr || close_paren == nullptr) {
        return false;
    }
    if (comm != nullptr) {
        comm->assign(open_paren + 1, close_paren);
    }
    // After ") ": state (field 3), ... utime is field 14, stime 15.
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    if (std::sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                    &utime, &stime) != 2) {
        return false;
    }
    *ticks = utime + stime;
    return true;
}

Cpu cpu_of(pid_t pid) {
    Cpu cpu;
    stat_ticks("/proc/" + std::to_string(pid) + "/stat", &cpu.total, nullptr);
    std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    if (DIR *dir = opendir(tasks.c_str())) {
        while (dirent *e = readdir(dir)) {
            if (e->d_name[0] == '.') {
                continue;
            }
            std::uint64_t ticks = 0;
            std::string comm;
            if (stat_ticks(tasks + "/" + e->d_name + "/stat", &ticks, &comm)) {
                (comm.rfind("ZMQbg", 0) == 0 ? cpu.io : cpu.main) += ticks;
            }
        }
        closedir(dir);
    }
    return cpu;
}

std::uint64_t rss_kib(pid_t pid) {
    FILE *f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
    if (f == nullptr) {
        return 0;
    }
    char line[256];
    unsigned long long kib = 0;
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::sscanf(line, "VmRSS: %llu kB", &kib) == 1) {
            break;
        }
    }
    std::fclose(f);
    return kib;
}

// ---- the status of the node, over a DEALER of its own ------------------------------------------

class StatusProbe {
  public:
    StatusProbe(void *context, const std::string &endpoint) {
        socket_ = zmq_socket(context, ZMQ_DEALER);
        wire::set_network_options(socket_);
        zmq_connect(socket_, endpoint.c_str());
    }
    ~StatusProbe() { zmq_close(socket_); }

    // The status JSON, or "" after `timeout_ms` without it.
    std::string ask(int timeout_ms) {
        send();
        std::int64_t deadline = now_us() + timeout_ms * 1000LL;
        std::string json;
        for (;;) {
            if (take(&json)) {
                return json;
            }
            std::int64_t left = (deadline - now_us()) / 1000;
            if (left <= 0) {
                return "";
            }
            zmq_pollitem_t item{socket_, 0, ZMQ_POLLIN, 0};
            zmq_poll(&item, 1, static_cast<long>(left));
        }
    }

    // Without waiting: asks (forgetting an earlier question), then takes the answer when it has
    // come.
    void send() {
        asked_ = next_id_++;
        wire::send_frames(socket_, nullptr, wire::encode_message(wire::StatusRequest{asked_}),
                          ZMQ_DONTWAIT);
    }
    bool take(std::string *json) {
        wire::ReceivedMessage message;
        while (message.receive(socket_, ZMQ_DONTWAIT)) {
            wire::Message decoded;
            if (!wire::decode_message(wire::FrameSpan(message.frames(), message.size()), &decoded)
                     .ok()) {
                continue;
            }
            if (auto *reply = std::get_if<wire::StatusReply>(&decoded);
                reply != nullptr && reply->request_id == asked_) {
                json->assign(reply->json);
                return true;
            }
        }
        return false;
    }

  private:
    void *socket_ = nullptr;
    std::uint64_t next_id_ = 1;
    std::uint64_t asked_ = 0;
};

// A top-level number field of the status JSON (-1: absent).
long long json_number(const std::string &json, const char *field) {
    std::string key = std::string("\"") + field + "\":";
    std::size_t at = json.find(key);
    if (at == std::string::npos) {
        return -1;
    }
    return std::strtoll(json.c_str() + at + key.size(), nullptr, 10);
}

// ---- the simulated agents ---------------------------------------------------------------------

struct Session {
    wire::SessionKey key;
    std::uint32_t shard = 0;
    std::uint64_t version = 0;
    bool dirty = false;
};

struct Change {
    std::uint64_t shard_sequence = 0;
    std::int64_t published_us = 0;  // first publication, as the real agent dates it
    bool measured = false;          // published in the measured interval of the load
    std::string message;            // the encoded published message
};

struct Agent {
    wire::AgentId id{};
    std::uint64_t epoch = 0;
    std::string name;
    void *dealer = nullptr;
    void *xpub = nullptr;
    bool publisher_connected = false;
    bool up = false;
    bool answered = false;
    std::int64_t last_ack_us = 0;
    std::int64_t last_heartbeat_us = -kNever / 2;
    std::int64_t heartbeat_entry_us = kNever;  // its entry in the heartbeat queue
    std::uint64_t last_heartbeat_id = 0;
    std::uint64_t last_answer_id = 0;
    std::uint64_t asked_up_to = 0;
    std::uint64_t next_sequence = 1;
    std::vector<std::uint64_t> shard_sequences = std::vector<std::uint64_t>(wire::kShardCount);
    std::vector<std::uint64_t> shard_acked = std::vector<std::uint64_t>(wire::kShardCount);
    wire::ShardSet subscribed;
    wire::ShardSet owned;
    std::unordered_map<std::uint16_t, std::deque<Change>> in_flight;
    std::size_t in_flight_count = 0;
    std::map<std::uint16_t, std::uint64_t> heads_to_send;
    std::map<std::uint16_t, std::uint64_t> heads_sent;
    std::uint64_t heads_request_id = 0;
    std::vector<std::uint32_t> sessions;  // indices into Swarm::sessions_
    std::vector<std::uint32_t> dirty;     // sessions to publish (again)
    bool recheck_dealer = false;
    bool recheck_xpub = false;
};

struct Figures {
    std::uint64_t acknowledged = 0;  // changes acknowledged
    std::uint64_t resent = 0;        // changes published again after resend_after
    std::uint64_t republished = 0;   // sessions published again for a resend
    std::uint64_t acks = 0;          // heartbeat-acks received
    std::uint64_t shard_acks = 0;    // shard acknowledgements in them
    std::uint64_t ack_bytes = 0;     // the acks' body frames
    std::uint64_t heartbeats = 0;
    std::uint64_t resends = 0;
    std::uint64_t other = 0;  // refused, end-session, handover, errors
    std::vector<std::int64_t> lag_us;
};

class Swarm {
  public:
    Swarm(void *context, const Options &options, std::size_t agents, const std::string &queries)
        : context_(context), queries_(queries) {
        epoll_ = epoll_create1(0);
        std::mt19937_64 random(agents * 7919 + 17);
        payload_.assign(options.size, 'x');
        sessions_.resize(options.sessions);
        for (Session &s : sessions_) {
            for (auto &b : s.key.bytes) {
                b = static_cast<std::uint8_t>(random());
            }
            s.shard = wire::shard_of(s.key);
        }
        agents_.resize(agents);
        std::uint64_t epoch = static_cast<std::uint64_t>(now_us());
        for (std::size_t i = 0; i < agents; ++i) {
            Agent &a = agents_[i];
            for (auto &b : a.id) {
                b = static_cast<std::uint8_t>(random());
            }
            a.epoch = epoch;
            char name[32];
            std::snprintf(name, sizeof name, "web-%05zu", i);
            a.name = name;
        }
        for (std::size_t s = 0; s < sessions_.size(); ++s) {
            agents_[s % agents].sessions.push_back(static_cast<std::uint32_t>(s));
        }
    }

    ~Swarm() {
        for (Agent &a : agents_) {
            if (a.dealer != nullptr) {
                zmq_close(a.dealer);
            }
            if (a.xpub != nullptr) {
                zmq_close(a.xpub);
            }
        }
        close(epoll_);
    }

    // From `start_us`, `per_second` agents a second (0: all at once) make their sockets and
    // connect their DEALER; the XPUB follows the first ack. Web servers start one by one; a node
    // that restarts sees them all come back at once (the restore below).
    void connect(std::int64_t start_us, double per_second) {
        connect_start_us_ = start_us;
        connect_rate_ = per_second;
        connect_due(start_us);
    }

    void connect_due(std::int64_t now) {
        std::size_t due =
            connect_rate_ <= 0
                ? agents_.size()
                : std::min<std::size_t>(
                      agents_.size(),
                      static_cast<std::size_t>((now - connect_start_us_) * connect_rate_ / 1e6) +
                          1);
        int on = 1;
        int reconnect = 100;
        int hwm = 100000;
        int unbounded = 0;
        for (; connected_ < due; ++connected_) {
            std::size_t i = connected_;
            Agent &a = agents_[i];
            a.dealer = zmq_socket(context_, ZMQ_DEALER);
            a.xpub = zmq_socket(context_, ZMQ_XPUB);
            if (a.dealer == nullptr || a.xpub == nullptr) {
                std::fprintf(stderr, "agent_swarm: socket %zu: %s\n", i, zmq_strerror(errno));
                std::exit(1);
            }
            wire::set_network_options(a.dealer);
            zmq_setsockopt(a.dealer, ZMQ_IMMEDIATE, &on, sizeof on);
            zmq_setsockopt(a.dealer, ZMQ_RECONNECT_IVL, &reconnect, sizeof reconnect);
            wire::set_network_options(a.xpub);
            zmq_setsockopt(a.xpub, ZMQ_SNDHWM, &hwm, sizeof hwm);
            zmq_setsockopt(a.xpub, ZMQ_XPUB_VERBOSE, &on, sizeof on);
            // Unlike the real agent: no receive bound. One loop reads for thousands of agents, so
            // a node's 1,024 subscriptions (over the default 1,000) or its answers can wait here
            // long enough to fill a pipe, and libzmq 4.3.4 then aborted the process now and then
            // as it took that connection's input up again (stream_engine_base.cpp:417,
            // `_input_stopped`).
            zmq_setsockopt(a.dealer, ZMQ_RCVHWM, &unbounded, sizeof unbounded);
            zmq_setsockopt(a.xpub, ZMQ_RCVHWM, &unbounded, sizeof unbounded);
            watch(a.dealer, i * 2);
            watch(a.xpub, i * 2 + 1);
            if (zmq_connect(a.dealer, queries_.c_str()) != 0) {
                std::fprintf(stderr, "agent_swarm: connect: %s\n", zmq_strerror(errno));
                std::exit(1);
            }
            schedule_heartbeat(i, now_us());
        }
    }

    // Every agent up, subscribed to every shard the node owns, its first-contact heads answered
    // and nothing in flight or waiting.
    bool settled() const {
        if (connected_ < agents_.size()) {
            return false;
        }
        for (const Agent &a : agents_) {
            if (!a.up || a.owned.empty() || !(a.subscribed.common(a.owned) == a.owned) ||
                a.in_flight_count != 0 || !a.dirty.empty() || !a.heads_sent.empty() ||
                !a.heads_to_send.empty()) {
                return false;
            }
        }
        return true;
    }
    // Agents answered since `since_us`, and of those subscribed to every shard the node owns.
    std::pair<std::size_t, std::size_t> answered_since(std::int64_t since_us) const {
        std::size_t answered = 0;
        std::size_t subscribed = 0;
        for (const Agent &a : agents_) {
            if (a.last_ack_us >= since_us) {
                answered++;
                subscribed += !a.owned.empty() && a.subscribed.common(a.owned) == a.owned ? 1 : 0;
            }
        }
        return {answered, subscribed};
    }
    std::size_t agents_up() const {
        std::size_t n = 0;
        for (const Agent &a : agents_) {
            n += a.up ? 1 : 0;
        }
        return n;
    }

    // Runs the loop until `until_us`, or until `done()` (checked every 10 ms) says so.
    template <typename Done>
    bool run_until(std::int64_t until_us, Done done) {
        std::int64_t next_check = 0;
        for (;;) {
            std::int64_t now = now_us();
            if (now >= next_check) {
                if (done()) {
                    return true;
                }
                next_check = now + 10000;
            }
            if (now >= until_us) {
                return false;
            }
            turn(std::min(until_us, next_check));
        }
    }

    // The load: `rate` changes per second from `start_us`, the agents taking turns, each a new
    // version of one of the agent's sessions; `measured` marks the changes whose lag counts.
    void set_load(double rate, std::int64_t start_us, bool measured) {
        rate_ = rate;
        load_start_us_ = start_us;
        load_done_ = 0;
        measured_ = measured;
    }
    // The fill: every session's first version, at `rate`.
    void set_fill(double rate, std::int64_t start_us) {
        fill_rate_ = rate;
        fill_start_us_ = start_us;
        fill_done_ = 0;
    }
    bool filled() const { return fill_done_ >= sessions_.size(); }

    Figures &figures() { return figures_; }
    std::size_t agents() const { return agents_.size(); }

  private:
    void watch(void *socket, std::size_t tag) {
        int fd = -1;
        std::size_t len = sizeof fd;
        zmq_getsockopt(socket, ZMQ_FD, &fd, &len);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag;
        if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            std::perror("agent_swarm: epoll_ctl");
            std::exit(1);
        }
    }

    void turn(std::int64_t until_us) {
        std::int64_t now = now_us();
        std::int64_t wake = until_us;
        if (!heartbeats_.empty()) {
            wake = std::min(wake, heartbeats_.top().first);
        }
        if (rate_ > 0 || (fill_rate_ > 0 && !filled()) || connected_ < agents_.size()) {
            wake = std::min(wake, now + 1000);
        }
        wake = std::min(wake, next_resend_check_us_);
        int timeout = wake <= now ? 0 : static_cast<int>((wake - now + 999) / 1000);
        epoll_event events[256];
        int n = epoll_wait(epoll_, events, 256, timeout);
        for (int i = 0; i < n; ++i) {
            std::size_t agent = events[i].data.u64 / 2;
            if (events[i].data.u64 % 2 == 0) {
                drain_dealer(agent);
            } else {
                drain_xpub(agent);
            }
        }
        now = now_us();
        if (connected_ < agents_.size()) {
            connect_due(now);
        }
        publish_due(now);
        run_heartbeats(now);
        if (now >= next_resend_check_us_) {
            next_resend_check_us_ = now + kResendCheckUs;
            resend_unacknowledged(now);
        }
        // Sending on a ZeroMQ socket may take in the command that would have woken the poll:
        // each socket sent on is drained here (a drain that finds nothing costs one getsockopt).
        while (!recheck_.empty()) {
            std::size_t tag = recheck_.back();
            recheck_.pop_back();
            Agent &a = agents_[tag / 2];
            if (tag % 2 == 0) {
                a.recheck_dealer = false;
                drain_dealer(tag / 2);
            } else {
                a.recheck_xpub = false;
                drain_xpub(tag / 2);
            }
        }
        if (now >= next_sweep_us_) {  // belt and braces: every socket once a second
            next_sweep_us_ = now + 1000000;
            for (std::size_t i = 0; i < agents_.size(); ++i) {
                drain_dealer(i);
                drain_xpub(i);
            }
        }
    }

    void recheck(std::size_t agent, bool dealer) {
        Agent &a = agents_[agent];
        bool &flag = dealer ? a.recheck_dealer : a.recheck_xpub;
        if (!flag) {
            flag = true;
            recheck_.push_back(agent * 2 + (dealer ? 0 : 1));
        }
    }

    // ---- heartbeats (BackupAgent::send_heartbeats) ----

    std::int64_t heartbeat_due(const Agent &a) const {
        bool busy = a.in_flight_count > 0;
        bool answered = a.last_answer_id >= a.last_heartbeat_id;
        std::int64_t interval = !busy                             ? kHeartbeatIdleUs
                                : !answered                       ? kHeartbeatRetryUs
                                : a.asked_up_to < a.next_sequence ? 0
                                                                  : kHeartbeatBusyUs;
        return a.last_heartbeat_us + interval;
    }

    void schedule_heartbeat(std::size_t i, std::int64_t not_before) {
        Agent &a = agents_[i];
        std::int64_t due = std::max(heartbeat_due(a), not_before);
        if (due < a.heartbeat_entry_us) {
            a.heartbeat_entry_us = due;
            heartbeats_.push({due, i});
        }
    }

    void run_heartbeats(std::int64_t now) {
        while (!heartbeats_.empty() && heartbeats_.top().first <= now) {
            auto [due, i] = heartbeats_.top();
            heartbeats_.pop();
            Agent &a = agents_[i];
            if (due != a.heartbeat_entry_us) {
                continue;  // superseded by an earlier one
            }
            a.heartbeat_entry_us = kNever;
            if (a.up && now - a.last_ack_us > kNodeTimeoutUs) {
                a.up = false;  // ReplicationWindow::on_down
            }
            if (heartbeat_due(a) <= now) {
                send_heartbeat(i, now);
            }
            schedule_heartbeat(i, now);
        }
    }

    void send_heartbeat(std::size_t i, std::int64_t now) {
        Agent &a = agents_[i];
        wire::Heartbeat hb;
        hb.request_id = next_request_id_++;
        hb.agent_id = a.id;
        hb.epoch = a.epoch;
        hb.next_sequence = a.next_sequence;
        hb.server_name = a.name;
        // ReplicationWindow::heads_for: the heads go in every heartbeat until one is answered.
        if (a.heads_sent.empty() && !a.heads_to_send.empty()) {
            a.heads_sent.swap(a.heads_to_send);
            a.heads_request_id = hb.request_id;
        }
        for (const auto &[shard, head] : a.heads_sent) {
            hb.heads.push_back(wire::ShardSequence{shard, head});
        }
        recheck(i, true);
        if (!wire::send_frames(a.dealer, nullptr, wire::encode_message(hb), ZMQ_DONTWAIT)) {
            // Not connected yet: again after heartbeat_retry_ms.
            std::int64_t interval = heartbeat_due(a) - a.last_heartbeat_us;
            a.last_heartbeat_us = now - interval + std::min(interval, kHeartbeatRetryUs);
            return;
        }
        a.last_heartbeat_id = hb.request_id;
        a.asked_up_to = a.next_sequence;
        a.last_heartbeat_us = now;
        figures_.heartbeats++;
    }

    // ---- the node's answers ----

    void drain_dealer(std::size_t i) {
        Agent &a = agents_[i];
        wire::ReceivedMessage message;
        while (message.receive(a.dealer, ZMQ_DONTWAIT)) {
            wire::Message decoded;
            if (!wire::decode_message(wire::FrameSpan(message.frames(), message.size()), &decoded)
                     .ok()) {
                figures_.other++;
                continue;
            }
            if (auto *ack = std::get_if<wire::HeartbeatAck>(&decoded)) {
                figures_.ack_bytes += message.frames()[1].size();
                on_ack(i, *ack);
            } else if (auto *resend = std::get_if<wire::Resend>(&decoded)) {
                on_resend(i, *resend);
            } else {
                figures_.other++;
            }
        }
    }

    void on_ack(std::size_t i, const wire::HeartbeatAck &ack) {
        Agent &a = agents_[i];
        std::int64_t now = now_us();
        figures_.acks++;
        figures_.shard_acks += ack.shard_acks.size();
        a.up = true;
        a.answered = true;
        a.last_ack_us = now;
        a.last_answer_id = std::max(a.last_answer_id, ack.request_id);
        if (ack.request_id >= a.heads_request_id) {
            a.heads_sent.clear();
        }
        if (ack.epoch == a.epoch) {
            wire::ShardSet gained = ack.owned;
            gained.remove_all(a.owned);
            gained.for_each([&](std::uint32_t shard) { a.shard_acked[shard] = 0; });
            a.owned = ack.owned;
            for (const wire::ShardSequence &s : ack.shard_acks) {
                a.shard_acked[s.shard] = std::max(a.shard_acked[s.shard], s.shard_sequence);
                settle(a, s.shard, now);
            }
        }
        if (!a.publisher_connected) {
            std::string endpoint(ack.updates_endpoint);
            if (zmq_connect(a.xpub, endpoint.c_str()) == 0) {
                a.publisher_connected = true;
                recheck(i, false);
            }
        }
        publish_dirty(i, now);
        schedule_heartbeat(i, now);
    }

    void settle(Agent &a, std::uint16_t shard, std::int64_t now) {
        auto it = a.in_flight.find(shard);
        if (it == a.in_flight.end()) {
            return;
        }
        std::deque<Change> &changes = it->second;
        while (!changes.empty() && changes.front().shard_sequence <= a.shard_acked[shard]) {
            if (changes.front().measured) {
                figures_.lag_us.push_back(now - changes.front().published_us);
            }
            figures_.acknowledged++;
            a.in_flight_count--;
            changes.pop_front();
        }
        if (changes.empty()) {
            a.in_flight.erase(it);
        }
    }

    // BackupAgent::on_resend and ReplicationWindow::republish: each shard's head before what is
    // in flight, then every session of the shards published again.
    void on_resend(std::size_t i, const wire::Resend &resend) {
        Agent &a = agents_[i];
        figures_.resends++;
        if (resend.epoch == a.epoch && resend.from_sequence > 0) {
            resend_all(i);
        }
        resend.shards.for_each([&](std::uint32_t shard) {
            auto it = a.in_flight.find(static_cast<std::uint16_t>(shard));
            std::uint64_t head = it == a.in_flight.end() ? a.shard_sequences[shard]
                                                         : it->second.front().shard_sequence - 1;
            a.heads_to_send[static_cast<std::uint16_t>(shard)] = head;
            a.shard_acked[shard] = std::min(a.shard_acked[shard], head);
        });
        for (std::uint32_t s : a.sessions) {
            Session &session = sessions_[s];
            if (session.version > 0 && !session.dirty && resend.shards.contains(session.shard)) {
                session.dirty = true;
                a.dirty.push_back(s);
                figures_.republished++;
            }
        }
        publish_dirty(i, now_us());
    }

    // ---- publishing ----

    bool sends_to(const Agent &a, std::uint32_t shard) const {
        return a.subscribed.contains(shard) && (a.up || !a.answered);
    }

    void send_update(std::size_t i, const Change &change) {
        zmq_send(agents_[i].xpub, change.message.data(), change.message.size(), ZMQ_DONTWAIT);
        recheck(i, false);
    }

    void publish(std::size_t i, std::uint32_t s, std::int64_t now, bool measured) {
        Agent &a = agents_[i];
        Session &session = sessions_[s];
        wire::Published p;
        p.sender.agent_id = a.id;
        p.sender.epoch = a.epoch;
        p.sender.sequence = a.next_sequence++;
        p.sender.shard_sequence = ++a.shard_sequences[session.shard];
        p.record.key = session.key;
        p.record.version = session.version;
        p.record.origin = a.name;
        p.record.data = payload_;
        Change change;
        change.shard_sequence = p.sender.shard_sequence;
        change.published_us = now;
        change.measured = measured;
        change.message = std::move(wire::encode_published(p)[0]);
        std::deque<Change> &changes = a.in_flight[static_cast<std::uint16_t>(session.shard)];
        changes.push_back(std::move(change));
        a.in_flight_count++;
        if (sends_to(a, session.shard)) {
            send_update(i, changes.back());
        }
        schedule_heartbeat(i, now);
    }

    // Changes wait (the real agent's segment) while no node is up with an updates endpoint.
    bool reachable(const Agent &a) const { return a.up && a.publisher_connected; }

    void publish_dirty(std::size_t i, std::int64_t now) {
        Agent &a = agents_[i];
        if (!reachable(a)) {
            return;
        }
        for (std::uint32_t s : a.dirty) {
            sessions_[s].dirty = false;
            publish(i, s, now, false);
        }
        a.dirty.clear();
    }

    void change(std::size_t i, std::uint32_t s, std::int64_t now, bool measured) {
        Agent &a = agents_[i];
        sessions_[s].version++;
        if (reachable(a) && a.dirty.empty()) {
            publish(i, s, now, measured);
        } else if (!sessions_[s].dirty) {
            sessions_[s].dirty = true;
            a.dirty.push_back(s);
        }
    }

    void publish_due(std::int64_t now) {
        if (fill_rate_ > 0) {
            std::uint64_t due = std::min<std::uint64_t>(
                sessions_.size(),
                static_cast<std::uint64_t>((now - fill_start_us_) * fill_rate_ / 1e6));
            for (; fill_done_ < due; ++fill_done_) {
                change(fill_done_ % agents_.size(), static_cast<std::uint32_t>(fill_done_), now,
                       false);
            }
        }
        if (rate_ > 0 && now >= load_start_us_) {
            auto due = static_cast<std::uint64_t>((now - load_start_us_) * rate_ / 1e6);
            for (; load_done_ < due; ++load_done_) {
                std::size_t i = load_done_ % agents_.size();
                const Agent &a = agents_[i];
                std::uint32_t s = a.sessions[pick_(random_) % a.sessions.size()];
                change(i, s, now, measured_);
            }
        }
    }

    void drain_xpub(std::size_t i) {
        Agent &a = agents_[i];
        unsigned char buf[8];
        for (;;) {
            int n = zmq_recv(a.xpub, buf, sizeof buf, ZMQ_DONTWAIT);
            if (n < 0) {
                return;
            }
            if (n != 1 + static_cast<int>(wire::kTopicBytes)) {
                continue;
            }
            std::uint32_t shard = (std::uint32_t{buf[1]} << 8) | buf[2];
            if (shard >= wire::kShardCount) {
                continue;
            }
            if (buf[0] == 1) {
                a.subscribed.add(shard);
                auto it = a.in_flight.find(static_cast<std::uint16_t>(shard));
                if (it != a.in_flight.end() && sends_to(a, shard)) {
                    for (const Change &c : it->second) {
                        if (c.shard_sequence > a.shard_acked[shard]) {
                            send_update(i, c);
                        }
                    }
                }
            } else {
                a.subscribed.remove(shard);
            }
        }
    }

    void resend_all(std::size_t i) {
        Agent &a = agents_[i];
        for (auto &[shard, changes] : a.in_flight) {
            if (!sends_to(a, shard)) {
                continue;
            }
            for (const Change &c : changes) {
                if (c.shard_sequence > a.shard_acked[shard]) {
                    send_update(i, c);
                    figures_.resent++;
                }
            }
        }
    }

    // ReplicationWindow::resend: a shard whose oldest unacknowledged change waited
    // resend_after_ms goes again, from that change on.
    void resend_unacknowledged(std::int64_t now) {
        for (std::size_t i = 0; i < agents_.size(); ++i) {
            Agent &a = agents_[i];
            if (a.in_flight_count == 0 || !a.up) {
                continue;
            }
            for (auto &[shard, changes] : a.in_flight) {
                if (!a.subscribed.contains(shard) || changes.empty() ||
                    now - changes.front().published_us < kResendAfterUs) {
                    continue;
                }
                for (const Change &c : changes) {
                    if (c.shard_sequence > a.shard_acked[shard]) {
                        send_update(i, c);
                        figures_.resent++;
                    }
                }
            }
        }
    }

    void *context_;
    std::string queries_;
    int epoll_ = -1;
    std::string payload_;
    std::vector<Session> sessions_;
    std::vector<Agent> agents_;
    std::vector<std::size_t> recheck_;
    std::priority_queue<std::pair<std::int64_t, std::size_t>,
                        std::vector<std::pair<std::int64_t, std::size_t>>, std::greater<>>
        heartbeats_;
    std::uint64_t next_request_id_ = 1;
    std::size_t connected_ = 0;
    std::int64_t connect_start_us_ = 0;
    double connect_rate_ = 0;
    std::int64_t next_resend_check_us_ = 0;
    std::int64_t next_sweep_us_ = 0;
    double rate_ = 0;
    std::int64_t load_start_us_ = 0;
    std::uint64_t load_done_ = 0;
    bool measured_ = false;
    double fill_rate_ = 0;
    std::int64_t fill_start_us_ = 0;
    std::uint64_t fill_done_ = 0;
    std::mt19937_64 random_{42};
    std::uniform_int_distribution<std::size_t> pick_;
    Figures figures_;
};

// ---- one size ---------------------------------------------------------------------------------

struct Row {
    std::size_t agents = 0;
    double connect_s = 0;
    bool settled = false;  // every agent in, within 60 s
    std::size_t up = 0;    // agents up at the end of the idle phase
    double idle_cpu_percent = 0;
    double idle_main_percent = 0;
    double idle_io_percent = 0;
    double idle_heartbeats_per_s = 0;
    double idle_ack_kib_per_s = 0;
    double idle_shard_acks_per_ack = 0;
    double rss_per_agent_kib = 0;
    double rss_before_mib = 0;
    double cpu_us_per_change = 0;
    double main_us_per_change = 0;
    double load_heartbeats_per_s = 0;
    double changes_per_s = 0;
    double lag_p50_ms = 0;
    double lag_p99_ms = 0;
    double restore_answered_s = -1;    // every agent answered by the new node
    double restore_subscribed_s = -1;  // ... and subscribed to by it
    double restore_stored_s = -1;
    double restore_acked_s = -1;
    double swarm_cpu_percent = 0;
    std::uint64_t resent = 0;
};

double percentile_ms(std::vector<std::int64_t> v, double p) {
    if (v.empty()) {
        return -1;
    }
    std::sort(v.begin(), v.end());
    std::size_t at = std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()));
    return v[at] / 1000.0;
}

double seconds_since(std::int64_t start) {
    return (now_us() - start) / 1e6;
}

long long status_field(StatusProbe &probe, const char *field) {
    return json_number(probe.ask(2000), field);
}

std::uint64_t own_ticks() {
    std::uint64_t ticks = 0;
    stat_ticks("/proc/self/stat", &ticks, nullptr);
    return ticks;
}

Row measure_size(void *context, const Options &options, std::size_t n, NodeProcess *node_out) {
    Row row;
    row.agents = n;
    const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    NodeProcess &node = *node_out;
    node.binary = options.node_binary;
    node.updates = "tcp://127.0.0.1:" + std::to_string(free_port());
    node.queries = "tcp://127.0.0.1:" + std::to_string(free_port());
    node.log_path = options.log_dir + "/agent_swarm-node-" + std::to_string(n) + ".log";
    std::remove(node.log_path.c_str());
    node.start();
    std::fprintf(stderr, "[%zu agents] node pid %d, updates %s, queries %s, log %s\n", n,
                 static_cast<int>(node.pid), node.updates.c_str(), node.queries.c_str(),
                 node.log_path.c_str());
    {
        StatusProbe probe(context, node.queries);
        std::int64_t start = now_us();
        while (probe.ask(500).empty()) {
            if (seconds_since(start) > 10) {
                std::fprintf(stderr, "agent_swarm: the node does not answer; see %s\n",
                             node.log_path.c_str());
                node.stop();
                std::exit(1);
            }
        }
        usleep(500000);
        std::uint64_t rss_before = rss_kib(node.pid);
        row.rss_before_mib = rss_before / 1024.0;

        Swarm swarm(context, options, n, node.queries);
        std::int64_t t0 = now_us();
        swarm.connect(t0, options.connect_rate);
        bool ok = swarm.run_until(t0 + 60000000, [&] { return swarm.settled(); });
        row.connect_s = seconds_since(t0);
        row.settled = ok;
        std::fprintf(stderr, "[%zu agents] %s in %.1f s (%zu up)\n", n,
                     ok ? "connected and settled" : "NOT settled", row.connect_s,
                     swarm.agents_up());

        // Idle: heartbeats alone.
        swarm.run_until(now_us() + 2000000, [] { return false; });
        long long hb0 = status_field(probe, "heartbeats");
        Figures before = swarm.figures();
        Cpu c0 = cpu_of(node.pid);
        std::uint64_t own0 = own_ticks();
        std::int64_t i0 = now_us();
        swarm.run_until(i0 + static_cast<std::int64_t>(options.idle_seconds * 1e6),
                        [] { return false; });
        double idle_s = seconds_since(i0);
        Cpu c1 = cpu_of(node.pid);
        std::uint64_t own1 = own_ticks();
        long long hb1 = status_field(probe, "heartbeats");
        row.rss_per_agent_kib = (static_cast<double>(rss_kib(node.pid)) - rss_before) / n;
        row.idle_cpu_percent = 100.0 * (c1.total - c0.total) / hz / idle_s;
        row.idle_main_percent = 100.0 * (c1.main - c0.main) / hz / idle_s;
        row.idle_io_percent = 100.0 * (c1.io - c0.io) / hz / idle_s;
        row.idle_heartbeats_per_s = (hb1 - hb0) / idle_s;
        const Figures &after = swarm.figures();
        row.idle_ack_kib_per_s = (after.ack_bytes - before.ack_bytes) / 1024.0 / idle_s;
        std::uint64_t acks = after.acks - before.acks;
        row.idle_shard_acks_per_ack =
            acks == 0 ? 0 : static_cast<double>(after.shard_acks - before.shard_acks) / acks;
        row.up = swarm.agents_up();
        std::fprintf(stderr,
                     "[%zu agents] idle (%zu up): node %.1f %% of a core (%.1f its thread, %.1f "
                     "ZeroMQ I/O), %.0f heartbeats/s, RSS +%.1f KiB per agent; swarm %.1f %%\n",
                     n, row.up, row.idle_cpu_percent, row.idle_main_percent, row.idle_io_percent,
                     row.idle_heartbeats_per_s, row.rss_per_agent_kib,
                     100.0 * (own1 - own0) / hz / idle_s);
        if (!row.settled) {
            // The node did not take every agent in: the rest means nothing.
            return row;
        }

        // Fill: every session's first version, unmeasured.
        std::int64_t f0 = now_us();
        swarm.set_fill(std::max(options.rate * 4, 1000.0), f0);
        ok = swarm.run_until(f0 + 120000000, [&] { return swarm.filled() && swarm.settled(); });
        std::fprintf(stderr, "[%zu agents] %zu sessions %s in %.1f s\n", n, options.sessions,
                     ok ? "filled" : "NOT filled", seconds_since(f0));

        // Load: the total rate shared by the agents.
        if (options.rate > 0) {
            std::int64_t warm = now_us();
            swarm.set_load(options.rate, warm, false);
            swarm.run_until(warm + 1000000, [] { return false; });
            std::uint64_t acked0 = swarm.figures().acknowledged;
            hb0 = status_field(probe, "heartbeats");
            Cpu l0 = cpu_of(node.pid);
            own0 = own_ticks();
            std::int64_t m0 = now_us();
            swarm.set_load(options.rate, m0, true);
            swarm.figures().lag_us.clear();
            swarm.run_until(m0 + static_cast<std::int64_t>(options.seconds * 1e6),
                            [] { return false; });
            double load_s = seconds_since(m0);
            Cpu l1 = cpu_of(node.pid);
            own1 = own_ticks();
            hb1 = status_field(probe, "heartbeats");
            std::uint64_t acked = swarm.figures().acknowledged - acked0;
            swarm.set_load(0, 0, false);
            swarm.run_until(now_us() + 30000000, [&] { return swarm.settled(); });
            row.changes_per_s = acked / load_s;
            row.cpu_us_per_change = acked == 0 ? 0 : 1e6 * (l1.total - l0.total) / hz / acked;
            row.main_us_per_change = acked == 0 ? 0 : 1e6 * (l1.main - l0.main) / hz / acked;
            row.load_heartbeats_per_s = (hb1 - hb0) / load_s;
            row.lag_p50_ms = percentile_ms(swarm.figures().lag_us, 0.50);
            row.lag_p99_ms = percentile_ms(swarm.figures().lag_us, 0.99);
            row.swarm_cpu_percent = 100.0 * (own1 - own0) / hz / load_s;
            row.resent = swarm.figures().resent;
        }

        // Restore: the node killed and started empty on the same ports.
        if (options.restore) {
            node.kill_hard();
            std::int64_t r0 = now_us();
            node.start();
            long long sessions = 0;
            std::int64_t next_probe = 0;
            bool stored = false;
            bool all_answered = false;
            bool all_subscribed = false;
            std::string json;
            ok = swarm.run_until(r0 + 120000000, [&] {
                // The swarm's loop goes on meanwhile: asked every 50 ms (a question that got no
                // answer, to the node that was killed, is asked again).
                if (!stored && probe.take(&json)) {
                    sessions = json_number(json, "sessions");
                    if (sessions == static_cast<long long>(options.sessions)) {
                        stored = true;
                        row.restore_stored_s = seconds_since(r0);
                    }
                }
                if (!stored && now_us() >= next_probe) {
                    probe.send();
                    next_probe = now_us() + 50000;
                }
                if (!all_answered || !all_subscribed) {
                    auto [answered, subscribed] = swarm.answered_since(r0);
                    if (!all_answered && answered == n) {
                        all_answered = true;
                        row.restore_answered_s = seconds_since(r0);
                    }
                    if (!all_subscribed && subscribed == n) {
                        all_subscribed = true;
                        row.restore_subscribed_s = seconds_since(r0);
                    }
                }
                return stored && swarm.settled();
            });
            if (ok) {
                row.restore_acked_s = seconds_since(r0);
            }
            std::fprintf(stderr, "[%zu agents] restore: %lld sessions held after %.1f s%s\n", n,
                         sessions, seconds_since(r0), ok ? "" : " (NOT complete)");
        }
        return row;
    }
}

// Every figure of one size, measured; its node stopped in any case, after its agents' sockets
// are closed and libzmq has had time to take their connections down (an engine whose connection
// failed and whose heartbeat timer fired before it was taken down aborted libzmq 4.3.4:
// stream_engine_base.cpp:331, `!_io_error`).
Row run_size(void *context, const Options &options, std::size_t n) {
    NodeProcess node;
    Row row = measure_size(context, options, n, &node);
    usleep(1000000);
    node.stop();
    std::fprintf(stderr,
                 "[%zu agents] load: %.0f changes/s, node %.1f us per change (%.1f its thread), "
                 "%.0f heartbeats/s, lag p50 %.2f ms p99 %.2f ms; restore: answered %.2f s, "
                 "subscribed %.2f s, stored %.2f s, acknowledged %.2f s\n",
                 n, row.changes_per_s, row.cpu_us_per_change, row.main_us_per_change,
                 row.load_heartbeats_per_s, row.lag_p50_ms, row.lag_p99_ms, row.restore_answered_s,
                 row.restore_subscribed_s, row.restore_stored_s, row.restore_acked_s);
    return row;
}

std::vector<std::size_t> parse_list(const char *text) {
    std::vector<std::size_t> out;
    std::string s(text);
    std::size_t at = 0;
    while (at <= s.size()) {
        std::size_t comma = s.find(',', at);
        std::string item =
            s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        std::string digits;
        for (char c : item) {
            if (c != '_' && c != '\'') {
                digits += c;
            }
        }
        if (!digits.empty()) {
            out.push_back(std::strtoull(digits.c_str(), nullptr, 10));
        }
        if (comma == std::string::npos) {
            break;
        }
        at = comma + 1;
    }
    return out;
}

void usage() {
    std::fprintf(stderr,
                 "usage: agent_swarm --node PATH [--agents 100,1000,3000] [--rate 5000] "
                 "[--seconds 5] [--idle-seconds 5] [--sessions 30000] [--size 1024] "
                 "[--io-threads 8] [--connect-rate 1000] [--no-restore] [--log-dir DIR]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char **argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> const char * {
            if (i + 1 >= argc) {
                usage();
            }
            return argv[++i];
        };
        if (arg == "--node") {
            options.node_binary = value();
        } else if (arg == "--agents") {
            options.agents = parse_list(value());
        } else if (arg == "--rate") {
            options.rate = std::atof(value());
        } else if (arg == "--seconds") {
            options.seconds = std::atof(value());
        } else if (arg == "--idle-seconds") {
            options.idle_seconds = std::atof(value());
        } else if (arg == "--sessions") {
            options.sessions = std::strtoull(value(), nullptr, 10);
        } else if (arg == "--size") {
            options.size = std::strtoull(value(), nullptr, 10);
        } else if (arg == "--io-threads") {
            options.io_threads = std::atoi(value());
        } else if (arg == "--connect-rate") {
            options.connect_rate = std::atof(value());
        } else if (arg == "--no-restore") {
            options.restore = false;
        } else if (arg == "--log-dir") {
            options.log_dir = value();
        } else {
            usage();
        }
    }
    if (options.node_binary.empty() || options.agents.empty()) {
        usage();
    }
    std::size_t most = *std::max_element(options.agents.begin(), options.agents.end());
    if (options.sessions < most) {
        options.sessions = most;  // every agent holds a session at least
    }
    // Each agent takes two ZeroMQ sockets here (a descriptor each for its mailbox) and two
    // connections (a descriptor each): 4 per agent, and the node 2 per agent.
    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur != RLIM_INFINITY && 4 * most + 256 > files.rlim_cur) {
        std::fprintf(stderr,
                     "agent_swarm: %zu agents need about %zu descriptors here; the limit is "
                     "%llu (ulimit -n)\n",
                     most, 4 * most + 256, static_cast<unsigned long long>(files.rlim_cur));
        return 1;
    }
    void *context = zmq_ctx_new();
    zmq_ctx_set(context, ZMQ_IO_THREADS, options.io_threads);
    zmq_ctx_set(context, ZMQ_MAX_SOCKETS, static_cast<int>(2 * most + 64));
    std::signal(SIGPIPE, SIG_IGN);

    std::vector<Row> rows;
    for (std::size_t n : options.agents) {
        rows.push_back(run_size(context, options, n));
    }

    std::printf(
        "\none rss_node (--replicas 1), %zu sessions of %zu bytes shared by the agents; load "
        "%.0f changes/s in all for %.0f s; idle %.0f s\n\n",
        options.sessions, options.size, options.rate, options.seconds, options.idle_seconds);
    std::printf("%-34s", "agents");
    for (const Row &r : rows) {
        std::printf("%12zu", r.agents);
    }
    std::printf("\n");
    auto line = [&](const char *label, auto get, const char *format) {
        std::printf("%-34s", label);
        for (const Row &r : rows) {
            std::printf(format, get(r));
        }
        std::printf("\n");
    };
    line(
        "connect, first resend done (s)", [](const Row &r) { return r.connect_s; }, "%12.1f");
    line(
        "agents up after the idle phase", [](const Row &r) { return double(r.up); }, "%12.0f");
    line(
        "every agent settled (1: yes)", [](const Row &r) { return r.settled ? 1.0 : 0.0; },
        "%12.0f");
    line(
        "idle: node CPU (% of a core)", [](const Row &r) { return r.idle_cpu_percent; }, "%12.1f");
    line(
        "  of which its own thread", [](const Row &r) { return r.idle_main_percent; }, "%12.1f");
    line(
        "  of which ZeroMQ I/O", [](const Row &r) { return r.idle_io_percent; }, "%12.1f");
    line(
        "idle: heartbeats/s (node)", [](const Row &r) { return r.idle_heartbeats_per_s; },
        "%12.0f");
    line(
        "idle: ack KiB/s sent", [](const Row &r) { return r.idle_ack_kib_per_s; }, "%12.0f");
    line(
        "idle: shard acks per ack", [](const Row &r) { return r.idle_shard_acks_per_ack; },
        "%12.1f");
    line(
        "node RSS before agents (MiB)", [](const Row &r) { return r.rss_before_mib; }, "%12.1f");
    line(
        "node RSS growth per agent (KiB)", [](const Row &r) { return r.rss_per_agent_kib; },
        "%12.1f");
    line(
        "load: changes/s acknowledged", [](const Row &r) { return r.changes_per_s; }, "%12.0f");
    line(
        "load: node CPU per change (us)", [](const Row &r) { return r.cpu_us_per_change; },
        "%12.1f");
    line(
        "  of which its own thread", [](const Row &r) { return r.main_us_per_change; }, "%12.1f");
    line(
        "load: heartbeats/s (node)", [](const Row &r) { return r.load_heartbeats_per_s; },
        "%12.0f");
    line(
        "load: lag p50 (ms)", [](const Row &r) { return r.lag_p50_ms; }, "%12.2f");
    line(
        "load: lag p99 (ms)", [](const Row &r) { return r.lag_p99_ms; }, "%12.2f");
    line(
        "load: changes sent again (1 s)", [](const Row &r) { return double(r.resent); }, "%12.0f");
    line(
        "load: swarm CPU (% of a core)", [](const Row &r) { return r.swarm_cpu_percent; },
        "%12.0f");
    line(
        "restore: all stored (s)", [](const Row &r) { return r.restore_stored_s; }, "%12.2f");
    line(
        "restore: all acknowledged (s)", [](const Row &r) { return r.restore_acked_s; }, "%12.2f");
    std::fflush(stdout);
    // Last: a connection that libzmq 4.3.4 has not taken down yet when its node stops may abort
    // the process (see run_size), and the table is out by then.
    zmq_ctx_term(context);
    return 0;
}
