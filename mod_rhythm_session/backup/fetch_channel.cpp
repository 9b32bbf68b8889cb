// The worker <-> agent fetch channel (see fetch_channel.h).
#include "fetch_channel.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"

namespace rhythm {
namespace {

constexpr unsigned char kChannelVersion = 2;

bool fill_address(const std::string &path, sockaddr_un *addr) {
    std::memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (path.size() >= sizeof addr->sun_path) {
        return false;
    }
    std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
    return true;
}

// Waits for `events` on `fd` until `deadline`; false on timeout or error.
bool wait_for(int fd, short events, MonotonicTime deadline) {
    for (;;) {
        Duration left = deadline - MonotonicTime::now();
        if (left <= Duration(0)) {
            return false;
        }
        pollfd p{fd, events, 0};
        // Whole milliseconds, rounded up: never back before the deadline.
        int n =
            poll(&p, 1, static_cast<int>((left + Duration(999)) / std::chrono::milliseconds(1)));
        if (n > 0) {
            return (p.revents & events) != 0;
        }
        if (n < 0 && errno != EINTR) {
            return false;
        }
    }
}

}  // namespace

const char *fetch_outcome_name(FetchOutcome outcome) {
    switch (outcome) {
        case FetchOutcome::kFound:
            return "found";
        case FetchOutcome::kNotFound:
            return "not found in the bank";
        case FetchOutcome::kDeleted:
            return "deleted in the bank";
        case FetchOutcome::kTimedOut:
            return "no answer from the session's owners in time";
        case FetchOutcome::kNoAgent:
            return "the backup agent is not running";
        case FetchOutcome::kShed:
            return "too many failover fetches waiting already";
        case FetchOutcome::kTooLarge:
            return "larger than RhythmSessionMaxSize here: give every server of the bank the "
                   "same RhythmSessionMaxSize";
        case FetchOutcome::kNoSpace:
            return "the cache is full of sessions in use: raise RhythmSessionCacheSize";
        case FetchOutcome::kCurrent:
            return "the copy here is current";
        case FetchOutcome::kReplaced:
            return "replaced by the bank's newer copy";
        case FetchOutcome::kUnreachable:
            return "no node of the bank can be reached";
        case FetchOutcome::kBankSilent:
            return "no node of the bank answers, for less than SessionBackupOutageGrace so far";
        case FetchOutcome::kOwnerOut:
            return "an owner of the session out of reach lately may hold a newer copy than the "
                   "nodes that answered, which cannot vouch for theirs";
    }
    return "?";
}

bool decode_fetch_outcome(unsigned char byte, FetchOutcome *outcome) {
    if (byte > static_cast<unsigned char>(FetchOutcome::kOwnerOut)) {
        return false;
    }
    *outcome = static_cast<FetchOutcome>(byte);
    return true;
}

void encode_fetch_request(const FetchRequest &request, unsigned char out[kFetchRequestBytes]) {
    out[0] = kChannelVersion;
    out[1] = request.check ? 1 : 0;
    std::memcpy(out + 2, request.id.bytes.data(), wire::kSessionKeyBytes);
    for (int b = 0; b < 4; ++b) {
        out[2 + wire::kSessionKeyBytes + b] =
            static_cast<unsigned char>(request.timeout_ms >> (24 - 8 * b));
    }
}

bool decode_fetch_request(const unsigned char *data, std::size_t size, FetchRequest *request) {
    if (size != kFetchRequestBytes || data[0] != kChannelVersion || data[1] > 1) {
        return false;
    }
    request->check = data[1] == 1;
    std::memcpy(request->id.bytes.data(), data + 2, wire::kSessionKeyBytes);
    request->timeout_ms = 0;
    for (int b = 0; b < 4; ++b) {
        request->timeout_ms = (request->timeout_ms << 8) | data[2 + wire::kSessionKeyBytes + b];
    }
    return true;
}

int listen_fetch_channel(const std::string &path, int uid, int gid, std::string *why) {
    sockaddr_un addr;
    if (!fill_address(path, &addr)) {
        *why = "the socket path " + path + " is too long";
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *why = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    unlink(path.c_str());
    if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        (uid >= 0 && chown(path.c_str(), uid, gid) != 0) || chmod(path.c_str(), 0600) != 0 ||
        listen(fd, 128) != 0) {
        *why = "cannot listen on " + path + ": " + std::strerror(errno);
        close(fd);
        return -1;
    }
    return fd;
}

FetchOutcome fetch_via_agent(const std::string &path, const FetchRequest &fetch) {
    MonotonicTime deadline = MonotonicTime::now() + std::chrono::milliseconds(fetch.timeout_ms);
    sockaddr_un addr;
    if (!fill_address(path, &addr)) {
        return FetchOutcome::kNoAgent;
    }
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return FetchOutcome::kNoAgent;
    }
    FetchOutcome outcome = FetchOutcome::kNoAgent;
    unsigned char request[kFetchRequestBytes];
    encode_fetch_request(fetch, request);
    if (connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0 &&
        send(fd, request, sizeof request, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof request)) {
        outcome = FetchOutcome::kTimedOut;
        unsigned char answer = 0;
        // A byte that is no outcome leaves it timed out: no answer the worker can use. Giving up,
        // the worker shuts its side first: an answer the agent sends from then on fails there
        // (and a copy it stored for this request is checked before it is served: FetchService),
        // and one it sent before is still read. Without that, a copy stored a moment after the
        // worker gave up was served later as the bank's latest (the fault campaign, seed 90).
        bool heard = wait_for(fd, POLLIN, deadline);
        if (!heard) {
            shutdown(fd, SHUT_RD);
        }
        if (recv(fd, &answer, 1, heard ? 0 : MSG_DONTWAIT) == 1) {
            decode_fetch_outcome(answer, &outcome);
        }
    }
    close(fd);
    return outcome;
}

}  // namespace rhythm
