// rss_node_bench: measurements for bench/rss_node/run_bench.py, each printed as one JSON line.
//
//   rss_node_bench pubsub-bare SIZE COUNT [FRAMES] bare XPUB->SUB over tcp loopback, msgs/s
//   rss_node_bench echo-bare SIZE COUNT            bare DEALER->ROUTER echo round trips, p50/p99
//   rss_node_bench first-touch MIB                 GB/s of writing MIB of memory just mapped
//                                                  (huge pages advised, as the node's), and of
//                                                  writing it again: what a new session's memory
//                                                  costs the machine beyond the copy
//   rss_node_bench ingest UPDATES QUERIES SIZE COUNT FIRST DISTINCT
//                                                  COUNT updates of SIZE bytes to sessions FIRST..
//                                                  FIRST+DISTINCT-1 (round robin, each round one
//                                                  version higher) published to a node until its
//                                                  status shows them applied
//   rss_node_bench fetch QUERIES COUNT FIRST        fetch round trips of sessions FIRST...
//   rss_node_bench ingest-bank UPDATES,... QUERIES,... SIZE COUNT FIRST SUBSCRIPTIONS
//                                                  COUNT new sessions FIRST.. (version 1) from
//                                                  one publisher connected to every node of a
//                                                  bank, as an agent's, once it has seen
//                                                  SUBSCRIPTIONS subscriptions (the sum of the
//                                                  nodes' owned shards: each session goes to
//                                                  SUBSCRIPTIONS / 1024 nodes), until the sum of
//                                                  the nodes' applied updates shows them all.
//                                                  Prints {"event":"start"} when it starts
//                                                  sending; a line on stdin (not its end)
//                                                  stops the sending early (what was sent is
//                                                  still waited for).
//                                                  Times are CLOCK_MONOTONIC seconds.
//
// With RHYTHM_BENCH_CURVE_SERVER (the bank's .pub) and RHYTHM_BENCH_CURVE_SECRET (a listed
// client's .key) set, the ingest and fetch clients are CURVE clients of a node under CURVE.
//
// Publishers use XPUB with ZMQ_XPUB_NODROP and blocking sends, so neither side loses messages
// and both rates are lossless rates. Bare and node runs share the method: the clock runs from
// the first send to the moment the receiver has everything.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <vector>
#include <zmq.h>

#include "rss_node/node_server.h"
#include "wire/curve.h"
#include "wire/messages.h"
#include "wire/zmq_io.h"

namespace wire = rhythm::wire;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

int free_tcp_endpoint_socket(void *socket, std::string *endpoint) {
    if (zmq_bind(socket, "tcp://127.0.0.1:*") != 0) {
        return -1;
    }
    char buf[256];
    std::size_t len = sizeof buf;
    zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, buf, &len);
    *endpoint = buf;
    return 0;
}

// An XPUB that blocks instead of dropping, after waiting for `subscriptions` subscriptions.
// Makes `socket` a CURVE client when the environment says so (see the top of the file).
void *secured(void *socket) {
    const char *server = std::getenv("RHYTHM_BENCH_CURVE_SERVER");
    const char *secret = std::getenv("RHYTHM_BENCH_CURVE_SECRET");
    if (server != nullptr && secret != nullptr) {
        wire::CurveClientKeys keys;
        std::string error;
        if (!wire::load_client_keys(server, secret, &keys, &error) ||
            !wire::make_curve_client(socket, keys)) {
            std::fprintf(stderr, "rss_node_bench: CURVE: %s\n", error.c_str());
            std::exit(2);
        }
    }
    return socket;
}

