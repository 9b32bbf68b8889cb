// The Boost.Test module of the wire protocol's unit tests.
#define BOOST_TEST_MODULE wire
#include <boost/test/unit_test.hpp>
