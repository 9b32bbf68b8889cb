// The Boost.Test entry point for the session core's unit tests.
#define BOOST_TEST_MODULE session_core
#include <boost/test/unit_test.hpp>
