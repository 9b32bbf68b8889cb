// The node's status JSON, the answer to a status request (`rss_node status`, the tests, the
// operators' monitoring): built from what the node passes in, in the field order
// docs/rss_node.md lists, which readers may rely on.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rss_node/membership.h"
#include "rss_node/node_counters.h"
#include "rss_node/session_store.h"
#include "wire/messages.h"

namespace rhythm::node {

// What the status shows. The pointers are not null.
struct NodeStatus {
    std::string_view name;
    std::uint64_t uptime_seconds = 0;
    std::string_view updates_endpoint;  // as bound
    std::string_view queries_endpoint;
    const SessionStore *store = nullptr;
    bool full = false;
    wire::ShardSet owned;
    wire::ShardSet short_shards;
    bool ownership_decided = false;
    std::uint64_t replicas = 0;
    const NodeCounters *counters = nullptr;
    std::uint64_t agents = 0;
    std::uint64_t connections_updates = 0;  // accepted and open, on each bound socket
    std::uint64_t connections_queries = 0;
    std::uint64_t unfinished_bytes = 0;  // held for messages not handed over yet (last check)
    bool curve = false;
    std::uint64_t curve_clients = 0;
    std::uint64_t curve_admitted = 0;
    std::uint64_t curve_refused = 0;
    std::uint64_t handshake_failures = 0;
    std::uint64_t metrics_refused = 0;  // what the --metrics server refused or dropped (RN0405)
    const std::vector<Membership::Peer> *peers = nullptr;
    std::uint64_t mono_ms = 0;  // now, on the clock of the peers' last_pong_ms
};

std::string status_json(const NodeStatus &status);

}  // namespace rhythm::node
