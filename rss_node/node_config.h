// rss_node's settings: from the command line, from a config file of the same keys, or both
// (the command line wins). Every problem is reported with where it came from: "FILE:LINE: reason"
// for the file, "--flag: reason" for the command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rss_node/log.h"

namespace rhythm::node {

struct NodeConfig {
    std::string name;                // this node's name in the bank (rendezvous hashing)
    std::string updates;             // SUB bind endpoint for published updates
    std::string queries;             // ROUTER bind endpoint for fetches, heartbeats, peers
    std::vector<std::string> peers;  // other nodes' query endpoints
    unsigned replicas = 2;           // owners per shard
    std::uint64_t max_memory = 0;    // store limit in bytes, 0 for none
    // Connections each bound socket accepts, and from one client address; 0: the default
    // (max_connections: 4096, or less where the open-file limit is lower; see rss_node.md).
    std::uint64_t max_connections = 0;
    std::uint64_t max_connections_per_address = 64;
    // How far ahead a session's expiry may be, in seconds; 0: any. No browser keeps a cookie
    // longer than 400 days (Chrome's cap), so no session outlives that.
    std::uint64_t max_session_lifetime_s = 400 * 86400;
    // The permissions of an ipc:// endpoint's socket file: who may connect to it. Its measures of
    // unfinished messages and client addresses do not apply to ipc (rss_node.md), so the file
    // admits only the node's user and group.
    unsigned ipc_mode = 0660;
    // How long a fetch of a session another server made waits for that server's newer copy
    // (handover_waits.h), in ms; 0: it does not wait, the server is not asked.
    std::uint64_t handover_wait_ms = 150;
    // Where to serve the node's metrics for Prometheus (GET /metrics): "ADDRESS:PORT", empty
    // for off.
    std::string metrics;
    LogLevel log_level = LogLevel::kInfo;
    std::string curve_secret;   // the bank's secret key file: every socket runs under CURVE
    std::string curve_clients;  // the client public keys admitted (re-read on SIGHUP)
    std::string config_file;    // --config, if given
    bool check_config = false;
};

// Applies one `key = value` setting; on failure `*reason` says why.
bool apply_setting(NodeConfig *config, const std::string &key, const std::string &value,
                   std::string *reason);

// Reads a config file into `config`. On failure `*error` is "FILE:LINE: reason".
bool load_config_file(const std::string &path, NodeConfig *config, std::string *error);

// The daemon's command line (after the program name): reads --config first, then applies the
// flags over it, then validates. On failure `*error` says which flag or line and why.
bool parse_node_command_line(int argc, const char *const *argv, NodeConfig *config,
                             std::string *error);

// Checks that the merged settings make a node: required keys present, values consistent.
bool validate_config(const NodeConfig &config, std::string *error);

}  // namespace rhythm::node
