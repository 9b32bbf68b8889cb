// The Boost.Test module of the common library's unit tests.
#define BOOST_TEST_MODULE common
#include <boost/test/unit_test.hpp>
