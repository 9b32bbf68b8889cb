// The Prometheus text exposition format (version 0.0.4), written without httpd: metric families
// (# HELP, # TYPE) and their samples, label values escaped. A status figure (status_figures.h)
// becomes one family: its ?auto key in snake case (RhythmBackupStaleDropped ->
// rhythm_backup_stale_dropped), `_total` after a counter's name, a duration in seconds (a key
// ending in Ms or Us, its unit dropped from the name). docs/metrics.md lists every metric.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "core/status_figures.h"

namespace rhythm {

// RhythmBackupLagP50Us -> rhythm_backup_lag_p50_us.
std::string metric_name(std::string_view auto_key);

class MetricsText {
  public:
    struct Label {
        std::string_view name;
        std::string_view value;
    };

    // One family of one sample from a figure.
    void figure(const StatusFigure &f);
    // A family's header; `type` is "counter", "gauge" or "summary".
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value);
    void sample(std::string_view name, std::initializer_list<Label> labels, double value);

    const std::string &text() const { return text_; }

  private:
    void sample_start(std::string_view name, std::initializer_list<Label> labels);

    std::string text_;
};

}  // namespace rhythm
