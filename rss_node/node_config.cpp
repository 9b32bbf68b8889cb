// Parsing and validation of rss_node settings from flags and config files.
#include "rss_node/node_config.h"

#include <cctype>
#include <cstdint>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <utility>

#include "common/endpoint.h"
#include "common/name.h"
#include "common/number.h"
#include "common/size.h"
#include "rss_node/metrics_server.h"

namespace rhythm::node {
namespace {

std::string trim(const std::string &s) {
    std::size_t b = 0;
    std::size_t e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) {
        ++b;
    }
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) {
        --e;
    }
    return s.substr(b, e - b);
}

// Flags that take a value, with their config-file key.
bool is_value_flag(const std::string &flag) {
    return flag == "name" || flag == "updates" || flag == "queries" || flag == "peer" ||
           flag == "replicas" || flag == "max-memory" || flag == "log-level" || flag == "config" ||
           flag == "curve-secret" || flag == "curve-clients" || flag == "max-connections" ||
           flag == "max-connections-per-address" || flag == "max-session-lifetime" ||
           flag == "ipc-mode" || flag == "metrics" || flag == "handover-wait";
}

// "400d", "72h", "90m", "3600s" or "3600" (seconds), or 0 for no bound; at most 100 years.
bool parse_lifetime(const std::string &text, std::uint64_t *seconds, std::string *reason) {
    std::uint64_t n = 0;
    std::string unit;
    if (!split_number(text, &n, &unit, reason)) {
        *reason = "max-session-lifetime must be a duration such as 400d, 72h, 90m or 3600s";
        return false;
    }
    std::uint64_t scale = unit.empty() || unit == "s" ? 1
                          : unit == "m"               ? 60
                          : unit == "h"               ? 3600
                          : unit == "d"               ? 86400
                                                      : 0;
    constexpr std::uint64_t kMaxSeconds = 100ull * 366 * 86400;
    if (scale == 0 || n > kMaxSeconds / scale) {
        *reason =
            "max-session-lifetime must be a duration such as 400d, 72h, 90m or 3600s, "
            "of at most 100 years (0: no bound)";
        return false;
    }
    *seconds = n * scale;
    return true;
}

// "100ms", "2s" or "100" (milliseconds): 0 to 10 s.
bool parse_handover_wait(const std::string &text, std::uint64_t *ms, std::string *reason) {
    std::uint64_t n = 0;
    std::string unit;
    bool ok =
        split_number(text, &n, &unit, reason) && (unit.empty() || unit == "ms" || unit == "s");
    std::uint64_t scale = unit == "s" ? 1000 : 1;
    if (!ok || n > 10000 / scale) {
        *reason = "handover-wait must be a duration such as 100ms or 1s, of at most 10 s (0: off)";
        return false;
    }
    *ms = n * scale;
    return true;
}

}  // namespace

bool apply_setting(NodeConfig *c, const std::string &key, const std::string &value,
                   std::string *reason) {
    if (key == "name") {
        if (!check_name(value, reason)) {
            return false;
        }
        c->name = value;
    } else if (key == "updates" || key == "queries" || key == "peer") {
        // The node binds its own endpoints and connects to its peers'.
        EndpointUse use = key == "peer" ? EndpointUse::kConnect : EndpointUse::kBind;
        if (!check_endpoint(value, use, reason)) {
            return false;
        }
        if (key == "updates") {
            c->updates = value;
        } else if (key == "queries") {
            c->queries = value;
        } else {
            c->peers.push_back(value);
        }
    } else if (key == "replicas") {
        std::uint64_t n = 0;
        if (!parse_count(value, 1, 16, &n, reason)) {
            *reason = "replicas must be a whole number from 1 to 16";
            return false;
        }
        c->replicas = static_cast<unsigned>(n);
    } else if (key == "max-memory") {
        if (!parse_size(value, 0, std::numeric_limits<std::uint64_t>::max(), &c->max_memory,
                        reason)) {
            return false;
        }
    } else if (key == "max-connections" || key == "max-connections-per-address") {
        std::uint64_t n = 0;
        if (!parse_count(value, 1, 1000000, &n, reason)) {
            *reason = key + " must be a whole number from 1 to 1000000";
            return false;
        }
        (key == "max-connections" ? c->max_connections : c->max_connections_per_address) = n;
    } else if (key == "max-session-lifetime") {
        if (!parse_lifetime(value, &c->max_session_lifetime_s, reason)) {
            return false;
        }
    } else if (key == "handover-wait") {
        if (!parse_handover_wait(value, &c->handover_wait_ms, reason)) {
            return false;
        }
    } else if (key == "ipc-mode") {
        // Octal, as chmod takes it; no bits for others: an ipc endpoint is not bounded per client.
        std::size_t used = 0;
        unsigned long mode = 0;
        try {
            mode = std::stoul(value, &used, 8);
        } catch (const std::exception &) {
            used = 0;
        }
        if (value.empty() || used != value.size() || value[0] == '-' || value[0] == '+' ||
            (mode & ~0660ul) != 0 || (mode & 0600) != 0600) {
            *reason =
                "ipc-mode must be an octal mode such as 0660 or 0600: read and write for "
                "the node's user, at most that for its group, nothing for others";
            return false;
        }
        c->ipc_mode = static_cast<unsigned>(mode);
    } else if (key == "metrics") {
        if (!check_metrics_address(value, reason)) {
            return false;
        }
        c->metrics = value;
    } else if (key == "log-level") {
        if (!parse_log_level(value, &c->log_level)) {
            *reason = "log-level must be debug, info, warn or error";
            return false;
        }
    } else if (key == "curve-secret" || key == "curve-clients") {
        // The files are read by load_node_keys() when the node starts and by --check-config.
        (key == "curve-secret" ? c->curve_secret : c->curve_clients) = value;
    } else {
        *reason = "unknown key '" + key + "'";
        return false;
    }
    return true;
}