// An agent's publisher, connected to every endpoint; returns once `subscriptions` have arrived.
// Verbose, so that a node's subscription of a topic another node has too is counted.
void *lossless_publisher(void *context, const std::vector<std::string> &endpoints,
                         std::size_t subscriptions) {
    void *pub = secured(zmq_socket(context, ZMQ_XPUB));
    int one = 1;
    int zero = 0;
    zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &one, sizeof one);
    zmq_setsockopt(pub, ZMQ_XPUB_VERBOSE, &one, sizeof one);
    zmq_setsockopt(pub, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt(pub, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(pub, ZMQ_LINGER, &zero, sizeof zero);
    for (const auto &endpoint : endpoints) {
        zmq_connect(pub, endpoint.c_str());
    }
    std::size_t seen = 0;
    char buf[16];
    while (seen < subscriptions) {
        if (zmq_recv(pub, buf, sizeof buf, 0) > 0 && buf[0] == 1) {
            seen++;
        }
    }
    return pub;
}

void print_latencies(const char *what, std::vector<double> &us) {
    std::sort(us.begin(), us.end());
    auto pct = [&](double p) { return us[static_cast<std::size_t>(p * (us.size() - 1))]; };
    std::printf(
        "{\"bench\":\"%s\",\"count\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n", what,
        us.size(), pct(0.5), pct(0.99), us.back());
}

// frames 1: one frame of SIZE bytes (the shape of an update since protocol version 3); frames 3:
// the shape of an update of version 2 (2-byte topic, 2-byte header, SIZE-byte body).
int pubsub_bare(std::size_t size, std::size_t count, std::size_t frames) {
    void *sub_context = zmq_ctx_new();
    void *pub_context = zmq_ctx_new();
    void *sub = zmq_socket(sub_context, ZMQ_SUB);
    // The receive queue rss_node's SUB has, so that only the node's work differs.
    int node_hwm = rhythm::node::NodeServer::kUpdatesHighWaterMark;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &node_hwm, sizeof node_hwm);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    std::string endpoint;
    free_tcp_endpoint_socket(sub, &endpoint);
    std::atomic<bool> done{false};
    double elapsed = 0;
    Clock::time_point start;
    std::atomic<bool> started{false};
    std::thread receiver([&] {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        for (std::size_t i = 0; i < count;) {
            zmq_msg_recv(&msg, sub, 0);
            i += zmq_msg_more(&msg) ? 0 : 1;
        }
        zmq_msg_close(&msg);
        while (!started) {
        }
        elapsed = seconds_since(start);
        done = true;
    });
    void *pub = lossless_publisher(pub_context, {endpoint}, 1);
    std::string payload(size, 'p');
    start = Clock::now();
    started = true;
    for (std::size_t i = 0; i < count; ++i) {
        if (frames == 3) {
            zmq_send(pub, "\x00\x01", 2, ZMQ_SNDMORE);
            zmq_send(pub, "\x01\x01", 2, ZMQ_SNDMORE);
        }
        zmq_send(pub, payload.data(), payload.size(), 0);
    }
    receiver.join();
    std::printf(
        "{\"bench\":\"pubsub-bare\",\"size\":%zu,\"count\":%zu,\"frames\":%zu,"
        "\"seconds\":%.3f,\"per_second\":%.0f}\n",
        size, count, frames, elapsed, count / elapsed);
    zmq_close(pub);
    zmq_close(sub);
    zmq_ctx_term(pub_context);
    zmq_ctx_term(sub_context);
    return 0;
}

int echo_bare(std::size_t size, std::size_t count) {
    void *context = zmq_ctx_new();
    void *router = zmq_socket(context, ZMQ_ROUTER);
    std::string endpoint;
    free_tcp_endpoint_socket(router, &endpoint);
    std::thread echo([&] {
        rhythm::wire::ReceivedMessage m;
        for (std::size_t i = 0; i < count + 1; ++i) {
            m.receive(router, 0);
            wire::Frames reply;
            std::string id(m.frames()[0]);
            for (std::size_t f = 1; f < m.size(); ++f) {
                reply.emplace_back(m.frames()[f]);
            }
            rhythm::wire::send_frames(router, &id, reply, 0);
        }
    });
    void *dealer = zmq_socket(context, ZMQ_DEALER);
    zmq_connect(dealer, endpoint.c_str());
    std::string payload(size, 'e');
    std::vector<char> buf(size + 16);
    std::vector<double> us;
    us.reserve(count);
    zmq_send(dealer, payload.data(), payload.size(), 0);  // warm the connection
    zmq_recv(dealer, buf.data(), buf.size(), 0);
    for (std::size_t i = 0; i < count; ++i) {
        auto t0 = Clock::now();
        zmq_send(dealer, payload.data(), payload.size(), 0);
        zmq_recv(dealer, buf.data(), buf.size(), 0);
        us.push_back(seconds_since(t0) * 1e6);
    }
    echo.join();
    print_latencies("echo-bare", us);
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(context);
    return 0;
}

