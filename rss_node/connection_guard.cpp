// The bounds on what a connection can make the node hold (see connection_guard.h).
#include "rss_node/connection_guard.h"

#include <algorithm>

namespace rhythm::node {
namespace {

// "host:port" or "[v6]:port" without its port.
std::string host_of(const std::string &address) {
    std::size_t colon = address.rfind(':');
    return colon == std::string::npos ? address : address.substr(0, colon);
}

}  // namespace

ConnectionGuard::ConnectionGuard(std::size_t sockets, const Limits &limits)
    : limits_(limits), per_socket_(sockets) {}

ConnectionGuard::Admit ConnectionGuard::on_accepted(std::size_t socket, int fd,
                                                    const std::string &address) {
    if (fd < 0) {
        return Admit::kAdmitted;
    }
    if (static_cast<std::size_t>(fd) < connections_.size() && connections_[fd].live) {
        forget(fd);  // closed on another socket, whose event has not come yet: the number is reused
    }
    std::string host = host_of(address);
    if (per_socket_[socket] >= limits_.max_connections) {
        return Admit::kSocketFull;
    }
    std::size_t &from_host = per_address_[{socket, host}];
    if (from_host >= limits_.max_per_address) {
        if (from_host == 0) {
            per_address_.erase({socket, host});
        }
        return Admit::kAddressFull;
    }
    if (static_cast<std::size_t>(fd) >= connections_.size()) {
        connections_.resize(static_cast<std::size_t>(fd) + 1);
    }
    Connection &c = connections_[fd];
    c = Connection{};
    c.live = true;
    c.socket = socket;
    c.address = address;
    c.host = std::move(host);
    ++from_host;
    ++per_socket_[socket];
    return Admit::kAdmitted;
}

void ConnectionGuard::on_closed(std::size_t socket, int fd) {
    if (fd >= 0 && static_cast<std::size_t>(fd) < connections_.size() && connections_[fd].live &&
        connections_[fd].socket == socket) {
        forget(fd);
    }
}

void ConnectionGuard::set_held(Connection *c, std::uint64_t held, bool stuck) {
    held_total_ = held_total_ - c->held + held;
    c->held = held;
    c->stuck = stuck;
}

void ConnectionGuard::forget(int fd) {
    Connection &c = connections_[fd];
    set_held(&c, 0, false);
    auto it = per_address_.find({c.socket, c.host});
    if (it != per_address_.end() && --it->second == 0) {
        per_address_.erase(it);
    }
    --per_socket_[c.socket];
    c = Connection{};
}

std::vector<ConnectionGuard::Offender> ConnectionGuard::check(
    const std::function<bool(int, std::uint64_t *)> &read, std::uint64_t now_ms) {
    std::vector<Offender> offenders;
    std::size_t measured = 0;
    for (std::size_t looked = 0;
         looked < connections_.size() && measured < limits_.measured_per_check; ++looked) {
        std::size_t fd = next_;
        next_ = next_ + 1 < connections_.size() ? next_ + 1 : 0;
        Connection &c = connections_[fd];
        std::uint64_t bytes_read = 0;
        if (!c.live || !read(static_cast<int>(fd), &bytes_read)) {
            continue;
        }
        ++measured;
        if (!c.measured || bytes_read != c.bytes_read) {
            c.measured = true;
            c.bytes_read = bytes_read;
            c.last_byte_ms = now_ms;
        } else if (limits_.silent_ms != 0 && now_ms - c.last_byte_ms >= limits_.silent_ms) {
            offenders.push_back(Offender{static_cast<int>(fd), c.socket, c.address, c.held, true});
            continue;
        }
        bool progressed = c.delivered != c.delivered_at_check;
        c.delivered_at_check = c.delivered;
        std::int64_t unhanded =
            static_cast<std::int64_t>(bytes_read) - static_cast<std::int64_t>(c.delivered);
        if (unhanded < c.baseline) {
            c.baseline = unhanded;
            c.baseline_raised_ms = now_ms;
        }
        std::uint64_t held = static_cast<std::uint64_t>(unhanded - c.baseline);
        if (progressed) {
            // Messages come out: what it holds is on its way. The protocol's own bytes (its
            // heartbeats, say) are taken into the baseline now and then.
            if (now_ms - c.baseline_raised_ms >= kBaselineRaiseMs) {
                c.baseline = unhanded;
                c.baseline_raised_ms = now_ms;
            }
            set_held(&c, held, false);
            continue;
        }
        // Idle but for the heartbeats: those few bytes a second go into the baseline too.
        std::uint64_t heartbeats =
            kHeartbeatBytesPerSecond * (now_ms - c.baseline_raised_ms) / 1000;
        if (held <= heartbeats) {
            c.baseline = unhanded;
            c.baseline_raised_ms = now_ms;
            set_held(&c, 0, false);
            continue;
        }
        set_held(&c, held, true);
        if (held > limits_.max_unfinished_bytes) {
            offenders.push_back(Offender{static_cast<int>(fd), c.socket, c.address, held});
        }
    }
    for (const Offender &o : offenders) {
        forget(o.fd);
    }
    // Over the total, counting the stuck connections only (a peer whose messages come out may
    // hold more): those that hold most go first. A scan of every connection, only while the
    // node is held so much.
    if (held_total_ > limits_.max_unfinished_total) {
        std::vector<Offender> stuck;
        std::uint64_t stuck_total = 0;
        for (std::size_t fd = 0; fd < connections_.size(); ++fd) {
            const Connection &c = connections_[fd];
            if (c.live && c.stuck) {
                stuck.push_back(Offender{static_cast<int>(fd), c.socket, c.address, c.held});
                stuck_total += c.held;
            }
        }
        std::sort(stuck.begin(), stuck.end(),
                  [](const Offender &a, const Offender &b) { return a.held > b.held; });
        for (Offender &o : stuck) {
            if (stuck_total <= limits_.max_unfinished_total) {
                break;
            }
            stuck_total -= o.held;
            forget(o.fd);
            offenders.push_back(std::move(o));
        }
    }
    std::sort(offenders.begin(), offenders.end(), [](const Offender &a, const Offender &b) {
        return a.silent != b.silent ? a.silent : a.held > b.held;
    });
    return offenders;
}

}  // namespace rhythm::node
