// rss_node settings: config files (errors name the file and line), flags over the file, which
// endpoints are bound and which connected to (the parsers themselves: tests/unit/common).
#include "rss_node/node_config.h"

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <fstream>
#include <unistd.h>

using rhythm::node::NodeConfig;
using rhythm::node::parse_node_command_line;

namespace {

// A config file in the temp dir, removed at the end of the test.
struct TempConfig {
    std::string path;

    explicit TempConfig(const std::string &text) {
        char name[] = "/tmp/rss_node_config_test_XXXXXX";
        int fd = mkstemp(name);
        ::close(fd);
        path = name;
        std::ofstream(path) << text;
    }
    ~TempConfig() { std::remove(path.c_str()); }
};

bool parse(std::vector<std::string> args, NodeConfig *config, std::string *error) {
    std::vector<const char *> argv;
    for (const auto &a : args) {
        argv.push_back(a.c_str());
    }
    return parse_node_command_line(static_cast<int>(argv.size()), argv.data(), config, error);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(node_config)

BOOST_AUTO_TEST_CASE(flags_alone) {
    NodeConfig c;
    std::string error;
    BOOST_TEST_REQUIRE(
        parse({"--name", "a", "--updates", "tcp://127.0.0.1:5556", "--queries=tcp://127.0.0.1:5557",
               "--peer", "tcp://10.0.0.2:5557", "--peer", "tcp://10.0.0.3:5557", "--replicas", "1",
               "--max-memory", "1G"},
              &c, &error),
        error);
    BOOST_TEST(c.name == "a");
    BOOST_TEST(c.queries == "tcp://127.0.0.1:5557");
    BOOST_TEST(c.peers.size() == 2u);
    BOOST_TEST(c.replicas == 1u);
    BOOST_TEST(c.max_memory == 1ULL << 30);
}

BOOST_AUTO_TEST_CASE(file_then_flags_win) {
    TempConfig file(
        "# a node\n"
        "name = from-file\n"
        "  updates = tcp://127.0.0.1:6000  \n"
        "\n"
        "queries = tcp://127.0.0.1:6001\n"
        "peer = tcp://127.0.0.1:7001\n"
        "max-memory = 2G\n"
        "log-level = debug\n");
    NodeConfig c;
    std::string error;
    BOOST_TEST_REQUIRE(
        parse({"--config", file.path, "--name", "from-flag", "--peer", "tcp://127.0.0.1:8001"}, &c,
              &error),
        error);
    BOOST_TEST(c.name == "from-flag");
    BOOST_TEST(c.updates == "tcp://127.0.0.1:6000");
    BOOST_TEST(c.max_memory == 2ULL << 30);
    BOOST_TEST_REQUIRE(c.peers.size() == 1u);  // flags replace the file's peers
    BOOST_TEST(c.peers[0] == "tcp://127.0.0.1:8001");
    BOOST_TEST((c.log_level == rhythm::node::LogLevel::kDebug));
}

BOOST_AUTO_TEST_CASE(a_node_binds_wildcards_and_connects_to_its_peers_endpoints) {
    NodeConfig c;
    std::string error;
    BOOST_TEST_REQUIRE(parse({"--name", "a", "--updates", "tcp://*:5556", "--queries",
                              "tcp://127.0.0.1:*", "--peer", "tcp://[::1]:5557", "--peer",
                              "ipc:///run/rhythm/b.sock", "--max-memory", "64MiB"},
                             &c, &error),
                       error);
    BOOST_TEST(c.updates == "tcp://*:5556");
    BOOST_TEST(c.queries == "tcp://127.0.0.1:*");
    BOOST_TEST(c.peers.size() == 2u);
    BOOST_TEST(c.max_memory == 64ULL << 20);
    BOOST_TEST(!parse({"--name", "a", "--updates", "tcp://*:5556", "--queries", "tcp://*:5557",
                       "--peer", "tcp://10.0.0.2:*"},
                      &c, &error));
    BOOST_TEST(error.find("--peer: 'tcp://10.0.0.2:*' has the wildcard port *") == 0u, error);
}

BOOST_AUTO_TEST_CASE(bad_file_lines_name_file_line_and_reason) {
    struct Case {
        const char *text;
        const char *expect;
    } cases[] = {
        {"name = a\nbogus = 1\n", ":2: unknown key 'bogus'"},
        {"name = a\n\nupdates\n", ":3: expected 'key = value'"},
        {"max-memory = lots\n", ":1: 'lots' is not a size"},
        {"replicas = 0\n", ":1: replicas must be"},
        {"updates = localhost:5556\n", ":1: 'localhost:5556' is not an endpoint"},
        {"queries = inproc://node\n", ":1: 'inproc://node' is not an endpoint"},
        {"peer = tcp://*:5557\n", ":1: 'tcp://*:5557' has the wildcard host *"},
        {"max-memory = 64X\n", ":1: '64X' has an unknown unit"},
        {"name =\n", ":1: 'name' has no value"},
        {"log-level = loud\n", ":1: log-level must be"},
    };
    for (const auto &c : cases) {
        TempConfig file(c.text);
        NodeConfig config;
        std::string error;
        BOOST_TEST_REQUIRE(!parse({"--config", file.path}, &config, &error));
        BOOST_TEST(error.find(file.path + c.expect) == 0u, error);
    }
}

BOOST_AUTO_TEST_CASE(bad_flags_and_missing_keys) {
    NodeConfig c;
    std::string error;
    BOOST_TEST(!parse({"--name"}, &c, &error));
    BOOST_TEST(error == "--name needs a value");
    BOOST_TEST(!parse({"--colour", "red"}, &c, &error));
    BOOST_TEST(error.find("unknown option '--colour'") == 0u);
    BOOST_TEST(!parse({"stray"}, &c, &error));
    BOOST_TEST(!parse({"--name", "a", "--updates", "tcp://127.0.0.1:1"}, &c, &error));
    BOOST_TEST(error.find("no queries endpoint") == 0u);
    BOOST_TEST(!parse(
        {"--name", "a b", "--updates", "tcp://127.0.0.1:1", "--queries", "tcp://127.0.0.1:2"}, &c,
        &error));
    BOOST_TEST(error == "--name: 'a b' has a space or a character that is not printable");
    BOOST_TEST(!parse({"--config", "/nonexistent/rss.conf"}, &c, &error));
    BOOST_TEST(error == "/nonexistent/rss.conf: cannot be read");
    BOOST_TEST(
        !parse({"--name", "a", "--updates", "tcp://127.0.0.1:1", "--queries", "tcp://127.0.0.1:1"},
               &c, &error));
    BOOST_TEST(parse({"--check-config", "--name", "a", "--updates", "tcp://127.0.0.1:1",
                      "--queries", "tcp://127.0.0.1:2"},
                     &c, &error));
    BOOST_TEST(c.check_config);
}

BOOST_AUTO_TEST_CASE(connection_caps_and_the_longest_session_lifetime) {
    NodeConfig c;
    std::string error;
    BOOST_TEST(c.max_connections == 0u);  // the default, fitted to the open-file limit
    BOOST_TEST(c.max_connections_per_address == 64u);
    BOOST_TEST(c.max_session_lifetime_s == 400u * 86400);
    TempConfig file("max-connections = 1000\nmax-session-lifetime = 30d\n");
    BOOST_TEST_REQUIRE(
        parse({"--config", file.path, "--name", "a", "--updates", "tcp://127.0.0.1:1", "--queries",
               "tcp://127.0.0.1:2", "--max-connections-per-address", "8"},
              &c, &error),
        error);
    BOOST_TEST(c.max_connections == 1000u);
    BOOST_TEST(c.max_connections_per_address == 8u);
    BOOST_TEST(c.max_session_lifetime_s == 30u * 86400);
    for (auto [text, seconds] :
         {std::pair{"72h", 72 * 3600}, {"90m", 5400}, {"3600s", 3600}, {"3600", 3600}, {"0", 0}}) {
        NodeConfig d;
        BOOST_TEST_REQUIRE(parse({"--max-session-lifetime", text, "--name", "a", "--updates",
                                  "tcp://127.0.0.1:1", "--queries", "tcp://127.0.0.1:2"},
                                 &d, &error),
                           error);
        BOOST_TEST(d.max_session_lifetime_s == static_cast<std::uint64_t>(seconds));
    }
    TempConfig bad("max-session-lifetime = 2w\n");
    BOOST_TEST(!parse({"--config", bad.path}, &c, &error));
    BOOST_TEST(error == bad.path +
                            ":1: max-session-lifetime must be a duration such as 400d, 72h, "
                            "90m or 3600s, of at most 100 years (0: no bound)");
    BOOST_TEST(c.handover_wait_ms == 150u);
    for (auto [text, ms] : {std::pair{"250ms", 250}, {"2s", 2000}, {"40", 40}, {"0", 0}}) {
        NodeConfig d;
        BOOST_TEST_REQUIRE(parse({"--handover-wait", text, "--name", "a", "--updates",
                                  "tcp://127.0.0.1:1", "--queries", "tcp://127.0.0.1:2"},
                                 &d, &error),
                           error);
        BOOST_TEST(d.handover_wait_ms == static_cast<std::uint64_t>(ms));
    }
    for (const char *wait : {"11s", "1m", "-1", "ms"}) {
        NodeConfig d;
        BOOST_TEST(!parse({"--handover-wait", wait, "--name", "a", "--updates", "tcp://127.0.0.1:1",
                           "--queries", "tcp://127.0.0.1:2"},
                          &d, &error));
        BOOST_TEST(error ==
                   "--handover-wait: handover-wait must be a duration such as 100ms or 1s, of at "
                   "most 10 s (0: off)");
    }
    BOOST_TEST(c.ipc_mode == 0660u);
    NodeConfig owner_only;
    BOOST_TEST_REQUIRE(parse({"--ipc-mode", "600", "--name", "a", "--updates", "ipc://u.sock",
                              "--queries", "ipc://q.sock"},
                             &owner_only, &error),
                       error);
    BOOST_TEST(owner_only.ipc_mode == 0600u);
    for (const char *mode : {"0666", "0700", "0400", "0668", "", "-600", "0x180", "1660"}) {
        BOOST_TEST(!parse({"--ipc-mode", mode}, &c, &error), mode);
        BOOST_TEST(error.find("ipc-mode must be an octal mode") != std::string::npos, mode);
    }
    BOOST_TEST(c.metrics.empty());  // off
    NodeConfig with_metrics;
    BOOST_TEST_REQUIRE(parse({"--metrics", "[::1]:9101", "--name", "a", "--updates",
                              "tcp://127.0.0.1:1", "--queries", "tcp://127.0.0.1:2"},
                             &with_metrics, &error),
                       error);
    BOOST_TEST(with_metrics.metrics == "[::1]:9101");
    for (const char *address : {"localhost:9101", "127.0.0.1", "127.0.0.1:70000", ":9101"}) {
        BOOST_TEST(!parse({"--metrics", address}, &c, &error), address);
        BOOST_TEST(error.rfind("--metrics: '", 0) == 0, error);
    }
    BOOST_TEST(!parse({"--max-connections", "0"}, &c, &error));
    BOOST_TEST(error ==
               "--max-connections: max-connections must be a whole number from 1 to "
               "1000000");
}

BOOST_AUTO_TEST_SUITE_END()
