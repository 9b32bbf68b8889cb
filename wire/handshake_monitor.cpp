// Turning libzmq's handshake events into log lines (see handshake_monitor.h).
#include "wire/handshake_monitor.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <zmq.h>

#include "wire/zmq_io.h"

namespace rhythm::wire {
namespace {

std::atomic<unsigned> next_monitor{0};

constexpr int kWatchedEvents =
    ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

}  // namespace

HandshakeMonitor::~HandshakeMonitor() {
    close();
}

void HandshakeMonitor::close() {
    if (pair_ != nullptr) {
        zmq_close(pair_);
        pair_ = nullptr;
        fd_ = -1;
    }
}

bool HandshakeMonitor::attach(void *context, void *socket, bool curve_server, bool uses_curve,
                              std::string fix, std::string *error, bool connections) {
    curve_server_ = curve_server;
    uses_curve_ = uses_curve;
    fix_ = std::move(fix);
    std::string endpoint = "inproc://rhythm-handshakes-" + std::to_string(next_monitor++);
    int events = kWatchedEvents;
    if (connections) {
        events |= ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED;
    }
    if (zmq_socket_monitor(socket, endpoint.c_str(), events) != 0) {
        *error = std::string("cannot monitor a socket: ") + zmq_strerror(zmq_errno());
        return false;
    }
    pair_ = zmq_socket(context, ZMQ_PAIR);
    int linger = 0;
    if (pair_ == nullptr || zmq_setsockopt(pair_, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(pair_, endpoint.c_str()) != 0 || (fd_ = pollable_descriptor(pair_)) < 0) {
        *error = std::string("cannot watch a socket's handshakes: ") + zmq_strerror(zmq_errno());
        close();
        return false;
    }
    return true;
}

bool HandshakeMonitor::next(MonotonicTime now, std::string *report, ConnectionEvent *connection) {
    report->clear();
    if (connection != nullptr) {
        *connection = ConnectionEvent{};
    }
    if (pair_ == nullptr) {
        return false;
    }
    // An event is two frames: 2 bytes of event and 4 of value (host order), then the endpoint.
    zmq_msg_t head;
    zmq_msg_t address;
    zmq_msg_init(&head);
    zmq_msg_init(&address);
    bool got = zmq_msg_recv(&head, pair_, ZMQ_DONTWAIT) >= 0;
    if (got && zmq_msg_more(&head)) {
        zmq_msg_recv(&address, pair_, 0);
    }
    std::uint16_t event = 0;
    std::uint32_t value = 0;
    if (got && zmq_msg_size(&head) >= 6) {
        std::memcpy(&event, zmq_msg_data(&head), sizeof event);
        std::memcpy(&value, static_cast<const char *>(zmq_msg_data(&head)) + 2, sizeof value);
    }
    std::string endpoint(static_cast<const char *>(zmq_msg_data(&address)), zmq_msg_size(&address));
    zmq_msg_close(&head);
    zmq_msg_close(&address);
    if (event == ZMQ_EVENT_ACCEPTED || event == ZMQ_EVENT_DISCONNECTED) {
        if (connection != nullptr) {
            connection->kind = event == ZMQ_EVENT_ACCEPTED ? ConnectionEvent::Kind::kAccepted
                                                           : ConnectionEvent::Kind::kClosed;
            connection->fd = static_cast<int>(value);
        }
        return got;
    }
    if (!got || event == 0 || event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        return got;
    }
    if (connection != nullptr) {
        connection->kind = ConnectionEvent::Kind::kHandshakeFailed;
    }
    failures_++;
    std::string line = describe(event, value, endpoint);
    if (line == last_report_ && now - last_reported_ < std::chrono::milliseconds(kRepeatQuietMs)) {
        repeats_++;
        return true;
    }
    *report = line;
    if (line == last_report_ && repeats_ > 0) {
        *report += " (" + std::to_string(repeats_ + 1) + " times since the last report)";
    }
    last_report_ = line;
    last_reported_ = now;
    repeats_ = 0;
    return true;
}

std::string HandshakeMonitor::describe(std::uint16_t event, std::uint32_t value,
                                       const std::string &endpoint) const {
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        if (curve_server_) {
            return uses_curve_
                       ? "refused a client on " + endpoint +
                             ": it does not use CURVE, and this node requires it"
                       : "refused a client on " + endpoint +
                             ": it uses CURVE, and this node has no keys (set " + fix_ + ")";
        }
        return uses_curve_ ? endpoint + " refused the connection: it does not use CURVE while " +
                                 "this side does (" + fix_ + "); nothing is sent in plain text"
                           : endpoint + " refused the connection: it requires CURVE; set " + fix_;
    }
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC && curve_server_) {
        return "refused a client on " + endpoint +
               ": its CURVE handshake does not decrypt, it holds a server key other than this "
               "bank's";
    }
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        return curve_server_
                   ? "refused a client on " + endpoint +
                         ": its public key is not listed (ZAP status " + std::to_string(value) + ")"
                   : endpoint + " refused this side's CURVE key (ZAP status " +
                         std::to_string(value) +
                         "): list its public key in the node's --curve-clients file";
    }
    // A node that cannot decrypt a client's hello, or that wants CURVE from a plain client, may
    // just hang up: the client learns no more than this.
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && curve_server_) {
        return uses_curve_ ? "a client on " + endpoint +
                                 " failed the CURVE handshake: either it does not use CURVE, or "
                                 "it holds a server key other than this bank's"
                           : "a client on " + endpoint +
                                 " failed the handshake: if it uses CURVE, this node needs " +
                                 fix_ + " too";
    }
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
        return uses_curve_ ? "the CURVE handshake with " + endpoint +
                                 " failed: the node hung up or did not finish it in 5 s (it may "
                                 "be stopped or out of reach), or it does not use CURVE, or the "
                                 "bank's public key given to " +
                                 fix_ + " is not its key"
                           : "the handshake with " + endpoint +
                                 " failed (the node hung up, or did not finish it in 5 s: it may "
                                 "be stopped or out of reach); if the node requires CURVE, set " +
                                 fix_;
    }
    char code[16];
    std::snprintf(code, sizeof code, "0x%x", value);
    return "handshake on " + endpoint + " failed (event " + std::to_string(event) + ", " + code +
           ")";
}

}  // namespace rhythm::wire
