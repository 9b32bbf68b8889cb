// The event loop over real ZeroMQ inproc sockets and pipes: handlers called for the sockets and
// descriptors that are ready and only those, timers in order and after the handlers, a timer that
// repeats and one that re-arms itself, the poll waiting until the earliest timer, how late a turn
// came, registrations changed from inside a turn, and turns that allocate nothing.
#include "wire/event_loop.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <new>
#include <string>
#include <unistd.h>
#include <vector>
#include <zmq.h>

using rhythm::MonotonicTime;
using rhythm::wire::EventLoop;

namespace {

// Counts the allocations made while counting is on (see turns_allocate_nothing). Every plain
// form of operator new is replaced, taking from malloc, and every operator delete with it,
// giving back with free: under ASan a library's new paired with our delete (libzmq's threads
// use new (std::nothrow)) would be a mismatch that aborts the test.
bool g_counting = false;
std::size_t g_allocations = 0;

void *counted_malloc(std::size_t size) {
    if (g_counting) {
        g_allocations++;
    }
    return std::malloc(size == 0 ? 1 : size);
}

void *counted_or_throw(std::size_t size) {
    if (void *p = counted_malloc(size)) {
        return p;
    }
    throw std::bad_alloc();
}

}  // namespace

void *operator new(std::size_t size) {
    return counted_or_throw(size);
}

void *operator new[](std::size_t size) {
    return counted_or_throw(size);
}

void *operator new(std::size_t size, const std::nothrow_t &) noexcept {
    return counted_malloc(size);
}

void *operator new[](std::size_t size, const std::nothrow_t &) noexcept {
    return counted_malloc(size);
}

// GCC sees free() given what operator new returned; these operators new are malloc.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void *p) noexcept {
    std::free(p);
}

void operator delete[](void *p) noexcept {
    std::free(p);
}

void operator delete(void *p, std::size_t) noexcept {
    std::free(p);
}

void operator delete[](void *p, std::size_t) noexcept {
    std::free(p);
}

void operator delete(void *p, const std::nothrow_t &) noexcept {
    std::free(p);
}

void operator delete[](void *p, const std::nothrow_t &) noexcept {
    std::free(p);
}
#pragma GCC diagnostic pop

namespace {

// A clock the test moves by hand.
struct FakeClock {
    std::uint64_t now = 1000;
    EventLoop::Clock clock() {
        return [this] { return MonotonicTime::from_ms(now); };
    }
};

MonotonicTime at(std::int64_t ms) {
    return MonotonicTime::from_ms(ms);
}

// A connected pair of inproc PAIR sockets.
struct SocketPair {
    void *context = zmq_ctx_new();
    void *a = zmq_socket(context, ZMQ_PAIR);
    void *b = zmq_socket(context, ZMQ_PAIR);

