// Inputs for the session_cookie fuzz target (fuzz/session_cookie_input.cpp), run through the same
// entry point as the fuzzer: its seeds, and whatever it has run into. A broken contract aborts;
// besides, each input is checked against the parsers that must accept it and no others, so a
// seed that stops reaching the parser it was written for fails here.
#include <boost/test/unit_test.hpp>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "fuzz/session_cookie_input.h"

namespace {

using namespace rhythm;

unsigned run(const std::string &input) {
    return fuzz_session_cookie_input(reinterpret_cast<const std::uint8_t *>(input.data()),
                                     input.size());
}

// Every seed in fuzz/corpus/session_cookie, with the parsers that accept it. A cookie name is
// any token, so most plain words are cookie names and server names too.
const std::map<std::string, unsigned> kSeeds = {
    {"cookie_default_name", kFuzzCookie | kFuzzName},
    {"cookie_host", kFuzzCookie},
    {"cookie_host_domain", 0},      // a __Host- cookie may not have a Domain
    {"cookie_host_other_path", 0},  // nor a path other than /
    {"cookie_line_break", 0},
    {"cookie_secure_given", kFuzzCookie},
    {"cookie_secure_prefix", kFuzzCookie},
    {"cookie_with_attributes", kFuzzCookie},
    {"count", kFuzzCount | kFuzzDuration | kFuzzIdleTimeout | kFuzzCookie | kFuzzName},
    {"duration_ms", kFuzzDuration | kFuzzCookie | kFuzzName},
    {"duration_seconds", kFuzzDuration | kFuzzIdleTimeout | kFuzzCookie | kFuzzName},
    {"endpoint_ipc", kFuzzEndpoint | kFuzzName},
    {"endpoint_ipv6", kFuzzEndpoint | kFuzzName},
    {"endpoint_tcp", kFuzzEndpoint | kFuzzName},
    {"idle_not_whole", kFuzzDuration | kFuzzCookie | kFuzzName},  // 1500ms: no idle timeout
    {"idle_off", kFuzzIdleTimeout | kFuzzCookie | kFuzzName},
    {"server_name", kFuzzName},
    {"session_id", kFuzzSessionId | kFuzzCookie | kFuzzName},
    {"session_id_all_ones", kFuzzSessionId | kFuzzCookie | kFuzzName},
    {"session_id_not_canonical", kFuzzCookie | kFuzzName},
    {"session_id_short", kFuzzCookie | kFuzzName},
    {"signed_id", kFuzzSignedId | kFuzzCookie | kFuzzName},
    {"size", kFuzzSize | kFuzzCookie | kFuzzName},
    {"size_binary_suffix", kFuzzSize | kFuzzCookie | kFuzzName},
    {"size_bytes", kFuzzSize | kFuzzIdleTimeout | kFuzzCookie | kFuzzName},  // 65536 s > 3600 s
};

}  // namespace

BOOST_AUTO_TEST_SUITE(session_cookie_fuzz_regressions)

BOOST_AUTO_TEST_CASE(empty_and_tiny_inputs) {
    BOOST_TEST(run("") == 0u);
    BOOST_TEST(run(std::string(1, '\0')) == 0u);
    // A count, "no idle timeout", a cookie and a server name; not a size (under 128 bytes) and
    // not a duration (under 1 ms).
    BOOST_TEST(run("0") == (kFuzzCount | kFuzzIdleTimeout | kFuzzCookie | kFuzzName));
    BOOST_TEST(run("x") == (kFuzzCookie | kFuzzName));
}

BOOST_AUTO_TEST_CASE(an_endpoint_to_bind_is_not_one_to_connect_to) {
    BOOST_TEST(run("tcp://*:7301") == kFuzzName);
    BOOST_TEST(run("tcp://10.0.0.5:*") == kFuzzName);
    // ... and an abstract ipc name is one to connect to, not to bind (build/fuzz found the
    // target's old rule broken by that one).
    BOOST_TEST((run("ipc://@6@") & kFuzzEndpoint) != 0u);
}

BOOST_AUTO_TEST_CASE(every_seed_reaches_the_parsers_it_was_written_for) {
    std::string dir = std::string(RHYTHM_SOURCE_DIR) + "/fuzz/corpus/session_cookie";
    DIR *d = opendir(dir.c_str());
    BOOST_TEST_REQUIRE(d != nullptr);
    std::size_t seeds = 0;
    while (dirent *e = readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        std::string name = e->d_name;
        std::ifstream in(dir + "/" + name, std::ios::binary);
        unsigned accepted = run(std::string((std::istreambuf_iterator<char>(in)), {}));
        auto expected = kSeeds.find(name);
        BOOST_TEST_REQUIRE((expected != kSeeds.end()), "seed " << name << " is not in kSeeds");
        BOOST_TEST(accepted == expected->second, "seed " << name);
        ++seeds;
    }
    closedir(d);
    BOOST_TEST(seeds == kSeeds.size());
}

BOOST_AUTO_TEST_SUITE_END()
