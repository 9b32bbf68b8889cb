// The Prometheus text exposition format (version 0.0.4), written without a server: metric families
// (# HELP, # TYPE) and their samples, help and label values escaped. The module's metrics page
// (mod_rhythm_session/core/module_metrics.h) and rss_node's (rss_node/node_metrics.h) write
// theirs with it; docs/metrics.md lists every metric.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace rhythm {

// A server-status key in snake case: RhythmBackupLagP50Us -> rhythm_backup_lag_p50_us.
std::string metric_name(std::string_view auto_key);

class PrometheusText {
  public:
    struct Label {
        std::string_view name;
        std::string_view value;
    };

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