wire::SessionKey key_number(std::uint64_t n) {
    wire::SessionKey k;
    // Spread like random IDs: the shard hash sees every byte change.
    std::uint64_t a = n * 0x9e3779b97f4a7c15ULL + 1;
    std::uint64_t b = (n ^ 0xdeadbeefcafef00dULL) * 0xbf58476d1ce4e5b9ULL;
    std::memcpy(k.bytes.data(), &a, 8);
    std::memcpy(k.bytes.data() + 8, &b, 8);
    return k;
}

std::uint64_t node_applied(void *dealer, std::uint64_t *request_id) {
    std::uint64_t id = ++*request_id;
    rhythm::wire::send_frames(dealer, nullptr, wire::encode_message(wire::StatusRequest{id}), 0);
    rhythm::wire::ReceivedMessage m;
    for (;;) {
        m.receive(dealer, 0);
        wire::Message reply;
        if (wire::decode_message(wire::FrameSpan(m.frames(), m.size()), &reply).ok()) {
            if (auto *s = std::get_if<wire::StatusReply>(&reply); s && s->request_id == id) {
                std::string json(s->json);
                auto at = json.find("\"updates_applied\":");
                auto refused = json.find("\"updates_refused\":");
                // A bank's node may have had a new session from a peer's snapshot first: its
                // update is then a duplicate.
                auto duplicate = json.find("\"updates_duplicate\":");
                return std::strtoull(json.c_str() + at + 18, nullptr, 10) +
                       std::strtoull(json.c_str() + refused + 18, nullptr, 10) +
                       std::strtoull(json.c_str() + duplicate + 20, nullptr, 10);
            }
        }
    }
}

// One agent's stream of updates of `size` bytes, encoded once and patched in place for each
// message: the publisher's CPU goes to ZeroMQ, not to copies.
class UpdateStream {
  public:
    UpdateStream(std::uint8_t agent, std::size_t size) : data_(size, 's') {
        wire::Published message;
        message.sender.agent_id.fill(agent);
        message.sender.epoch = 1;
        message.sender.sequence = 1;
        message.sender.shard_sequence = 1;
        message.record.version = 1;
        message.record.origin = "web1";
        message.record.data = data_;
        frames_ = wire::encode_published(message);
    }

    // The next message of the stream: `key` at `version`.
    const wire::Frames &next(const wire::SessionKey &key, std::uint64_t version) {
        std::uint32_t shard = wire::shard_of(key);
        std::string &frame = frames_[0];
        frame.replace(kTopicAt, wire::kTopicBytes, wire::topic_for_shard(shard));
        put(kSequenceAt, ++sequence_);
        put(kShardSequenceAt, ++shard_sequences_[shard]);
        put(kVersionAt, version);
        std::memcpy(&frame[kKeyAt], key.bytes.data(), key.bytes.size());
        return frames_;
    }

  private:
    // Offsets in the message's one frame (docs/protocol.md, published messages).
    static constexpr std::size_t kTopicAt = 0;
    static constexpr std::size_t kSequenceAt = wire::kPublishedBodyOffset + wire::kAgentIdBytes + 8;
    static constexpr std::size_t kShardSequenceAt = kSequenceAt + 8;
    static constexpr std::size_t kKeyAt = kShardSequenceAt + 8;
    static constexpr std::size_t kVersionAt = kKeyAt + wire::kSessionKeyBytes;

    void put(std::size_t at, std::uint64_t value) {
        for (int b = 0; b < 8; ++b) {
            frames_[0][at + b] = static_cast<char>(value >> (56 - 8 * b));
        }
    }

    std::string data_;
    wire::Frames frames_;
    std::uint64_t sequence_ = 0;
    std::vector<std::uint64_t> shard_sequences_ = std::vector<std::uint64_t>(wire::kShardCount);
};

