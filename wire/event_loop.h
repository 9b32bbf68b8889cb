// A small event loop in the spirit of Redis's ae.c (aeCreateFileEvent, aeCreateTimeEvent):
// handlers registered for ZeroMQ sockets and for plain descriptors, and timers ordered on a
// monotonic clock, once or repeating. Each turn (run_once) polls once, for no longer than until
// the earliest timer and a cap the caller gives (its own pacing), then calls the handlers of
// what is ready, in the order they were registered, then the timers that are due, earliest first.
//
// Sockets or descriptors: zmq_poll checks every socket item on each pass, two system calls each.
// A socket that only needs to wake the loop (a handshake monitor, the ZAP handler) is better
// watched as a plain descriptor, its pollable_descriptor (zmq_io.h); its handler must then
// receive until nothing is left, or the descriptor may not turn readable again.
//
// A turn allocates nothing: the poll items are rebuilt only when the registrations change.
// Handlers may register and unregister anything during a turn, themselves included: what is
// unregistered is not called again, even later in the same turn; a socket or descriptor
// registered is polled from the next turn, a timer runs in this one if it is due. The loop has no
// clock of its own: it is given one (the monotonic clock, common/clock.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>
#include <zmq.h>

#include "common/clock.h"

namespace rhythm::wire {

class EventLoop {
  public:
    using Clock = std::function<MonotonicTime()>;
    using Handler = std::function<void()>;
    using Id = std::uint64_t;  // of a watch or a timer; never 0

    // Reads the clock once: the first turn's lateness is measured from here.
    explicit EventLoop(Clock clock);
    EventLoop(const EventLoop &) = delete;
    EventLoop &operator=(const EventLoop &) = delete;

    // Calls `handler` in each turn in which the ZeroMQ socket `socket` has a message waiting.
    Id watch_socket(void *socket, Handler handler);
    // Calls `handler` in each turn in which the descriptor `fd` is readable, or in error.
    Id watch_descriptor(int fd, Handler handler);
    void unwatch(Id id);

    // Calls `handler` in the first turn at or after `at` (MonotonicTime(): the first turn); then,
    // when `every_ms` is not 0, every_ms after that turn, until cancelled. A timer that does not
    // repeat stays registered, idle, until re-armed. A timer runs at most once per turn.
    Id add_timer(MonotonicTime at, std::uint64_t every_ms, Handler handler);
    // The timer's next time (a handler may re-arm its own timer); its repetition is kept.
    void rearm_timer(Id id, MonotonicTime at);
    void cancel_timer(Id id);

    // Called in each turn as the poll returns, before any handler, with the time the timers are
    // compared with: where the caller reads its other clocks, or finds it did not run for a while
    // (Redis's aeSetAfterSleepProc).
    void set_after_poll(std::function<void(MonotonicTime now)> hook);

    // How long the next poll would wait: until the earliest timer (0 when one is due, else the
    // milliseconds rounded up), at most `max_wait_ms`.
    std::uint64_t wait_ms(std::uint64_t max_wait_ms) const;

    // One turn. False when the poll failed (errno says why; EINTR: a signal came): then nothing
    // was called.
    bool run_once(std::uint64_t max_wait_ms);

    // The time of the last turn, as given to the after-poll hook (before the first: of the
    // loop's construction).
    MonotonicTime now() const { return now_; }

    // How much later the last turn came than its poll was to wait, measured from the turn
    // before: the time the process did not run (stopped, or starved of CPU) wherever it was,
    // in the poll or in the previous turn's work, and that work itself. A caller that counts
    // its peers' silence excuses this much of it. The first turn is measured from the loop's
    // construction (a process stopped while it starts is as late); 0 after a poll that waits
    // for ever; after a failed poll it includes that poll's wait too.
    Duration late() const { return late_; }

  private:
    struct Watch {
        Id id = 0;
        void *socket = nullptr;
        int fd = -1;
        Handler handler;
        bool removed = false;
    };
    struct Timer {
        Id id = 0;
        MonotonicTime at;
        std::uint64_t every_ms = 0;
        Handler handler;
        bool armed = true;
        bool cancelled = false;
        std::uint64_t ran_in_turn = 0;
    };

    Id watch(void *socket, int fd, Handler handler);
    Timer *find_timer(Id id);
    void rebuild();
    void run_timers();

    Clock clock_;
    std::function<void(MonotonicTime)> after_poll_;
    std::vector<std::unique_ptr<Watch>> watches_;
    std::vector<std::unique_ptr<Timer>> timers_;
    // The poll items and the watch of each, rebuilt when `changed_`.
    std::vector<zmq_pollitem_t> items_;
    std::vector<Watch *> polled_;
    bool changed_ = false;
    bool timers_cancelled_ = false;
    Id next_id_ = 1;
    std::uint64_t turn_ = 0;
    MonotonicTime now_;
    Duration late_{0};
};

}  // namespace rhythm::wire
