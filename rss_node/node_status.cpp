// The status JSON: the node's fields and its counters (node_counters.h) in their documented order.
#include "rss_node/node_status.h"

#include "rss_node/json_writer.h"
#include "rss_node/shard_ownership.h"
#include "wire/protocol.h"

namespace rhythm::node {
namespace {

void write_counters(JsonWriter *j, const NodeCounters &counters, CounterGroup group) {
    for (const CounterField &counter : kCounterFields) {
        if (counter.group == group) {
            j->field(counter.name, counters.*counter.member);
        }
    }
}

}  // namespace

std::string status_json(const NodeStatus &s) {
    const SessionStore &store = *s.store;
    const NodeCounters &counters = *s.counters;
    JsonWriter j;
    j.begin_object();
    j.field("name", s.name);
    j.field("protocol_version", std::uint64_t{wire::kProtocolVersion});
    j.field("uptime_seconds", s.uptime_seconds);
    j.field("updates_endpoint", s.updates_endpoint);
    j.field("queries_endpoint", s.queries_endpoint);
    j.field("sessions", store.live_sessions());
    j.field("tombstones", store.tombstones());
    j.field("bytes", store.bytes());
    j.field("payload_bytes", store.payload_bytes());
    j.field("max_memory", store.max_memory());
    j.field_bool("full", s.full);
    j.field("shards_subscribed", s.owned.count());
    j.field("shards_owned", s.owned.count());
    j.field("shards_owned_list", shard_ranges(s.owned));
    j.field("shards_short", s.short_shards.count());
    j.field("shards_short_list", shard_ranges(s.short_shards));
    j.field_bool("ownership_decided", s.ownership_decided);
    write_counters(&j, counters, CounterGroup::kAfterOwnershipDecided);
    j.field("replicas", s.replicas);
    write_counters(&j, counters, CounterGroup::kAfterReplicas);
    j.field("updates_refused", counters.updates_refused());
    write_counters(&j, counters, CounterGroup::kAfterUpdatesRefused);
    j.field("agents", s.agents);
    write_counters(&j, counters, CounterGroup::kAfterAgents);
    j.field("connections_updates", s.connections_updates);
    j.field("connections_queries", s.connections_queries);
    j.field("unfinished_bytes", s.unfinished_bytes);
    j.field_bool("curve", s.curve);
    j.field("curve_clients", s.curve_clients);
    j.field("curve_admitted", s.curve_admitted);
    j.field("curve_refused", s.curve_refused);
    j.field("handshake_failures", s.handshake_failures);
    j.field("metrics_refused", s.metrics_refused);
    j.begin_array("peers");
    for (const auto &p : *s.peers) {
        j.begin_object();
        j.field("endpoint", p.endpoint);
        j.field("name", p.name);
        j.field("state", peer_state_name(p.state));
        j.field("last_seen_ms_ago", p.last_pong_ms == 0 ? 0 : s.mono_ms - p.last_pong_ms);
        j.end_object();
    }
    j.end_array();
    j.begin_array("members");
    j.begin_object();
    j.field("name", s.name);
    j.field("endpoint", s.queries_endpoint);
    j.field("state", "up");
    j.end_object();
    for (const auto &p : *s.peers) {
        j.begin_object();
        j.field("name", p.name);
        j.field("endpoint", p.endpoint);
        j.field("state", peer_state_name(p.state));
        j.end_object();
    }
    j.end_array();
    j.end_object();
    return j.text();
}

}  // namespace rhythm::node
