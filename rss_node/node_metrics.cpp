#include "rss_node/node_metrics.h"

#include <cstdio>
#include <unistd.h>

#include "common/prometheus_text.h"
#include "wire/protocol.h"

namespace rhythm::node {
namespace {

void gauge(PrometheusText *m, std::string_view name, std::string_view help, std::uint64_t value) {
    m->family(name, "gauge", help);
    m->sample(name, {}, value);
}

void counter(PrometheusText *m, std::string_view name, std::string_view help, std::uint64_t value) {
    m->family(name, "counter", help);
    m->sample(name, {}, value);
}

}  // namespace

std::uint64_t resident_bytes() {
    std::FILE *f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) {
        return 0;
    }
    unsigned long long size = 0, resident = 0;
    int got = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return got == 2 && page > 0 ? resident * static_cast<std::uint64_t>(page) : 0;
}

std::string node_metrics(const NodeStatus &s, std::uint64_t resident) {
    const SessionStore &store = *s.store;
    PrometheusText m;
    m.family("rss_node_info", "gauge", "1, labelled with the node's name and protocol version");
    std::string version = std::to_string(wire::kProtocolVersion);
    m.sample("rss_node_info", {{"name", s.name}, {"protocol_version", version}}, std::uint64_t{1});
    gauge(&m, "rss_node_uptime_seconds", "Seconds since the node started", s.uptime_seconds);
    gauge(&m, "rss_node_resident_bytes", "The process's resident memory", resident);
    gauge(&m, "rss_node_sessions", "Live sessions held", store.live_sessions());
    gauge(&m, "rss_node_tombstones", "Tombstones held (deleted sessions, until they expire)",
          store.tombstones());
    gauge(&m, "rss_node_store_bytes", "What the session store holds: records and index tables",
          store.bytes());
    gauge(&m, "rss_node_payload_bytes", "Session data alone", store.payload_bytes());
    gauge(&m, "rss_node_max_memory_bytes", "The store's limit (--max-memory; 0: none)",
          store.max_memory());
    gauge(&m, "rss_node_full", "1 while the store is at its limit and refuses new sessions",
          s.full ? 1 : 0);
    gauge(&m, "rss_node_shards_owned", "Shards this node owns", s.owned.count());
    gauge(&m, "rss_node_shards_short",
          "Shards owned by fewer live nodes than --replicas says (a copy short)",
          s.short_shards.count());
    gauge(&m, "rss_node_ownership_decided", "1 once the node has decided which shards it owns",
          s.ownership_decided ? 1 : 0);
    gauge(&m, "rss_node_replicas", "Owners per shard (--replicas)", s.replicas);
    gauge(&m, "rss_node_agents", "Web servers' agents known", s.agents);
    counter(&m, "rss_node_updates_refused_total",
            "refused_stale + refused_memory + refused_implausible", s.counters->updates_refused());
    for (const CounterField &c : kCounterFields) {
        counter(&m, std::string("rss_node_") + c.name + "_total",
                std::string("The status field ") + c.name + " (docs/rss_node.md)",
                (*s.counters).*c.member);
    }
    m.family("rss_node_connections", "gauge", "Connections accepted and open, per bound socket");
    m.sample("rss_node_connections", {{"socket", "updates"}}, s.connections_updates);
    m.sample("rss_node_connections", {{"socket", "queries"}}, s.connections_queries);
    gauge(&m, "rss_node_unfinished_bytes",
          "Bytes held for messages not handed over yet, by every connection", s.unfinished_bytes);
    gauge(&m, "rss_node_curve", "1 when the node runs under CURVE", s.curve ? 1 : 0);
    gauge(&m, "rss_node_curve_clients", "Client keys listed", s.curve_clients);
    counter(&m, "rss_node_curve_admitted_total", "CURVE handshakes the ZAP handler admitted",
            s.curve_admitted);
    counter(&m, "rss_node_curve_refused_total", "CURVE handshakes the ZAP handler refused",
            s.curve_refused);
    counter(&m, "rss_node_metrics_refused_total",
            "Scrape connections this metrics server refused or dropped (RN0405)",
            s.metrics_refused);
    counter(&m, "rss_node_handshake_failures_total", "Failed handshakes on every socket",
            s.handshake_failures);
    m.family("rss_node_peer_up", "gauge", "Per peer (--peer): 1 when it answers its pings");
    for (const auto &p : *s.peers) {
        m.sample("rss_node_peer_up", {{"peer", p.endpoint}, {"name", p.name}},
                 std::uint64_t{p.state == PeerState::kUp});
    }
    m.family("rss_node_peer_last_seen_seconds", "gauge",
             "Per peer: seconds since its last pong (0: never)");
    for (const auto &p : *s.peers) {
        double ago =
            p.last_pong_ms == 0 ? 0.0 : static_cast<double>(s.mono_ms - p.last_pong_ms) / 1e3;
        m.sample("rss_node_peer_last_seen_seconds", {{"peer", p.endpoint}, {"name", p.name}}, ago);
    }
    return m.text();
}

}  // namespace rhythm::node
