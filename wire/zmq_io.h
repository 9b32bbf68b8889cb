// The ZeroMQ plumbing that rss_node, its operator commands and the module's backup agent share:
// socket options every network-facing socket gets, receiving one whole multipart message into at
// most a few frames (extra parts are drained and flagged, never buffered), and sending a list of
// frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <zmq.h>

#include "wire/messages.h"

namespace rhythm::wire {

// ZMQ_MAXMSGSIZE (wire::kMaxFrameSize), ZMQ_LINGER 0, and the liveness of each connection:
// ZMTP heartbeats every kHeartbeatIntervalMs, a connection silent for kHeartbeatTimeoutMs is
// closed (and a connecting socket connects again), and a connect that gets no answer is given
// up after kConnectTimeoutMs and tried again, as is a connection whose handshake is not done in
// kHandshakeTimeoutMs (libzmq's default: 30 s; a peer that accepts and then goes silent, a host
// frozen or a proxy in front of a node that is down, held a connection that long; on a node it
// also holds a place under --max-connections). Without them a connection cut by a partition
// stays open on both sides and TCP retransmits into it with a backoff of up to two minutes, so
// a web server found its nodes again only that long after the network healed. False if libzmq
// refuses.
constexpr int kHeartbeatIntervalMs = 1000;
constexpr int kHeartbeatTimeoutMs = 3000;
constexpr int kConnectTimeoutMs = 1000;
constexpr int kHandshakeTimeoutMs = 5000;
bool set_network_options(void *socket);

// The socket's ZMQ_FD, for an event loop to poll as a plain descriptor rather than as a socket
// (zmq_poll checks every socket item on every pass, two system calls each). The descriptor turns
// readable when something may be waiting; the caller must then receive until nothing is left,
// or it may not turn readable again. Pending commands are taken first, or it would not turn
// readable for the first message. -1 if libzmq refuses.
int pollable_descriptor(void *socket);

// The bytes a frame of `size` bytes takes on a ZMTP 3 connection: its header (2 bytes, or 9 from
// 256 bytes), and under CURVE the MESSAGE command that carries it (33 bytes more, then its header).
std::uint64_t zmtp_frame_bytes(std::size_t size, bool curve);

class ReceivedMessage {
  public:
    static constexpr std::size_t kMaxFrames = 4;

    ReceivedMessage();
    ~ReceivedMessage();
    ReceivedMessage(const ReceivedMessage &) = delete;
    ReceivedMessage &operator=(const ReceivedMessage &) = delete;

    // Receives every part of the next message; false when none is waiting (with ZMQ_DONTWAIT)
    // or on error. Parts past kMaxFrames are received and discarded, and overflow() says so.
    bool receive(void *socket, int flags);

    std::size_t size() const { return count_; }
    bool overflow() const { return overflow_; }
    const std::string_view *frames() const { return views_; }

    // The descriptor of the connection it came from (-1: unknown), and the bytes its frames took
    // on that connection (zmtp_frame_bytes); `routed`: the first frame is the routing identity
    // a ROUTER put in front, which never travelled.
    int source_fd() const { return source_fd_; }
    std::uint64_t wire_bytes(bool curve, bool routed) const;

  private:
    zmq_msg_t parts_[kMaxFrames];
    std::string_view views_[kMaxFrames];
    std::size_t count_ = 0;
    bool overflow_ = false;
    int source_fd_ = -1;
    std::uint64_t plain_bytes_ = 0;  // every frame's zmtp_frame_bytes, without and with CURVE
    std::uint64_t curve_bytes_ = 0;
    std::size_t first_size_ = 0;
};

// Sends `routing_id` first when not null, then the frames. False when libzmq refuses
// (EAGAIN with ZMQ_DONTWAIT, EHOSTUNREACH for a gone peer under ZMQ_ROUTER_MANDATORY).
bool send_frames(void *socket, const std::string *routing_id, const Frames &frames, int flags);

}  // namespace rhythm::wire
