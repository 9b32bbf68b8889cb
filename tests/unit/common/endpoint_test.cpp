// ZeroMQ endpoints: what a web server, a peer or an operator may connect to, what a node may
// bind, and the reasons given for a refusal.
#include "common/endpoint.h"

#include <boost/test/unit_test.hpp>

using rhythm::EndpointUse;

namespace {

bool connect_ok(const std::string &text) {
    std::string why;
    return rhythm::check_endpoint(text, EndpointUse::kConnect, &why);
}

bool bind_ok(const std::string &text) {
    std::string why;
    return rhythm::check_endpoint(text, EndpointUse::kBind, &why);
}

// The reason a refused endpoint is given.
std::string why_not(const std::string &text, EndpointUse use) {
    std::string why;
    BOOST_TEST_REQUIRE(!rhythm::check_endpoint(text, use, &why), text);
    return why;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(endpoint)

BOOST_AUTO_TEST_CASE(tcp_with_a_host_and_port_and_ipc_with_a_path_are_endpoints_for_both_uses) {
    for (const char *text :
         {"tcp://10.0.0.5:7301", "tcp://node-1.example:1", "tcp://[::1]:65535",
          "tcp://[fe80::1]:5556", "tcp://[::ffff:10.0.0.1]:5556", "tcp://0.0.0.0:5556",
          "tcp://localhost:5557", "ipc:///run/rhythm/node.sock", "ipc://relative.sock"}) {
        BOOST_TEST(connect_ok(text), text);
        BOOST_TEST(bind_ok(text), text);
    }
}

BOOST_AUTO_TEST_CASE(only_an_endpoint_to_bind_has_a_wildcard_host_or_port) {
    for (const char *text : {"tcp://*:5556", "tcp://127.0.0.1:*", "tcp://*:*", "tcp://[::1]:*"}) {
        BOOST_TEST(bind_ok(text), text);
        BOOST_TEST(!connect_ok(text), text);
    }
    BOOST_TEST(why_not("tcp://*:7301", EndpointUse::kConnect) ==
               "'tcp://*:7301' has the wildcard host *, which only an endpoint to bind may have");
    BOOST_TEST(why_not("tcp://10.0.0.5:*", EndpointUse::kConnect) ==
               "'tcp://10.0.0.5:*' has the wildcard port *, which only an endpoint to bind may "
               "have");
}

BOOST_AUTO_TEST_CASE(malformed_endpoints_are_refused_with_a_reason) {
    for (EndpointUse use : {EndpointUse::kConnect, EndpointUse::kBind}) {
        BOOST_TEST(why_not("10.0.0.5:7301", use) ==
                   "'10.0.0.5:7301' is not an endpoint (use tcp://HOST:PORT or ipc://PATH)");
        BOOST_TEST(why_not("inproc://rhythm", use).find("is not an endpoint") != std::string::npos);
        BOOST_TEST(why_not("udp://10.0.0.5:7301", use).find("is not an endpoint") !=
                   std::string::npos);
        BOOST_TEST(why_not("tcp://10.0.0.5", use) ==
                   "'tcp://10.0.0.5' has no host and port (use tcp://HOST:PORT)");
        BOOST_TEST(why_not("tcp://:7301", use).find("has no host and port") != std::string::npos);
        for (const char *host :
             {"tcp://bad host:7301", "tcp://::1:7301", "tcp://[]:7301", "tcp://[zz::1]:7301",
              "tcp://[1.2.3.4]:7301", "tcp://a_b:7301", "tcp://**:7301"}) {
            BOOST_TEST(why_not(host, use) == "'" + std::string(host) + "' has a malformed host");
        }
        for (const char *port : {"tcp://10.0.0.5:0", "tcp://10.0.0.5:65536", "tcp://10.0.0.5:7301x",
                                 "tcp://10.0.0.5:", "tcp://10.0.0.5:-1"}) {
            BOOST_TEST(why_not(port, use).find("needs a port from 1 to 65535") !=
                       std::string::npos);
        }
        BOOST_TEST(why_not("ipc://", use) == "'ipc://' names no socket path");
        BOOST_TEST(why_not("ipc:///run/my node.sock", use) ==
                   "'ipc:///run/my node.sock' has a space or a character that is not printable");
    }
    BOOST_TEST(why_not("tcp://10.0.0.5:0", EndpointUse::kBind) ==
               "'tcp://10.0.0.5:0' needs a port from 1 to 65535, or *");
    // An abstract name has no file mode: a node does not bind one (a client may connect to one).
    BOOST_TEST(why_not("ipc://@rhythm", EndpointUse::kBind).find("is an abstract socket") !=
               std::string::npos);
    BOOST_TEST(connect_ok("ipc://@rhythm"));
    BOOST_TEST(why_not("tcp://10.0.0.5:0", EndpointUse::kConnect) ==
               "'tcp://10.0.0.5:0' needs a port from 1 to 65535");
}

BOOST_AUTO_TEST_CASE(a_wildcard_host_a_node_reports_is_where_it_was_reached) {
    BOOST_TEST(rhythm::endpoint_host("tcp://10.0.0.5:7300") == "10.0.0.5");
    BOOST_TEST(rhythm::endpoint_host("tcp://[::1]:7300") == "[::1]");
    BOOST_TEST(rhythm::endpoint_host("ipc:///run/rss.sock").empty());
    BOOST_TEST(rhythm::endpoint_reached_at("tcp://*:7300", "10.0.0.5") == "tcp://10.0.0.5:7300");
    BOOST_TEST(rhythm::endpoint_reached_at("tcp://0.0.0.0:7300", "[::1]") == "tcp://[::1]:7300");
    BOOST_TEST(rhythm::endpoint_reached_at("tcp://[::]:7300", "node-b") == "tcp://node-b:7300");
    BOOST_TEST(rhythm::endpoint_reached_at("tcp://10.0.0.6:7300", "10.0.0.5") ==
               "tcp://10.0.0.6:7300");
    BOOST_TEST(rhythm::endpoint_reached_at("tcp://*:7300", "") == "tcp://*:7300");
    BOOST_TEST(rhythm::endpoint_reached_at("ipc:///run/rss.sock", "10.0.0.5") ==
               "ipc:///run/rss.sock");
}

BOOST_AUTO_TEST_CASE(an_endpoint_is_at_most_1024_bytes) {
    std::string longest = "ipc:///" + std::string(rhythm::kMaxEndpointLength - 7, 's');
    BOOST_TEST(connect_ok(longest));
    BOOST_TEST(why_not(longest + "s", EndpointUse::kBind) ==
               "the endpoint is longer than 1024 bytes");
}

BOOST_AUTO_TEST_SUITE_END()
