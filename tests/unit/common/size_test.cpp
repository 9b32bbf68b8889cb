// Sizes: every suffix, in any case, the range the caller gives, and the reasons for refusals.
#include "common/size.h"

#include <boost/test/unit_test.hpp>
#include <limits>

namespace {

constexpr std::uint64_t kAny = std::numeric_limits<std::uint64_t>::max();

std::uint64_t size_of(const char *text) {
    std::uint64_t v = 0;
    std::string why;
    BOOST_TEST_REQUIRE(rhythm::parse_size(text, 0, kAny, &v, &why), text << ": " << why);
    return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(size)

BOOST_AUTO_TEST_CASE(bytes_and_powers_of_1024) {
    BOOST_TEST(size_of("0") == 0u);
    BOOST_TEST(size_of("1234") == 1234u);
    BOOST_TEST(size_of("65536") == 65536u);
    BOOST_TEST(size_of("100B") == 100u);
    BOOST_TEST(size_of("64K") == 64u * 1024);
    BOOST_TEST(size_of("64m") == 64ULL << 20);
    BOOST_TEST(size_of("512M") == 512ULL << 20);
    BOOST_TEST(size_of("2G") == 2ULL << 30);
    BOOST_TEST(size_of("1t") == 1ULL << 40);
}

BOOST_AUTO_TEST_CASE(kb_and_kib_mean_k_in_any_case) {
    for (const char *text : {"64K", "64k", "64KB", "64kb", "64KiB", "64kib"}) {
        BOOST_TEST(size_of(text) == 64u * 1024, text);
    }
    BOOST_TEST(size_of("64MiB") == 64ULL << 20);
    BOOST_TEST(size_of("64MB") == 64ULL << 20);
    BOOST_TEST(size_of("2GiB") == 2ULL << 30);
    BOOST_TEST(size_of("2gb") == 2ULL << 30);
    BOOST_TEST(size_of("1TiB") == 1ULL << 40);
    BOOST_TEST(size_of("1TB") == 1ULL << 40);
}

BOOST_AUTO_TEST_CASE(the_range_is_the_callers) {
    std::uint64_t v = 0;
    std::string why;
    BOOST_TEST(rhythm::parse_size("2K", 2048, 4096, &v, &why));
    BOOST_TEST(rhythm::parse_size("4K", 2048, 4096, &v, &why));
    BOOST_TEST(!rhythm::parse_size("1K", 2048, 4096, &v, &why));
    BOOST_TEST(why == "'1K' is out of range (2K to 4K)");
    BOOST_TEST(!rhythm::parse_size("1T", 1ULL << 20, 64ULL << 30, &v, &why));
    BOOST_TEST(why == "'1T' is out of range (1M to 64G)");
}

BOOST_AUTO_TEST_CASE(bad_sizes_say_why_and_change_nothing) {
    std::uint64_t v = 7;
    std::string why;
    BOOST_TEST(!rhythm::parse_size("lots", 1, 100, &v, &why));
    BOOST_TEST(why == "'lots' is not a size (expected a number; use e.g. 65536, 64K, 64M, 1G)");
    BOOST_TEST(!rhythm::parse_size("64X", 1, 1ULL << 30, &v, &why));
    BOOST_TEST(why == "'64X' has an unknown unit (use K, M, G or T)");
    for (const char *bad : {"", "M", "12Q", "-1", "-5", "1.5G", "64 M", "64Mi", "64KM"}) {
        why.clear();
        BOOST_TEST(!rhythm::parse_size(bad, 0, kAny, &v, &why), bad);
        BOOST_TEST(!why.empty(), bad);
    }
    BOOST_TEST(!rhythm::parse_size("99999999999999999999", 0, kAny, &v, &why));
    BOOST_TEST(why.find("the number is too large") != std::string::npos);
    BOOST_TEST(!rhythm::parse_size("20000000000G", 1, kAny, &v, &why));
    BOOST_TEST(why.find("out of range") != std::string::npos);
    BOOST_TEST(!rhythm::parse_size("99999999999T", 0, kAny, &v, &why));
    BOOST_TEST(v == 7u);
}

BOOST_AUTO_TEST_CASE(sizes_are_shown_in_the_largest_unit_that_divides_them) {
    BOOST_TEST(rhythm::format_size(64ULL << 20) == "64M");
    BOOST_TEST(rhythm::format_size(1536 * 1024) == "1536K");
    BOOST_TEST(rhythm::format_size(2ULL << 40) == "2T");
    BOOST_TEST(rhythm::format_size(1025) == "1025 bytes");
    BOOST_TEST(rhythm::format_size(0) == "0 bytes");
}

BOOST_AUTO_TEST_SUITE_END()
