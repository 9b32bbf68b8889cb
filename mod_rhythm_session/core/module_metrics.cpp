#include "core/module_metrics.h"

#include <cstring>

#include "core/status_figures.h"

namespace rhythm {
namespace {

bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

constexpr double kMicrosecondsPerSecond = 1e6;
constexpr double kMillisecondsPerSecond = 1e3;

// The lag's percentiles go in one summary, not as gauges of their own.
bool in_lag_summary(const StatusFigure &f) {
    return std::strcmp(f.key, "RhythmBackupLagP50Us") == 0 ||
           std::strcmp(f.key, "RhythmBackupLagP99Us") == 0;
}

void agent_state(PrometheusText *m, const char *state) {
    m->family("rhythm_backup_agent_state", "gauge",
              "The backup agent's state: 1 for the one it is in (running, hung: no turn of its "
              "loop for 4 s, not started)");
    for (const char *s : {"running", "hung", "not started"}) {
        m->sample("rhythm_backup_agent_state", {{"state", s}},
                  std::uint64_t{std::strcmp(s, state) == 0});
    }
}

void lag_summary(PrometheusText *m, const BackupStats &b) {
    m->family("rhythm_backup_lag_seconds", "summary",
              "Save to acknowledgement by the bank, over the last 10 to 20 s; _count: every "
              "acknowledgement since the server started");
    m->sample("rhythm_backup_lag_seconds", {{"quantile", "0.5"}},
              static_cast<double>(b.lag_p50_us) / kMicrosecondsPerSecond);
    m->sample("rhythm_backup_lag_seconds", {{"quantile", "0.99"}},
              static_cast<double>(b.lag_p99_us) / kMicrosecondsPerSecond);
    m->sample("rhythm_backup_lag_seconds_count", {}, b.acknowledged);
}

// One family per figure of the nodes, a sample per node.
void nodes(PrometheusText *m, const std::vector<NodeReport> &reports) {
    struct Column {
        const char *name;
        const char *help;
        double (*value)(const NodeReport &);
    };
    static const Column kColumns[] = {
        {"rhythm_backup_node_up", "1 when the node answers (up, or full), 0 when it does not",
         [](const NodeReport &n) {
             return n.state == NodeState::kUp || n.state == NodeState::kFull ? 1.0 : 0.0;
         }},
        {"rhythm_backup_node_full",
         "1 when the node has refused changes for lack of memory and has had no room since",
         [](const NodeReport &n) { return n.state == NodeState::kFull ? 1.0 : 0.0; }},
        {"rhythm_backup_node_last_answer_seconds", "Seconds since the node last answered",
         [](const NodeReport &n) {
             return static_cast<double>(ms_since(WallTime(n.last_answer_us))) /
                    kMillisecondsPerSecond;
         }},
        {"rhythm_backup_node_unacknowledged",
         "Changes published to the node (this agent) that it has not acknowledged",
         [](const NodeReport &n) { return static_cast<double>(n.unacknowledged); }},
        {"rhythm_backup_node_oldest_unacknowledged_seconds",
         "Age of the oldest change the node has not acknowledged (0: none)",
         [](const NodeReport &n) {
             return static_cast<double>(ms_since(WallTime(n.oldest_unacknowledged_us))) /
                    kMillisecondsPerSecond;
         }},
        {"rhythm_backup_node_refused",
         "Changes the node refused for lack of memory (since this agent started)",
         [](const NodeReport &n) { return static_cast<double>(n.refused); }},
    };
    for (const Column &c : kColumns) {
        m->family(c.name, "gauge", c.help);
        for (const NodeReport &n : reports) {
            m->sample(
                c.name,
                {{"node", std::string_view(n.endpoint, strnlen(n.endpoint, sizeof n.endpoint))},
                 {"name", std::string_view(n.name, strnlen(n.name, sizeof n.name))}},
                c.value(n));
        }
    }
}

}  // namespace

void add_figure(PrometheusText *m, const StatusFigure &f) {
    std::string name = f.metric != nullptr ? f.metric : metric_name(f.key);
    if (f.per_second != 1) {
        // A duration: in seconds, as Prometheus's conventions have it.
        if (ends_with(name, "_ms") || ends_with(name, "_us")) {
            name.resize(name.size() - 3);
        }
        name += "_seconds";
    }
    if (f.counter) {
        name += "_total";
    }
    m->family(name, f.counter ? "counter" : "gauge", f.label);
    if (f.per_second != 1) {
        m->sample(name, {}, static_cast<double>(f.value) / static_cast<double>(f.per_second));
    } else {
        m->sample(name, {}, f.value);
    }
}

std::string module_metrics(const CacheStats &cache, const BackupStats *backup, bool curve,
                           std::int64_t agent_turn_age_us) {
    PrometheusText m;
    for (const StatusFigure &f : cache_figures(cache)) {
        add_figure(&m, f);
    }
    if (backup != nullptr) {
        for (const StatusFigure &f : backup_figures(*backup, curve, agent_turn_age_us)) {
            if (!in_lag_summary(f)) {
                add_figure(&m, f);
            }
        }
        agent_state(&m, agent_state_name(*backup, agent_turn_age_us));
        lag_summary(&m, *backup);
        nodes(&m, backup->node_reports);
    }
    return m.text();
}

}  // namespace rhythm
