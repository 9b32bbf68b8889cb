// Inputs for the operator-command fuzz target (fuzz/end_session_fuzzer.cpp), run through the same
// entry point as the fuzzer, which aborts when a guarantee of `rss_node end-session` breaks (see
// fuzz/end_session_input.h). Every request seed of fuzz/corpus/end_session must reach the store.
#include <boost/test/unit_test.hpp>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz/end_session_input.h"

namespace {

bool run(const std::string &input) {
    return rhythm::node::fuzz_end_session_input(
        reinterpret_cast<const std::uint8_t *>(input.data()), input.size());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(end_session_fuzz_regressions)

BOOST_AUTO_TEST_CASE(empty_and_tiny_inputs) {
    for (const std::string &input : {std::string(), std::string(1, '\0'), std::string("\x01"),
                                     std::string("\x01\xff"), std::string("\x00.", 2)}) {
        BOOST_TEST(!run(input));
    }
}

BOOST_AUTO_TEST_CASE(every_request_seed_reaches_the_store) {
    std::string dir = std::string(RHYTHM_SOURCE_DIR) + "/fuzz/corpus/end_session";
    DIR *d = opendir(dir.c_str());
    BOOST_TEST_REQUIRE(d != nullptr);
    int requests = 0;
    while (dirent *e = readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        std::ifstream in(dir + "/" + e->d_name, std::ios::binary);
        std::string input((std::istreambuf_iterator<char>(in)), {});
        bool is_request = !input.empty() && (input[0] & 1) != 0;
        BOOST_TEST(run(input) == is_request, e->d_name);
        requests += is_request ? 1 : 0;
    }
    closedir(d);
    BOOST_TEST(requests >= 3);
}

BOOST_AUTO_TEST_SUITE_END()
