// The node's figures for Prometheus (`--metrics`, served by metrics_server.h): everything its
// status JSON shows (node_status.h), as gauges and counters named rss_node_*, each peer labelled
// with its endpoint and name, and the process's resident memory. Socket-free; docs/metrics.md
// names each one.
#pragma once

#include <cstdint>
#include <string>

#include "rss_node/node_status.h"

namespace rhythm::node {

// `resident_bytes`: the process's resident memory (0: unknown).
std::string node_metrics(const NodeStatus &status, std::uint64_t resident_bytes);

// This process's resident memory, from /proc/self/statm; 0 when it cannot be read.
std::uint64_t resident_bytes();

}  // namespace rhythm::node