    explicit SocketPair(const char *name) {
        std::string endpoint = std::string("inproc://") + name;
        BOOST_TEST_REQUIRE(zmq_bind(a, endpoint.c_str()) == 0);
        BOOST_TEST_REQUIRE(zmq_connect(b, endpoint.c_str()) == 0);
    }
    ~SocketPair() {
        zmq_close(a);
        zmq_close(b);
        zmq_ctx_term(context);
    }
    void send_to_a(const char *text) { zmq_send(b, text, std::strlen(text), 0); }
    std::string receive_a() {
        char buf[64];
        int n = zmq_recv(a, buf, sizeof buf, ZMQ_DONTWAIT);
        return n < 0 ? "" : std::string(buf, static_cast<std::size_t>(n));
    }
};

struct Pipe {
    int fds[2] = {-1, -1};
    Pipe() { BOOST_TEST_REQUIRE(pipe(fds) == 0); }
    ~Pipe() {
        close(fds[0]);
        close(fds[1]);
    }
    int reader() const { return fds[0]; }
    void write_byte() { BOOST_TEST_REQUIRE(write(fds[1], "x", 1) == 1); }
    void read_byte() {
        char c;
        BOOST_TEST_REQUIRE(read(fds[0], &c, 1) == 1);
    }
};

std::uint64_t real_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(event_loop)

BOOST_AUTO_TEST_CASE(a_socket_handler_is_called_when_a_message_waits) {
    SocketPair pair("event-loop-socket");
    FakeClock clock;
    EventLoop loop(clock.clock());
    std::vector<std::string> got;
    loop.watch_socket(pair.a, [&] { got.push_back(pair.receive_a()); });
    BOOST_TEST(loop.run_once(0));
    BOOST_TEST(got.empty());
    pair.send_to_a("hello");
    BOOST_TEST(loop.run_once(2000));
    BOOST_TEST_REQUIRE(got.size() == 1u);
    BOOST_TEST(got[0] == "hello");
    BOOST_TEST(loop.run_once(0));
    BOOST_TEST(got.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_descriptor_handler_is_called_when_it_is_readable) {
    Pipe ready;
    Pipe quiet;
    FakeClock clock;
    EventLoop loop(clock.clock());
    int ready_calls = 0;
    int quiet_calls = 0;
    loop.watch_descriptor(ready.reader(), [&] {
        ready_calls++;
        ready.read_byte();
    });
    loop.watch_descriptor(quiet.reader(), [&] { quiet_calls++; });
    ready.write_byte();
    BOOST_TEST(loop.run_once(2000));
    BOOST_TEST(ready_calls == 1);
    BOOST_TEST(quiet_calls == 0);
    BOOST_TEST(loop.run_once(0));
    BOOST_TEST(ready_calls == 1);
}

BOOST_AUTO_TEST_CASE(a_monitor_socket_watched_through_its_descriptor) {
    // How rss_node watches its handshake monitors and ZAP socket: the socket's ZMQ_FD, drained
    // whole by its handler.
    SocketPair pair("event-loop-fd");
    FakeClock clock;
    EventLoop loop(clock.clock());
    int fd = -1;
    std::size_t fd_size = sizeof fd;
    BOOST_TEST_REQUIRE(zmq_getsockopt(pair.a, ZMQ_FD, &fd, &fd_size) == 0);
    std::vector<std::string> got;
    loop.watch_descriptor(fd, [&] {
        for (std::string m = pair.receive_a(); !m.empty(); m = pair.receive_a()) {
            got.push_back(m);
        }
    });
    pair.receive_a();  // takes the pending commands, as pollable_descriptor does
    pair.send_to_a("one");
    pair.send_to_a("two");
    for (int i = 0; i < 20 && got.size() < 2; ++i) {
        BOOST_TEST(loop.run_once(100));
    }
    BOOST_TEST(got == (std::vector<std::string>{"one", "two"}));
}

BOOST_AUTO_TEST_CASE(due_timers_run_earliest_first_after_the_handlers) {
    Pipe pipe;
    FakeClock clock;
    EventLoop loop(clock.clock());
    std::vector<std::string> order;
    loop.set_after_poll(
        [&](MonotonicTime now) { order.push_back("woke@" + std::to_string(now.ms())); });
    loop.add_timer(at(1030), 0, [&] { order.push_back("t30"); });
    loop.add_timer(at(1010), 0, [&] { order.push_back("t10a"); });
    loop.add_timer(at(1020), 0, [&] { order.push_back("t20"); });
    loop.add_timer(at(1010), 0, [&] { order.push_back("t10b"); });
    loop.add_timer(at(1060), 0, [&] { order.push_back("t60"); });
    loop.watch_descriptor(pipe.reader(), [&] {
        pipe.read_byte();
        order.push_back("pipe");
    });
    pipe.write_byte();
    clock.now = 1050;
    BOOST_TEST(loop.run_once(0));
    BOOST_TEST(
        order == (std::vector<std::string>{"woke@1050", "pipe", "t10a", "t10b", "t20", "t30"}),
        boost::test_tools::per_element());
    order.clear();
    BOOST_TEST(loop.run_once(0));  // the ones that ran do not repeat
    BOOST_TEST(order == (std::vector<std::string>{"woke@1050"}));
    clock.now = 1060;
    BOOST_TEST(loop.run_once(0));
    BOOST_TEST(order.back() == "t60");
}

BOOST_AUTO_TEST_CASE(a_repeating_timer_runs_again_its_interval_after_the_turn_it_ran_in) {
    FakeClock clock;
    EventLoop loop(clock.clock());
    std::vector<std::uint64_t> runs;
    loop.add_timer(at(1000), 100, [&] { runs.push_back(clock.now); });
    for (std::uint64_t t : {1000, 1050, 1099, 1100, 1250, 1349, 1350}) {
        clock.now = t;
        BOOST_TEST(loop.run_once(0));
    }
    // Late at 1250: next at 1350, not two runs to catch up.
    BOOST_TEST(runs == (std::vector<std::uint64_t>{1000, 1100, 1250, 1350}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_timer_re_arms_itself_and_can_be_cancelled) {
    FakeClock clock;
    EventLoop loop(clock.clock());
    std::vector<std::uint64_t> runs;
    EventLoop::Id id = 0;
    // Like rss_node's pings: the interval is chosen at each run.
    id = loop.add_timer(at(1000), 0, [&] {
        runs.push_back(clock.now);
        loop.rearm_timer(id, at(clock.now + (runs.size() < 2 ? 100 : 1000)));
    });
    for (std::uint64_t t : {1000, 1099, 1100, 1200, 2099, 2100}) {
        clock.now = t;
        BOOST_TEST(loop.run_once(0));
    }
    BOOST_TEST(runs == (std::vector<std::uint64_t>{1000, 1100, 2100}),
               boost::test_tools::per_element());
    // Re-armed into the past from its own handler: still once per turn.
    int now_again = 0;
    EventLoop::Id eager = 0;
    eager = loop.add_timer(at(2100), 0, [&] {
        now_again++;
        loop.rearm_timer(eager, MonotonicTime());
    });
    BOOST_TEST(loop.run_once(0));
    BOOST_TEST(now_again == 1);
    BOOST_TEST(loop.run_once(0));
    BOOST_TEST(now_again == 2);
    loop.cancel_timer(eager);
    loop.cancel_timer(id);
    clock.now = 9000;
    BOOST_TEST(loop.run_once(0));
    BOOST_TEST(now_again == 2);
    BOOST_TEST(runs.size() == 3u);
}

BOOST_AUTO_TEST_CASE(the_poll_waits_until_the_earliest_timer_and_no_longer_than_the_cap) {
    FakeClock clock;
    EventLoop loop(clock.clock());
    BOOST_TEST(loop.wait_ms(500) == 500u);  // no timer: the cap
    EventLoop::Id late = loop.add_timer(at(1300), 0, [] {});
    loop.add_timer(at(1040), 1000, [] {});
    BOOST_TEST(loop.wait_ms(500) == 40u);
    BOOST_TEST(loop.wait_ms(7) == 7u);
    clock.now = 1040;
    BOOST_TEST(loop.wait_ms(500) == 0u);
    clock.now = 1041;
    BOOST_TEST(loop.wait_ms(500) == 0u);    // overdue
    BOOST_TEST(loop.run_once(0));           // runs it: next at 2041
    BOOST_TEST(loop.wait_ms(500) == 259u);  // `late` is the earliest now
    loop.cancel_timer(late);
    BOOST_TEST(loop.wait_ms(5000) == 1000u);
}

BOOST_AUTO_TEST_CASE(a_timer_less_than_a_millisecond_away_waits_a_millisecond_not_none) {
    MonotonicTime now(1000400);
    EventLoop loop([&] { return now; });
    loop.add_timer(at(1001), 0, [] {});
    BOOST_TEST(loop.wait_ms(500) == 1u);  // rounded up: no busy poll until it is due
    now = MonotonicTime(1001000);
    BOOST_TEST(loop.wait_ms(500) == 0u);
}

BOOST_AUTO_TEST_CASE(a_turn_says_how_much_later_it_came_than_its_poll_was_to_wait) {
    // What the agent and the node excuse their peers for: a process stopped in its handlers,
    // after the poll returned, comes as late to its next turn as one stopped in the poll.
    Pipe ready;
    ready.write_byte();  // never read: each poll returns at once
    FakeClock clock;
    EventLoop loop(clock.clock());
    std::uint64_t stop_ms = 0;
    loop.watch_descriptor(ready.reader(), [&] { clock.now += stop_ms; });
    clock.now += 2100;  // stopped between the loop's construction and its first turn
    BOOST_TEST(loop.run_once(100));
    BOOST_TEST((loop.late() == std::chrono::milliseconds(2000)));  // beyond its poll's 100 ms
    clock.now += 80;
    BOOST_TEST(loop.run_once(100));
    BOOST_TEST(loop.late().count() == 0);  // within what its poll was to wait
    stop_ms = 2100;
    BOOST_TEST(loop.run_once(100));
    BOOST_TEST(loop.late().count() == 0);  // stopped in this turn's handler: seen in the next
    stop_ms = 0;
    BOOST_TEST(loop.run_once(100));
    BOOST_TEST((loop.late() == std::chrono::milliseconds(2000)));
    BOOST_TEST(loop.run_once(100));
    BOOST_TEST(loop.late().count() == 0);
    clock.now += 5000;
    BOOST_TEST(loop.run_once(UINT64_MAX));  // a poll that would wait for ever is never late
    BOOST_TEST(loop.late().count() == 0);
}

BOOST_AUTO_TEST_CASE(run_once_sleeps_that_long_in_the_poll) {
    SocketPair pair("event-loop-wait");
    FakeClock clock;  // stands still: the timer never comes due while the poll waits
    EventLoop loop(clock.clock());
    int runs = 0;
    loop.watch_socket(pair.a, [] {});
    loop.add_timer(at(1060), 0, [&] { runs++; });
    std::uint64_t start = real_ms();
    BOOST_TEST(loop.run_once(5000));
    std::uint64_t waited = real_ms() - start;
    BOOST_TEST(waited >= 55u);
    BOOST_TEST(waited < 2000u);
    BOOST_TEST(runs == 0);
    start = real_ms();
    BOOST_TEST(loop.run_once(30));  // the cap is earlier than the timer
    waited = real_ms() - start;
    BOOST_TEST(waited >= 25u);
    BOOST_TEST(waited < 2000u);
    clock.now = 1060;
    BOOST_TEST(loop.run_once(5000));
    BOOST_TEST(runs == 1);
}

BOOST_AUTO_TEST_CASE(registrations_change_from_inside_a_turn) {
    Pipe first;
    Pipe second;
    Pipe added;
    FakeClock clock;
    EventLoop loop(clock.clock());
    std::vector<std::string> calls;
    EventLoop::Id second_id = 0;
    EventLoop::Id first_id = 0;
    first_id = loop.watch_descriptor(first.reader(), [&] {
        calls.push_back("first");
        first.read_byte();
        // Like an accepted connection served once: it goes, and another comes.
        loop.unwatch(first_id);
        loop.unwatch(second_id);
        loop.watch_descriptor(added.reader(), [&] {
            calls.push_back("added");
            added.read_byte();
        });
    });
    second_id = loop.watch_descriptor(second.reader(), [&] { calls.push_back("second"); });
    first.write_byte();
    second.write_byte();
    added.write_byte();
    BOOST_TEST(loop.run_once(2000));
    BOOST_TEST(calls == (std::vector<std::string>{"first"}));  // `second` was unwatched
    first.write_byte();
    BOOST_TEST(loop.run_once(2000));
    BOOST_TEST(calls == (std::vector<std::string>{"first", "added"}));
}

BOOST_AUTO_TEST_CASE(turns_allocate_nothing) {
    SocketPair pair("event-loop-alloc");
    Pipe pipe;
    FakeClock clock;
    EventLoop loop(clock.clock());
    int handled = 0;
    int timed = 0;
    loop.watch_socket(pair.a, [] {});
    loop.watch_descriptor(pipe.reader(), [&] {
        pipe.read_byte();
        handled++;
    });
    loop.add_timer(at(1000), 10, [&] { timed++; });
    BOOST_TEST(loop.run_once(0));  // the first turn builds the poll items
    g_allocations = 0;
    g_counting = true;
    for (int i = 0; i < 50; ++i) {
        pipe.write_byte();
        clock.now += 10;
        loop.run_once(1000);
    }
    g_counting = false;
    BOOST_TEST(g_allocations == 0u);
    BOOST_TEST(handled == 50);
    BOOST_TEST(timed == 51);
}

BOOST_AUTO_TEST_SUITE_END()
