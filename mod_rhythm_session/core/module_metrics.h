// Every figure of the module's server-status sections as Prometheus metrics (metrics_page.cpp
// serves them under `SetHandler rhythm-metrics`): the cache's and the backup's figures
// (status_figures.h), the agent's state, the acknowledgement lag as a summary, and each node's
// figures labelled with its endpoint and name. docs/metrics.md names each one.
#pragma once

#include <cstdint>
#include <string>

#include "common/prometheus_text.h"
#include "core/backup_feed.h"
#include "core/session_cache.h"
#include "core/status_figures.h"

namespace rhythm {

// One family of one sample from a figure: its ?auto key in snake case (RhythmBackupStaleDropped ->
// rhythm_backup_stale_dropped) or its `metric` name, `_total` after a counter's name, a duration
// in seconds (a key ending in Ms or Us, its unit dropped from the name).
void add_figure(PrometheusText *m, const StatusFigure &f);

// `backup`: null when backup is off. `agent_turn_age_us`: agent_turn_age_us(*backup).
std::string module_metrics(const CacheStats &cache, const BackupStats *backup, bool curve,
                           std::int64_t agent_turn_age_us);

}  // namespace rhythm
