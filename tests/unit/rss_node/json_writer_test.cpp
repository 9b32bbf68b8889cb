// The status JSON writer: structure and escaping.
#include "rss_node/json_writer.h"

#include <boost/test/unit_test.hpp>

using rhythm::node::JsonWriter;

BOOST_AUTO_TEST_SUITE(json_writer)

BOOST_AUTO_TEST_CASE(objects_arrays_and_escapes) {
    JsonWriter j;
    j.begin_object();
    j.field("n", std::uint64_t{3});
    j.field("s", std::string_view("a\"b\\c\n\x01\xff"));
    j.begin_array("list");
    j.begin_object();
    j.field_bool("up", true);
    j.end_object();
    j.begin_object();
    j.end_object();
    j.end_array();
    j.end_object();
    BOOST_TEST(j.text() == R"({"n":3,"s":"a\"b\\c\u000a\u0001\u00ff","list":[{"up":true},{}]})");
}

BOOST_AUTO_TEST_SUITE_END()