int ingest(const std::string &updates, const std::string &queries, std::size_t size,
           std::size_t count, std::uint64_t first, std::size_t distinct) {
    void *context = zmq_ctx_new();
    void *dealer = secured(zmq_socket(context, ZMQ_DEALER));
    zmq_connect(dealer, queries.c_str());
    std::uint64_t request_id = 0;
    std::uint64_t before = node_applied(dealer, &request_id);
    void *pub = lossless_publisher(context, {updates}, wire::kShardCount);
    UpdateStream stream(7, size);
    auto start = Clock::now();
    for (std::size_t i = 0; i < count; ++i) {
        rhythm::wire::send_frames(
            pub, nullptr, stream.next(key_number(first + i % distinct), 1 + i / distinct), 0);
    }
    double send_seconds = seconds_since(start);
    while (node_applied(dealer, &request_id) < before + count) {
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    double elapsed = seconds_since(start);
    std::printf(
        "{\"bench\":\"ingest\",\"size\":%zu,\"count\":%zu,\"distinct\":%zu,\"seconds\":%.3f,"
        "\"send_seconds\":%.3f,\"per_second\":%.0f}\n",
        size, count, distinct, elapsed, send_seconds, count / elapsed);
    zmq_close(pub);
    zmq_close(dealer);
    zmq_ctx_term(context);
    return 0;
}

std::vector<std::string> split_list(const std::string &text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at <= text.size()) {
        std::size_t comma = text.find(',', at);
        if (comma == std::string::npos) {
            comma = text.size();
        }
        if (comma > at) {
            out.push_back(text.substr(at, comma - at));
        }
        at = comma + 1;
    }
    return out;
}

double monotonic_seconds(Clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

int ingest_bank(const std::string &updates_list, const std::string &queries_list, std::size_t size,
                std::size_t count, std::uint64_t first, std::size_t subscriptions) {
    std::vector<std::string> updates = split_list(updates_list);
    std::vector<std::string> queries = split_list(queries_list);
    std::size_t copies = subscriptions / wire::kShardCount;
    if (updates.empty() || queries.empty() || copies == 0 ||
        subscriptions % wire::kShardCount != 0) {
        std::fprintf(stderr, "ingest-bank: endpoints, and SUBSCRIPTIONS a multiple of %zu\n",
                     static_cast<std::size_t>(wire::kShardCount));
        return 2;
    }
    void *context = zmq_ctx_new();
    std::vector<void *> dealers;
    std::uint64_t request_id = 0;
    auto applied = [&] {
        std::uint64_t sum = 0;
        for (void *dealer : dealers) {
            sum += node_applied(dealer, &request_id);
        }
        return sum;
    };
    for (const auto &endpoint : queries) {
        dealers.push_back(secured(zmq_socket(context, ZMQ_DEALER)));
        zmq_connect(dealers.back(), endpoint.c_str());
    }
    void *pub = lossless_publisher(context, updates, subscriptions);
    std::uint64_t before = applied();
    std::atomic<bool> stop{false};
    std::thread stopper([&] {
        int c;
        while ((c = std::getchar()) != EOF && c != '\n') {
        }
        stop = c == '\n';  // end of input alone does not stop it
    });
    stopper.detach();  // may still wait on stdin when the sending is over
    UpdateStream stream(9, size);
    auto start = Clock::now();
    std::printf("{\"event\":\"start\",\"t\":%.6f}\n", monotonic_seconds(start));
    std::fflush(stdout);
    std::size_t sent = 0;
    for (; sent < count && !stop; ++sent) {
        rhythm::wire::send_frames(pub, nullptr, stream.next(key_number(first + sent), 1), 0);
    }
    auto sent_at = Clock::now();
    while (applied() < before + copies * sent) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    auto done = Clock::now();
    double elapsed = std::chrono::duration<double>(done - start).count();
    std::printf(
        "{\"bench\":\"ingest-bank\",\"size\":%zu,\"sent\":%zu,\"copies\":%zu,"
        "\"start_t\":%.6f,\"sent_t\":%.6f,\"done_t\":%.6f,\"seconds\":%.3f,"
        "\"per_second\":%.0f,\"applied_per_second\":%.0f}\n",
        size, sent, copies, monotonic_seconds(start), monotonic_seconds(sent_at),
        monotonic_seconds(done), elapsed, sent / elapsed, copies * sent / elapsed);
    std::fflush(stdout);
    zmq_close(pub);
    for (void *dealer : dealers) {
        zmq_close(dealer);
    }
    zmq_ctx_term(context);
    // The stdin reader may still be blocked: leave without waiting for it.
    std::_Exit(0);
}

int fetch(const std::string &queries, std::size_t count, std::uint64_t first) {
    void *context = zmq_ctx_new();
    void *dealer = secured(zmq_socket(context, ZMQ_DEALER));
    zmq_connect(dealer, queries.c_str());
    std::vector<double> us;
    us.reserve(count);
    rhythm::wire::ReceivedMessage m;
    std::size_t found = 0;
    for (std::size_t i = 0; i <= count; ++i) {
        auto t0 = Clock::now();
        rhythm::wire::send_frames(
            dealer, nullptr, wire::encode_message(wire::Fetch{i + 1, key_number(first + i)}), 0);
        m.receive(dealer, 0);
        double t = seconds_since(t0) * 1e6;
        wire::Message reply;
        if (wire::decode_message(wire::FrameSpan(m.frames(), m.size()), &reply).ok()) {
            auto *r = std::get_if<wire::FetchReply>(&reply);
            found += r && r->status == wire::FetchStatus::kFound ? 1 : 0;
        }
        if (i > 0) {  // the first one pays for the connection
            us.push_back(t);
        }
    }
    if (found < count) {
        std::fprintf(stderr, "fetch: only %zu of %zu found\n", found, count + 1);
    }
    print_latencies("fetch", us);
    zmq_close(dealer);
    zmq_ctx_term(context);
    return 0;
}

std::size_t number(const char *s) {
    return static_cast<std::size_t>(std::strtoull(s, nullptr, 10));
}

}  // namespace

