// The Boost.Test module of rss_node's unit tests.
#define BOOST_TEST_MODULE rss_node
#include <boost/test/unit_test.hpp>
