// The ZeroMQ plumbing that rss_node, its operator commands and the module's backup agent share:
// socket options every network-facing socket gets, receiving one whole multipart message into at
// most a few frames (extra parts are drained and flagged, never buffered), and sending a list of
// frames.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <zmq.h>

#include "wire/messages.h"

namespace rhythm::wire {

// ZMQ_MAXMSGSIZE (wire::kMaxFrameSize), ZMQ_LINGER 0, and the liveness of each connection:
// ZMTP heartbeats every kHeartbeatIntervalMs, a connection silent for kHeartbeatTimeoutMs is
// closed (and a connecting socket connects again), and a connect that gets no answer is given
// up after kConnectTimeoutMs and tried again. Without them a connection cut by a partition
// stays open on both sides and TCP retransmits into it with a backoff of up to two minutes, so
// a web server found its nodes again only that long after the network healed. False if libzmq
// refuses.
constexpr int kHeartbeatIntervalMs = 1000;
constexpr int kHeartbeatTimeoutMs = 3000;
constexpr int kConnectTimeoutMs = 1000;
bool set_network_options(void *socket);

// The socket's ZMQ_FD, for an event loop to poll as a plain descriptor rather than as a socket
// (zmq_poll checks every socket item on every pass, two system calls each). The descriptor turns
// readable when something may be waiting; the caller must then receive until nothing is left,
// or it may not turn readable again. Pending commands are taken first, or it would not turn
// readable for the first message. -1 if libzmq refuses.
int pollable_descriptor(void *socket);

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

  private:
    zmq_msg_t parts_[kMaxFrames];
    std::string_view views_[kMaxFrames];
    std::size_t count_ = 0;
    bool overflow_ = false;
};

// Sends `routing_id` first when not null, then the frames. False when libzmq refuses
// (EAGAIN with ZMQ_DONTWAIT, EHOSTUNREACH for a gone peer under ZMQ_ROUTER_MANDATORY).
bool send_frames(void *socket, const std::string *routing_id, const Frames &frames, int flags);

}  // namespace rhythm::wire
