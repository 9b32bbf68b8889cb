// Names in the bank: 1 to 255 bytes of printable ASCII without spaces, and the reasons given.
#include "common/name.h"

#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_SUITE(name)

BOOST_AUTO_TEST_CASE(printable_ascii_from_1_to_255_bytes_is_a_name) {
    std::string why;
    BOOST_TEST(rhythm::check_name("web1.example:443", &why));
    BOOST_TEST(rhythm::check_name("!", &why));
    BOOST_TEST(rhythm::check_name("~", &why));
    BOOST_TEST(rhythm::check_name(std::string(255, 'a'), &why));
    BOOST_TEST(rhythm::is_valid_name(std::string(255, 'a')));
}

BOOST_AUTO_TEST_CASE(empty_long_spaced_or_unprintable_names_are_refused_with_a_reason) {
    std::string why;
    BOOST_TEST(!rhythm::check_name("", &why));
    BOOST_TEST(why == "the name must have 1 to 255 characters");
    BOOST_TEST(!rhythm::check_name(std::string(256, 'a'), &why));
    BOOST_TEST(why == "the name must have 1 to 255 characters");
    BOOST_TEST(!rhythm::check_name("web one", &why));
    BOOST_TEST(why == "'web one' has a space or a character that is not printable");
    for (std::string bad : {std::string("tab\there"), std::string("nul\0x", 5),
                            std::string("del\x7f"), std::string("caf\xc3\xa9")}) {
        BOOST_TEST(!rhythm::check_name(bad, &why));
        BOOST_TEST(!rhythm::is_valid_name(bad));
    }
    BOOST_TEST(!rhythm::is_valid_name(""));
    BOOST_TEST(!rhythm::is_valid_name(std::string(256, 'a')));
}

BOOST_AUTO_TEST_CASE(a_printable_word_has_no_length_limit_but_is_never_empty) {
    BOOST_TEST(rhythm::is_printable_word(std::string(1024, 'e')));
    BOOST_TEST(!rhythm::is_printable_word(""));
    BOOST_TEST(!rhythm::is_printable_word("two words"));
}

BOOST_AUTO_TEST_SUITE_END()
