// The connection guard's rules: the caps on connections per socket and per client address, a
// connection stuck on an unfinished message dropped past its bound and not before, a peer whose
// messages come out never dropped however far ahead it is, the protocol's own bytes absorbed,
// the total held bounded by dropping the stuck connections that hold most, and a connection that
// brings nothing dropped once silent past its bound.
#include "rss_node/connection_guard.h"

#include <boost/test/unit_test.hpp>
#include <map>

using rhythm::node::ConnectionGuard;

namespace {

constexpr std::uint64_t kMiB = 1 << 20;

ConnectionGuard::Limits limits() {
    ConnectionGuard::Limits l;
    l.max_connections = 3;
    l.max_per_address = 2;
    l.max_unfinished_bytes = 4 * kMiB;
    l.max_unfinished_total = 6 * kMiB;
    return l;
}

// The bytes libzmq has read from each connection, as the kernel would say.
struct Wire {
    std::map<int, std::uint64_t> read;

    std::vector<ConnectionGuard::Offender> check(ConnectionGuard *guard, std::uint64_t now_ms) {
        return guard->check(
            [&](int fd, std::uint64_t *bytes) {
                auto it = read.find(fd);
                if (it == read.end()) {
                    return false;
                }
                *bytes = it->second;
                return true;
            },
            now_ms);
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(connection_guard)

BOOST_AUTO_TEST_CASE(caps_connections_per_socket_and_per_address) {
    ConnectionGuard g(2, limits());
    using Admit = ConnectionGuard::Admit;
    BOOST_TEST((g.on_accepted(0, 10, "10.0.0.1:5000") == Admit::kAdmitted));
    BOOST_TEST((g.on_accepted(0, 11, "10.0.0.1:5001") == Admit::kAdmitted));
    BOOST_TEST((g.on_accepted(0, 12, "10.0.0.1:5002") == Admit::kAddressFull));
    BOOST_TEST((g.on_accepted(1, 12, "10.0.0.1:5002") == Admit::kAdmitted));  // the other socket
    BOOST_TEST((g.on_accepted(0, 13, "[::1]:5003") == Admit::kAdmitted));
    BOOST_TEST((g.on_accepted(0, 14, "10.0.0.2:5004") == Admit::kSocketFull));
    BOOST_TEST(g.connections(0) == 3u);
    // A connection that leaves makes room; a close for the other socket changes nothing.
    g.on_closed(1, 10);
    BOOST_TEST(g.connections(0) == 3u);
    g.on_closed(0, 10);
    BOOST_TEST(g.connections(0) == 2u);
    BOOST_TEST((g.on_accepted(0, 15, "10.0.0.1:5005") == Admit::kAdmitted));
}

BOOST_AUTO_TEST_CASE(a_descriptor_reused_before_its_close_came_counts_once) {
    ConnectionGuard g(2, limits());
    g.on_accepted(0, 10, "10.0.0.1:5000");
    g.on_accepted(1, 10, "10.0.0.2:6000");  // socket 0's close is still on its way
    BOOST_TEST(g.connections(0) == 0u);
    BOOST_TEST(g.connections(1) == 1u);
    g.on_closed(0, 10);
    BOOST_TEST(g.connections(1) == 1u);
    // Its close gives its new address its place back (10.0.0.2 has two again).
    g.on_closed(1, 10);
    BOOST_TEST((g.on_accepted(1, 11, "10.0.0.2:6001") == ConnectionGuard::Admit::kAdmitted));
    BOOST_TEST((g.on_accepted(1, 12, "10.0.0.2:6002") == ConnectionGuard::Admit::kAdmitted));
}

BOOST_AUTO_TEST_CASE(a_connection_stuck_on_an_unfinished_message_goes_past_its_bound) {
    ConnectionGuard g(1, limits());
    Wire w;
    g.on_accepted(0, 7, "10.0.0.9:4000");
    w.read[7] = 300;  // the handshake
    BOOST_TEST(w.check(&g, 0).empty());
    w.read[7] += 3 * kMiB;  // frames with MORE, no last one
    BOOST_TEST(w.check(&g, 20).empty());
    BOOST_TEST(g.held_total() == 3 * kMiB);
    w.read[7] += 2 * kMiB;
    auto dropped = w.check(&g, 40);
    BOOST_TEST_REQUIRE(dropped.size() == 1u);
    BOOST_TEST(dropped[0].fd == 7);
    BOOST_TEST(dropped[0].address == "10.0.0.9:4000");
    BOOST_TEST(dropped[0].held == 5 * kMiB);
    BOOST_TEST(g.connections(0) == 0u);  // forgotten at once
}

BOOST_AUTO_TEST_CASE(a_peer_whose_messages_come_out_is_never_dropped) {
    ConnectionGuard g(1, limits());
    Wire w;
    g.on_accepted(0, 7, "10.0.0.9:4000");
    w.read[7] = 300;
    w.check(&g, 0);
    // Far ahead of the node: 50 MiB read, each check some of it handed over.
    for (std::uint64_t t = 1; t <= 10; ++t) {
        w.read[7] += 5 * kMiB;
        g.on_delivered(7, 1000);
        BOOST_TEST(w.check(&g, t * 20).empty());
    }
    // Then it catches up: everything handed over, and a message stuck after that is judged from
    // there.
    g.on_delivered(7, 50 * kMiB - 10000);
    BOOST_TEST(w.check(&g, 220).empty());
    BOOST_TEST(g.held_total() == 0u);
    w.read[7] += 4 * kMiB + 1;
    BOOST_TEST(w.check(&g, 240).size() == 1u);
}

BOOST_AUTO_TEST_CASE(heartbeats_and_curve_envelopes_are_not_held) {
    ConnectionGuard g(1, limits());
    Wire w;
    g.on_accepted(0, 7, "10.0.0.9:4000");
    w.read[7] = 300;
    w.check(&g, 0);
    // Idle for a week but for its heartbeats under CURVE (82 bytes a second).
    std::uint64_t now = 0;
    for (int hour = 0; hour < 24 * 7; ++hour) {
        now += 3600 * 1000;
        w.read[7] += 82 * 3600;
        BOOST_TEST(w.check(&g, now).empty());
    }
    BOOST_TEST(g.held_total() == 0u);
    // Busy for an hour, each message's envelope unaccounted for: the baseline follows.
    for (int s = 0; s < 3600; ++s) {
        now += 1000;
        w.read[7] += 200000;
        g.on_delivered(7, 150000);
        BOOST_TEST(w.check(&g, now).empty());
    }
    now += 20;
    BOOST_TEST(w.check(&g, now).empty());  // caught up, nothing handed over: not stuck
}

BOOST_AUTO_TEST_CASE(over_the_total_the_stuck_connections_holding_most_go) {
    ConnectionGuard g(1, limits());
    Wire w;
    for (int fd = 1; fd <= 3; ++fd) {
        g.on_accepted(0, fd, "10.0.0." + std::to_string(fd) + ":1");
        w.read[fd] = 100;
    }
    w.check(&g, 0);
    w.read[1] += 3 * kMiB + kMiB / 2;
    w.read[2] += 3 * kMiB;
    w.read[3] += 8 * kMiB;
    g.on_delivered(3, 100);  // coming out: not stuck, and not counted, whatever it holds
    auto dropped = w.check(&g, 20);
    BOOST_TEST_REQUIRE(dropped.size() == 1u);
    BOOST_TEST(dropped[0].fd == 1);
    BOOST_TEST(g.connections(0) == 2u);
    BOOST_TEST(g.held_total() == 11 * kMiB - 100);  // what the other two hold
}

BOOST_AUTO_TEST_CASE(each_check_measures_a_few_connections_round_robin) {
    ConnectionGuard::Limits l = limits();
    l.max_per_address = 10;
    l.max_connections = 10;
    l.measured_per_check = 2;
    ConnectionGuard g(1, l);
    Wire w;
    int asked = 0;
    for (int fd = 1; fd <= 5; ++fd) {
        g.on_accepted(0, fd, "10.0.0.1:" + std::to_string(fd));
        w.read[fd] = 100;
    }
    auto count = [&](int fd, std::uint64_t *bytes) {
        ++asked;
        *bytes = w.read[fd];
        return true;
    };
    g.check(count, 0);
    BOOST_TEST(asked == 2);
    // The stuck one is found within ceil(5 / 2) checks, wherever it is.
    w.read[5] += 5 * kMiB;
    std::vector<ConnectionGuard::Offender> dropped;
    for (std::uint64_t t = 20; t <= 80 && dropped.empty(); t += 20) {
        dropped = g.check(count, t);
    }
    BOOST_TEST_REQUIRE(dropped.size() == 1u);
    BOOST_TEST(dropped[0].fd == 5);
}

BOOST_AUTO_TEST_CASE(a_connection_it_cannot_measure_is_left_alone) {
    ConnectionGuard::Limits l = limits();
    l.silent_ms = 4000;
    ConnectionGuard g(1, l);
    Wire w;
    g.on_accepted(0, 7, "local");
    BOOST_TEST(w.check(&g, 0).empty());
    BOOST_TEST(w.check(&g, 60000).empty());  // nor judged silent
    BOOST_TEST(g.connections(0) == 1u);
}

// The node sends no PINGs of its own: a peer that vanished is told by its connection bringing
// nothing, while a client's PINGs (16 bytes a second) keep an idle one.
BOOST_AUTO_TEST_CASE(a_connection_silent_past_its_bound_goes_and_an_idle_pinging_one_stays) {
    ConnectionGuard::Limits l = limits();
    l.silent_ms = 4000;
    ConnectionGuard g(1, l);
    Wire w;
    g.on_accepted(0, 5, "10.0.0.1:5000");
    g.on_accepted(0, 6, "10.0.0.2:5000");
    w.read[5] = 100;
    w.read[6] = 100;
    BOOST_TEST(w.check(&g, 1000).empty());  // first measures: no judgment yet
    for (std::uint64_t t = 2000; t < 5000; t += 1000) {
        w.read[6] += 16;
        BOOST_TEST(w.check(&g, t).empty());
    }
    w.read[6] += 16;
    std::vector<ConnectionGuard::Offender> dropped = w.check(&g, 5000);
    BOOST_TEST_REQUIRE(dropped.size() == 1u);
    BOOST_TEST(dropped[0].fd == 5);
    BOOST_TEST(dropped[0].silent);
    BOOST_TEST(g.connections(0) == 1u);
    // The silence counts from the last measure that saw a byte.
    for (std::uint64_t t = 6000; t < 9000; t += 1000) {
        BOOST_TEST(w.check(&g, t).empty());
    }
    dropped = w.check(&g, 9000);
    BOOST_TEST_REQUIRE(dropped.size() == 1u);
    BOOST_TEST(dropped[0].fd == 6);
}

BOOST_AUTO_TEST_CASE(without_a_bound_on_silence_a_silent_connection_stays) {
    ConnectionGuard g(1, limits());
    Wire w;
    g.on_accepted(0, 5, "10.0.0.1:5000");
    w.read[5] = 100;
    BOOST_TEST(w.check(&g, 0).empty());
    BOOST_TEST(w.check(&g, 3600000).empty());
}

BOOST_AUTO_TEST_SUITE_END()
