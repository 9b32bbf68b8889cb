// Receiving and sending whole multipart messages with the C API of libzmq.
#include "wire/zmq_io.h"

#include <cstdint>

namespace rhythm::wire {

int pollable_descriptor(void *socket) {
    int fd = -1;
    std::size_t fd_size = sizeof fd;
    int events = 0;
    std::size_t events_size = sizeof events;
    if (zmq_getsockopt(socket, ZMQ_FD, &fd, &fd_size) != 0 ||
        zmq_getsockopt(socket, ZMQ_EVENTS, &events, &events_size) != 0) {
        return -1;
    }
    return fd;
}

bool set_network_options(void *socket) {
    std::int64_t max_size = static_cast<std::int64_t>(kMaxFrameSize);
    int linger = 0;
    return zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size) == 0 &&
           zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger) == 0 &&
           zmq_setsockopt(socket, ZMQ_HEARTBEAT_IVL, &kHeartbeatIntervalMs,
                          sizeof kHeartbeatIntervalMs) == 0 &&
           zmq_setsockopt(socket, ZMQ_HEARTBEAT_TIMEOUT, &kHeartbeatTimeoutMs,
                          sizeof kHeartbeatTimeoutMs) == 0 &&
           zmq_setsockopt(socket, ZMQ_CONNECT_TIMEOUT, &kConnectTimeoutMs,
                          sizeof kConnectTimeoutMs) == 0 &&
           zmq_setsockopt(socket, ZMQ_HANDSHAKE_IVL, &kHandshakeTimeoutMs,
                          sizeof kHandshakeTimeoutMs) == 0;
}

std::uint64_t zmtp_frame_bytes(std::size_t size, bool curve) {
    std::uint64_t body = curve ? size + 33 : size;
    return body + (body < 256 ? 2 : 9);
}

std::uint64_t ReceivedMessage::wire_bytes(bool curve, bool routed) const {
    std::uint64_t bytes = curve ? curve_bytes_ : plain_bytes_;
    return routed ? bytes - zmtp_frame_bytes(first_size_, curve) : bytes;
}

ReceivedMessage::ReceivedMessage() {
    for (auto &p : parts_) {
        zmq_msg_init(&p);
    }
}

ReceivedMessage::~ReceivedMessage() {
    for (auto &p : parts_) {
        zmq_msg_close(&p);
    }
}

bool ReceivedMessage::receive(void *socket, int flags) {
    count_ = 0;
    overflow_ = false;
    source_fd_ = -1;
    plain_bytes_ = 0;
    curve_bytes_ = 0;
    zmq_msg_t spill;
    zmq_msg_init(&spill);
    bool received = false;
    for (;;) {
        bool keep = count_ < kMaxFrames;
        zmq_msg_t *target = keep ? &parts_[count_] : &spill;
        // Later parts of a message are already queued: only the first may wait.
        if (zmq_msg_recv(target, socket, received ? 0 : flags) < 0) {
            break;
        }
        std::size_t size = zmq_msg_size(target);
        if (!received) {
            source_fd_ = zmq_msg_get(target, ZMQ_SRCFD);
            first_size_ = size;
        }
        plain_bytes_ += zmtp_frame_bytes(size, false);
        curve_bytes_ += zmtp_frame_bytes(size, true);
        received = true;
        if (keep) {
            views_[count_] = std::string_view(static_cast<const char *>(zmq_msg_data(target)),
                                              zmq_msg_size(target));
            count_++;
        } else {
            overflow_ = true;
        }
        if (!zmq_msg_more(target)) {
            break;
        }
    }
    zmq_msg_close(&spill);
    return received;
}

bool send_frames(void *socket, const std::string *routing_id, const Frames &frames, int flags) {
    if (routing_id != nullptr) {
        int more = frames.empty() ? 0 : ZMQ_SNDMORE;
        if (zmq_send(socket, routing_id->data(), routing_id->size(), flags | more) < 0) {
            return false;
        }
    }
    for (std::size_t i = 0; i < frames.size(); ++i) {
        int more = i + 1 < frames.size() ? ZMQ_SNDMORE : 0;
        if (zmq_send(socket, frames[i].data(), frames[i].size(), flags | more) < 0) {
            return false;
        }
    }
    return true;
}

}  // namespace rhythm::wire
