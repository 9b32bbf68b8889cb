// Whole numbers: the number and its unit taken apart, counts within their range.
#include "common/number.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <utility>

BOOST_AUTO_TEST_SUITE(number)

BOOST_AUTO_TEST_CASE(a_number_and_its_unit_come_apart_with_the_unit_in_lower_case) {
    std::uint64_t n = 0;
    std::string unit = "x";
    std::string why;
    BOOST_TEST(rhythm::split_number("250MS", &n, &unit, &why));
    BOOST_TEST(n == 250u);
    BOOST_TEST(unit == "ms");
    BOOST_TEST(rhythm::split_number("18446744073709551615", &n, &unit, &why));
    BOOST_TEST(n == 18446744073709551615ULL);
    BOOST_TEST(unit.empty());
}

BOOST_AUTO_TEST_CASE(no_digits_or_an_overflow_is_refused_and_changes_nothing) {
    std::uint64_t n = 7;
    std::string unit = "kept";
    std::string why;
    BOOST_TEST(!rhythm::split_number("K", &n, &unit, &why));
    BOOST_TEST(why == "expected a number");
    BOOST_TEST(!rhythm::split_number("-1", &n, &unit, &why));
    BOOST_TEST(!rhythm::split_number("18446744073709551616", &n, &unit, &why));
    BOOST_TEST(why == "the number is too large");
    BOOST_TEST(n == 7u);
    BOOST_TEST(unit == "kept");
}

BOOST_AUTO_TEST_CASE(a_count_is_a_whole_number_within_its_range) {
    std::uint64_t v = 99;
    std::string why;
    for (std::uint64_t n : {0u, 7u, 19u}) {
        BOOST_TEST(rhythm::parse_count(std::to_string(n), 0, 19, &v, &why));
        BOOST_TEST(v == n);
    }
    const std::pair<const char *, const char *> refused[] = {
        {"20", "'20' is out of range (0 to 19)"},
        {"-1", "'-1' is not a whole number (0 to 19)"},
        {"5x", "'5x' is not a whole number (0 to 19)"},
        {"2K", "'2K' is not a whole number (0 to 19)"},
        {"", "'' is not a whole number (0 to 19)"},
    };
    for (const auto &[text, reason] : refused) {
        BOOST_TEST(!rhythm::parse_count(text, 0, 19, &v, &why));
        BOOST_TEST(why == reason);
        BOOST_TEST(v == 19u);  // untouched by a refusal
    }
}

BOOST_AUTO_TEST_SUITE_END()
