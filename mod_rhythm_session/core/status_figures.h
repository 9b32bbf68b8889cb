// The figures the module shows about itself, each once, for both of its pages: server-status
// (status_page.cpp: an HTML table, and `?auto` lines) and the Prometheus metrics
// (metrics_page.cpp, through metrics_text.h). A figure has its ?auto key, its label, its value
// and whether it only grows (a counter) or goes up and down (a gauge).
#pragma once

#include <cstdint>
#include <vector>

#include "core/backup_feed.h"
#include "core/session_cache.h"

namespace rhythm {

struct StatusFigure {
    const char *key;    // the ?auto name, CamelCase: RhythmHits
    const char *label;  // the HTML label, and the metric's help
    std::uint64_t value;
    bool counter;  // only grows (from the server's start)
    // The unit of the value when it is a duration (its key ends Ms or Us): what a metric
    // converts to seconds. 1 otherwise.
    std::uint64_t per_second = 1;
    // The metric's name where the key's would mislead (a gauge whose key ends in Total).
    const char *metric = nullptr;
};

std::vector<StatusFigure> cache_figures(const CacheStats &s);

// The agent's state from its last turn: "not started", "hung" or "running".
const char *agent_state_name(const BackupStats &b, std::int64_t turn_age_us);
std::int64_t agent_turn_age_us(const BackupStats &b);

std::vector<StatusFigure> backup_figures(const BackupStats &b, bool curve,
                                         std::int64_t turn_age_us);

// Milliseconds from a time in the past to now; 0 for none.
std::uint64_t ms_since(WallTime then);

const char *node_state_name(NodeState state);

}  // namespace rhythm
