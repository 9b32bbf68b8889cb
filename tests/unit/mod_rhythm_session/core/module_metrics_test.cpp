// The Prometheus text the module serves (module_metrics.h): figures as counters and gauges,
// durations in seconds, and the whole page's families, each node labelled.
#include "core/module_metrics.h"

#include <boost/test/unit_test.hpp>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

using rhythm::StatusFigure;

namespace {

// The page's `# TYPE` lines: {family: type}; fails on a family typed twice.
std::map<std::string, std::string> families(const std::string &text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("# TYPE ", 0) == 0) {
            std::istringstream words(line.substr(7));
            std::string name, type;
            words >> name >> type;
            BOOST_TEST(out.count(name) == 0u, name);
            out[name] = type;
        }
    }
    return out;
}

bool has_line(const std::string &text, const std::string &line) {
    return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

rhythm::NodeReport node(const char *endpoint, const char *name, rhythm::NodeState state) {
    rhythm::NodeReport n{};
    std::strncpy(n.endpoint, endpoint, sizeof n.endpoint - 1);
    std::strncpy(n.name, name, sizeof n.name - 1);
    n.state = state;
    n.unacknowledged = 3;
    return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(module_metrics)

BOOST_AUTO_TEST_CASE(a_counter_ends_in_total_and_a_duration_is_in_seconds) {
    rhythm::PrometheusText m;
    rhythm::add_figure(&m, StatusFigure{"RhythmHits", "Hits", 12, true});
    rhythm::add_figure(&m, StatusFigure{"RhythmBackupOldestUnacknowledgedMs", "Oldest (ms ago)",
                                        1234, false, 1000});
    rhythm::add_figure(&m, StatusFigure{"RhythmSessions", "Sessions", 7, false});
    BOOST_TEST(m.text() ==
               "# HELP rhythm_hits_total Hits\n# TYPE rhythm_hits_total counter\n"
               "rhythm_hits_total 12\n"
               "# HELP rhythm_backup_oldest_unacknowledged_seconds Oldest (ms ago)\n"
               "# TYPE rhythm_backup_oldest_unacknowledged_seconds gauge\n"
               "rhythm_backup_oldest_unacknowledged_seconds 1.234\n"
               "# HELP rhythm_sessions Sessions\n# TYPE rhythm_sessions gauge\n"
               "rhythm_sessions 7\n");
}

BOOST_AUTO_TEST_CASE(the_page_has_every_family_once_and_each_node_labelled) {
    rhythm::CacheStats cache;
    cache.sessions = 5;
    cache.hits = 40;
    rhythm::BackupStats backup;
    backup.nodes_total = 2;
    backup.nodes_up = 1;
    backup.lag_p50_us = 1500;
    backup.lag_p99_us = 250000;
    backup.acknowledged = 99;
    backup.node_reports = {node("tcp://10.0.0.1:5557", "node-a", rhythm::NodeState::kUp),
                           node("tcp://10.0.0.2:5557", "", rhythm::NodeState::kDown)};
    std::string text = rhythm::module_metrics(cache, &backup, false, 0);
    auto types = families(text);
    BOOST_TEST(types["rhythm_sessions"] == "gauge");
    BOOST_TEST(types["rhythm_hits_total"] == "counter");
    BOOST_TEST(types["rhythm_backup_acknowledged_total"] == "counter");
    BOOST_TEST(types["rhythm_backup_lag_seconds"] == "summary");
    BOOST_TEST(types.count("rhythm_backup_lag_p50_seconds") == 0u);  // in the summary
    BOOST_TEST(types["rhythm_backup_node_up"] == "gauge");
    BOOST_TEST(has_line(text, "rhythm_sessions 5"));
    BOOST_TEST(has_line(text, "rhythm_backup_nodes_up 1"));
    BOOST_TEST(has_line(text, "rhythm_backup_lag_seconds{quantile=\"0.5\"} 0.0015"));
    BOOST_TEST(has_line(text, "rhythm_backup_lag_seconds{quantile=\"0.99\"} 0.25"));
    BOOST_TEST(has_line(text, "rhythm_backup_lag_seconds_count 99"));
    BOOST_TEST(
        has_line(text, "rhythm_backup_node_up{node=\"tcp://10.0.0.1:5557\",name=\"node-a\"} 1"));
    BOOST_TEST(has_line(text, "rhythm_backup_node_up{node=\"tcp://10.0.0.2:5557\",name=\"\"} 0"));
    BOOST_TEST(has_line(text,
                        "rhythm_backup_node_unacknowledged{node=\"tcp://10.0.0.1:5557\","
                        "name=\"node-a\"} 3"));
    BOOST_TEST(has_line(text, "rhythm_backup_agent_state{state=\"not started\"} 1"));
    BOOST_TEST(has_line(text, "rhythm_backup_agent_state{state=\"running\"} 0"));
    // Backup off: the cache's figures only.
    std::string cache_only = rhythm::module_metrics(cache, nullptr, false, 0);
    BOOST_TEST(families(cache_only).count("rhythm_backup_nodes") == 0u);
    BOOST_TEST(has_line(cache_only, "rhythm_hits_total 40"));
}

BOOST_AUTO_TEST_SUITE_END()