int first_touch(std::size_t mib) {
    std::size_t bytes = mib << 20;
    void *memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        std::perror("mmap");
        return 1;
    }
    madvise(memory, bytes, MADV_HUGEPAGE);
    auto *p = static_cast<volatile char *>(memory);
    auto write_all = [&] {
        Clock::time_point start = Clock::now();
        for (std::size_t at = 0; at < bytes; at += 64) {
            p[at] = 1;
        }
        return bytes / seconds_since(start) / 1e9;
    };
    double first = write_all();
    double again = write_all();
    std::printf(
        "{\"bench\":\"first-touch\",\"mib\":%zu,\"first_gb_per_s\":%.2f,"
        "\"again_gb_per_s\":%.2f}\n",
        mib, first, again);
    munmap(memory, bytes);
    return 0;
}

int main(int argc, char **argv) {
    // rss_node's malloc: without it glibc gives a ZeroMQ thread's freed buffers back to the
    // kernel (madvise, a TLB flush) and faults them in again, which slowed the bare PUB->SUB at
    // 4 KiB below the node's own ingest. The same malloc on both sides leaves the node's own
    // work as the difference.
    rhythm::node::use_node_malloc_settings();
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "pubsub-bare" && (argc == 4 || argc == 5)) {
        return pubsub_bare(number(argv[2]), number(argv[3]), argc == 5 ? number(argv[4]) : 1);
    }
    if (mode == "first-touch" && argc == 3) {
        return first_touch(number(argv[2]));
    }
    if (mode == "echo-bare" && argc == 4) {
        return echo_bare(number(argv[2]), number(argv[3]));
    }
    if (mode == "ingest" && argc == 8) {
        return ingest(argv[2], argv[3], number(argv[4]), number(argv[5]), number(argv[6]),
                      std::max<std::size_t>(1, number(argv[7])));
    }
    if (mode == "ingest-bank" && argc == 8) {
        return ingest_bank(argv[2], argv[3], number(argv[4]), number(argv[5]), number(argv[6]),
                           number(argv[7]));
    }
    if (mode == "fetch" && argc == 5) {
        return fetch(argv[2], number(argv[3]), number(argv[4]));
    }
    std::fprintf(stderr,
                 "usage: see the comment at the top of bench/rss_node/rss_node_bench.cpp\n");
    return 2;
}