bool load_config_file(const std::string &path, NodeConfig *config, std::string *error) {
    std::ifstream in(path);
    if (!in) {
        *error = path + ": cannot be read";
        return false;
    }
    NodeConfig from_file = *config;
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        std::string text = trim(line);
        if (text.empty() || text[0] == '#') {
            continue;
        }
        auto eq = text.find('=');
        std::string reason;
        if (eq == std::string::npos) {
            reason = "expected 'key = value'";
        } else {
            std::string key = trim(text.substr(0, eq));
            std::string value = trim(text.substr(eq + 1));
            if (value.empty()) {
                reason = "'" + key + "' has no value";
            } else {
                apply_setting(&from_file, key, value, &reason);
            }
        }
        if (!reason.empty()) {
            *error = path + ":" + std::to_string(number) + ": " + reason;
            return false;
        }
    }
    *config = from_file;
    return true;
}

bool parse_node_command_line(int argc, const char *const *argv, NodeConfig *config,
                             std::string *error) {
    std::vector<std::pair<std::string, std::string>> flags;
    for (int i = 0; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0) {
            *error = "unexpected argument '" + arg + "'";
            return false;
        }
        std::string flag = arg.substr(2);
        std::string value;
        bool has_value = false;
        auto eq = flag.find('=');
        if (eq != std::string::npos) {
            value = flag.substr(eq + 1);
            flag = flag.substr(0, eq);
            has_value = true;
        }
        if (flag == "check-config") {
            config->check_config = true;
            continue;
        }
        if (!is_value_flag(flag)) {
            *error = "unknown option '--" + flag + "' (see rss_node --help)";
            return false;
        }
        if (!has_value) {
            if (i + 1 >= argc) {
                *error = "--" + flag + " needs a value";
                return false;
            }
            value = argv[++i];
        }
        flags.emplace_back(flag, value);
    }
    NodeConfig merged;
    merged.check_config = config->check_config;
    for (const auto &[flag, value] : flags) {
        if (flag == "config") {
            merged.config_file = value;
        }
    }
    if (!merged.config_file.empty() && !load_config_file(merged.config_file, &merged, error)) {
        return false;
    }
    // Peers given on the command line replace the file's list instead of adding to it.
    bool peers_from_flags = false;
    for (const auto &[flag, value] : flags) {
        if (flag == "config") {
            continue;
        }
        if (flag == "peer" && !peers_from_flags) {
            merged.peers.clear();
            peers_from_flags = true;
        }
        std::string reason;
        if (!apply_setting(&merged, flag, value, &reason)) {
            *error = "--" + flag + ": " + reason;
            return false;
        }
    }
    if (!validate_config(merged, error)) {
        return false;
    }
    *config = merged;
    return true;
}

bool validate_config(const NodeConfig &c, std::string *error) {
    std::string where = c.config_file.empty() ? "" : " (command line or " + c.config_file + ")";
    if (c.name.empty()) {
        *error = "no name: set --name or 'name ='" + where;
        return false;
    }
    if (c.updates.empty()) {
        *error = "no updates endpoint: set --updates or 'updates ='" + where;
        return false;
    }
    if (c.queries.empty()) {
        *error = "no queries endpoint: set --queries or 'queries ='" + where;
        return false;
    }
    if (c.updates == c.queries) {
        *error = "updates and queries must be different endpoints";
        return false;
    }
    if (c.curve_secret.empty() != c.curve_clients.empty()) {
        *error =
            "curve-secret and curve-clients go together: a node under CURVE needs its key "
            "and the list of clients it admits";
        return false;
    }
    for (const auto &p : c.peers) {
        if (p == c.queries) {
            *error = "peer " + p + " is this node's own queries endpoint";
            return false;
        }
    }
    return true;
}

}  // namespace rhythm::node
