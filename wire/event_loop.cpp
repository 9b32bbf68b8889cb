// The event loop: registrations, one poll per turn, handlers, then timers.
#include "wire/event_loop.h"

#include <algorithm>
#include <climits>

namespace rhythm::wire {

EventLoop::EventLoop(Clock clock) : clock_(std::move(clock)), now_(clock_()) {}

EventLoop::Id EventLoop::watch(void *socket, int fd, Handler handler) {
    watches_.push_back(std::make_unique<Watch>(Watch{next_id_++, socket, fd, std::move(handler)}));
    changed_ = true;
    return watches_.back()->id;
}

EventLoop::Id EventLoop::watch_socket(void *socket, Handler handler) {
    return watch(socket, -1, std::move(handler));
}

EventLoop::Id EventLoop::watch_descriptor(int fd, Handler handler) {
    return watch(nullptr, fd, std::move(handler));
}

void EventLoop::unwatch(Id id) {
    for (auto &w : watches_) {
        if (w->id == id) {
            w->removed = true;
            changed_ = true;
        }
    }
}

EventLoop::Id EventLoop::add_timer(MonotonicTime at, std::uint64_t every_ms, Handler handler) {
    timers_.push_back(std::make_unique<Timer>(Timer{next_id_++, at, every_ms, std::move(handler)}));
    return timers_.back()->id;
}

EventLoop::Timer *EventLoop::find_timer(Id id) {
    for (auto &t : timers_) {
        if (t->id == id && !t->cancelled) {
            return t.get();
        }
    }
    return nullptr;
}

void EventLoop::rearm_timer(Id id, MonotonicTime at) {
    if (Timer *t = find_timer(id)) {
        t->at = at;
        t->armed = true;
    }
}

void EventLoop::cancel_timer(Id id) {
    if (Timer *t = find_timer(id)) {
        t->cancelled = true;
        timers_cancelled_ = true;
    }
}

void EventLoop::set_after_poll(std::function<void(MonotonicTime now)> hook) {
    after_poll_ = std::move(hook);
}

std::uint64_t EventLoop::wait_ms(std::uint64_t max_wait_ms) const {
    std::uint64_t wait = max_wait_ms;
    bool any = false;
    MonotonicTime earliest;
    for (const auto &t : timers_) {
        if (t->armed && !t->cancelled && (!any || t->at < earliest)) {
            earliest = t->at;
            any = true;
        }
    }
    if (any) {
        MonotonicTime now = clock_();
        std::uint64_t until = earliest > now
                                  ? static_cast<std::uint64_t>((earliest - now + Duration(999)) /
                                                               std::chrono::milliseconds(1))
                                  : 0;
        wait = std::min(wait, until);
    }
    return wait;
}

void EventLoop::rebuild() {
    watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                  [](const std::unique_ptr<Watch> &w) { return w->removed; }),
                   watches_.end());
    items_.clear();
    polled_.clear();
    for (auto &w : watches_) {
        items_.push_back({w->socket, w->fd, ZMQ_POLLIN, 0});
        polled_.push_back(w.get());
    }
    changed_ = false;
}

bool EventLoop::run_once(std::uint64_t max_wait_ms) {
    if (changed_) {
        rebuild();
    }
    std::uint64_t wait = wait_ms(max_wait_ms);
    long timeout = wait > static_cast<std::uint64_t>(LONG_MAX) ? -1 : static_cast<long>(wait);
    int ready = zmq_poll(items_.data(), static_cast<int>(items_.size()), timeout);
    if (ready < 0) {
        return false;
    }
    MonotonicTime previous = now_;
    now_ = clock_();
    late_ = timeout < 0 ? Duration(0)
                        : std::max(Duration(0), now_ - previous - std::chrono::milliseconds(wait));
    turn_++;
    if (after_poll_) {
        after_poll_(now_);
    }
    // Handlers may register more meanwhile: only the items of this poll are looked at.
    const std::size_t polled = items_.size();
    for (std::size_t i = 0; ready > 0 && i < polled; ++i) {
        if ((items_[i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) == 0) {
            continue;
        }
        ready--;
        if (!polled_[i]->removed) {
            polled_[i]->handler();
        }
    }
    run_timers();
    return true;
}

void EventLoop::run_timers() {
    for (;;) {
        Timer *next = nullptr;
        // Earliest first; of two at the same time, the first registered. Timers registered by a
        // handler are in `timers_` already and run this turn if due.
        for (auto &t : timers_) {
            if (t->armed && !t->cancelled && t->at <= now_ && t->ran_in_turn != turn_ &&
                (next == nullptr || t->at < next->at)) {
                next = t.get();
            }
        }
        if (next == nullptr) {
            break;
        }
        next->ran_in_turn = turn_;
        if (next->every_ms > 0) {
            next->at = now_ + std::chrono::milliseconds(next->every_ms);
        } else {
            next->armed = false;
        }
        next->handler();
    }
    if (timers_cancelled_) {
        timers_.erase(std::remove_if(timers_.begin(), timers_.end(),
                                     [](const std::unique_ptr<Timer> &t) { return t->cancelled; }),
                      timers_.end());
        timers_cancelled_ = false;
    }
}

}  // namespace rhythm::wire
