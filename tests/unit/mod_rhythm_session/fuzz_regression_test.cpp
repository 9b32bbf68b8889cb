// Inputs for the session_cookie fuzz target (fuzz/session_cookie_fuzzer.cpp), run through the same
// entry point as the fuzzer: its seeds, and whatever it has run into. A broken contract aborts.
#include <boost/test/unit_test.hpp>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz/session_cookie_input.h"

namespace {

bool run(const std::string &input) {
    return rhythm::fuzz_session_cookie_input(reinterpret_cast<const std::uint8_t *>(input.data()),
                                             input.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(session_cookie_fuzz_regressions)

BOOST_AUTO_TEST_CASE(empty_and_tiny_inputs) {
    BOOST_TEST(!run(""));
    BOOST_TEST(!run(std::string(1, '\0')));
    BOOST_TEST(run("0"));  // a size, a duration and "no idle timeout"
    BOOST_TEST(run("x"));  // a cookie name
}

BOOST_AUTO_TEST_CASE(what_each_seed_exercises) {
    BOOST_TEST(run("AAECAwQFBgcICQoLDA0ODw"));  // a session ID
    BOOST_TEST(run("__Host-sid path=/;HttpOnly;SameSite=Lax"));
    BOOST_TEST(!run("__Host-sid path=/;Domain=example.com"));
    BOOST_TEST(!run("sid path=/\r\nX-Injected: 1"));
    BOOST_TEST(run("tcp://[::1]:65535"));
}

BOOST_AUTO_TEST_CASE(every_seed_keeps_the_contracts) {
    std::string dir = std::string(RHYTHM_SOURCE_DIR) + "/fuzz/corpus/session_cookie";
    DIR *d = opendir(dir.c_str());
    BOOST_TEST_REQUIRE(d != nullptr);
    int seeds = 0;
    while (dirent *e = readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        std::ifstream in(dir + "/" + e->d_name, std::ios::binary);
        run(std::string((std::istreambuf_iterator<char>(in)), {}));
        ++seeds;
    }
    closedir(d);
    BOOST_TEST(seeds >= 22);
}

BOOST_AUTO_TEST_SUITE_END()
