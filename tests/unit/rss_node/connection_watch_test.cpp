// The listen backlog of the node's bound sockets: as many connections as each keeps, within
// libzmq's default below and the kernel's largest above, so that every web server's agent coming
// back at once to a restarted node is queued rather than dropped.
#include "rss_node/connection_watch.h"

#include <boost/test/unit_test.hpp>

using rhythm::node::ConnectionWatch;

BOOST_AUTO_TEST_SUITE(connection_watch)

BOOST_AUTO_TEST_CASE(listen_backlog_is_the_connection_bound) {
    BOOST_TEST(ConnectionWatch::listen_backlog(4096) == 4096);
    BOOST_TEST(ConnectionWatch::listen_backlog(6000) == 6000);
    BOOST_TEST(ConnectionWatch::listen_backlog(100) == 100);
}

BOOST_AUTO_TEST_CASE(listen_backlog_stays_within_libzmq_default_and_the_kernel_largest) {
    BOOST_TEST(ConnectionWatch::listen_backlog(1) == 100);
    BOOST_TEST(ConnectionWatch::listen_backlog(0) == 100);
    BOOST_TEST(ConnectionWatch::listen_backlog(1000000) == 65535);
}

BOOST_AUTO_TEST_CASE(listen_backlog_follows_max_connections) {
    rhythm::node::NodeConfig config;
    config.max_connections = 3000;
    rhythm::node::NodeCounters counters;
    ConnectionWatch watch(config, &counters);
    BOOST_TEST(watch.listen_backlog() == 3000);
}

BOOST_AUTO_TEST_SUITE_END()
