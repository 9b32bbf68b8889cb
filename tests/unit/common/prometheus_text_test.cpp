// Prometheus's text format as the module and rss_node write it (common/prometheus_text.h):
// metric names from the status keys, families, escaped help and label values.
#include "common/prometheus_text.h"

#include <boost/test/unit_test.hpp>

using rhythm::PrometheusText;

BOOST_AUTO_TEST_SUITE(prometheus_text)

BOOST_AUTO_TEST_CASE(names_are_the_status_keys_in_snake_case) {
    BOOST_TEST(rhythm::metric_name("RhythmHits") == "rhythm_hits");
    BOOST_TEST(rhythm::metric_name("RhythmBackupStaleDropped") == "rhythm_backup_stale_dropped");
    BOOST_TEST(rhythm::metric_name("RhythmBackupLagP50Us") == "rhythm_backup_lag_p50_us");
    BOOST_TEST(rhythm::metric_name("RhythmSessionIdsRefused") == "rhythm_session_ids_refused");
}

BOOST_AUTO_TEST_CASE(label_values_and_help_are_escaped) {
    PrometheusText m;
    m.family("x", "gauge", "a \\ and\na newline");
    m.sample("x", {{"node", "tcp://a\"b\\c\nd"}}, std::uint64_t{1});
    BOOST_TEST(m.text() ==
               "# HELP x a \\\\ and\\na newline\n# TYPE x gauge\n"
               "x{node=\"tcp://a\\\"b\\\\c\\nd\"} 1\n");
}

BOOST_AUTO_TEST_CASE(a_value_in_seconds_keeps_its_fraction) {
    PrometheusText m;
    m.sample("x_seconds", {}, 0.0015);
    m.sample("y", {{"a", "1"}, {"b", "2"}}, std::uint64_t{18446744073709551615u});
    BOOST_TEST(m.text() == "x_seconds 0.0015\ny{a=\"1\",b=\"2\"} 18446744073709551615\n");
}

BOOST_AUTO_TEST_SUITE_END()
