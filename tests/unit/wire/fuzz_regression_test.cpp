// Inputs for the decoder fuzz target (fuzz/decode_fuzzer.cpp), run through the same entry point
// as the fuzzer, which aborts when a frame that decodes does not encode back to the same bytes or
// an error comes without a message. Empty and tiny inputs must come back as a clean decode error;
// every seed of fuzz/corpus/decode is a well-formed message and must decode.
#include <boost/test/unit_test.hpp>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <string>

#include "fuzz/decode_input.h"

BOOST_AUTO_TEST_SUITE(fuzz_regressions)

BOOST_AUTO_TEST_CASE(empty_and_tiny_inputs) {
    const std::string inputs[] = {"", std::string(1, '\0'), std::string(2, '\0'), "\x01\x01"};
    for (const auto &input : inputs) {
        BOOST_TEST(!rhythm::wire::fuzz_decode_input(
            reinterpret_cast<const std::uint8_t *>(input.data()), input.size()));
    }
}

// The seeds (written by a second encoder, in Python, from docs/protocol.md) all decode and
// encode back to the same bytes: the document, the Python encoder and wire/ agree.
BOOST_AUTO_TEST_CASE(every_seed_decodes) {
    std::string dir = std::string(RHYTHM_SOURCE_DIR) + "/fuzz/corpus/decode";
    DIR *d = opendir(dir.c_str());
    BOOST_TEST_REQUIRE(d != nullptr);
    int seeds = 0;
    while (dirent *e = readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        std::ifstream in(dir + "/" + e->d_name, std::ios::binary);
        std::string input((std::istreambuf_iterator<char>(in)), {});
        BOOST_TEST(rhythm::wire::fuzz_decode_input(
                       reinterpret_cast<const std::uint8_t *>(input.data()), input.size()),
                   e->d_name);
        ++seeds;
    }
    closedir(d);
    BOOST_TEST(seeds >= 21);
}

BOOST_AUTO_TEST_SUITE_END()
