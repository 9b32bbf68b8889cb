// The constants of the bank's wire protocol, version 7: the protocol version byte, the message
// types, the shard count and the limits every decoder enforces. docs/protocol.md is the prose
// specification of the same facts; a change here is a change of protocol version, but for a new
// unsolicited message that a receiver which does not know it may drop with nothing lost
// (restarting, docs/protocol.md).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/endpoint.h"
#include "common/name.h"

namespace rhythm::wire {

// The first byte of every header. A receiver answers a request of another version with an
// kError of code kVersionMismatch (in its own version) and drops a published update of another
// version, counting it as malformed.
constexpr std::uint8_t kProtocolVersion = 7;

// Sessions are spread over a fixed number of shards; the shard is the topic of a published
// update. Fixed by the protocol version: every party must agree on it.
constexpr std::uint32_t kShardCount = 1024;

// A session's version: its term in the high 32 bits, a count within the term in the low ones
// (docs/protocol.md, "Versions"). A server that continues a copy fetched from the bank starts the
// next term at its first version; an operator's end of a session takes the last version of the
// next term, above anything a server can still make of it.
constexpr std::uint64_t version_term(std::uint64_t version) {
    return version >> 32;
}
constexpr std::uint64_t version_count(std::uint64_t version) {
    return version & 0xFFFFFFFFu;
}
constexpr std::uint64_t first_version_of_term(std::uint64_t term) {
    return (term << 32) | 1;
}
constexpr std::uint64_t last_version_of_term(std::uint64_t term) {
    return (term << 32) | 0xFFFFFFFFu;
}

// One bit per shard, most significant bit of byte 0 is shard 0.
constexpr std::size_t kShardBitmapBytes = kShardCount / 8;

// Limits on what a frame may carry. kMaxFrameSize is what every socket sets as ZMQ_MAXMSGSIZE.
// A name and an endpoint are limited where their rules are written (common/name.h,
// common/endpoint.h), for the settings that make them as for the decoders that read them.
using rhythm::kMaxEndpointLength;
using rhythm::kMaxNameLength;
constexpr std::size_t kMaxOriginLength = kMaxNameLength;  // a record's origin is a name
constexpr std::size_t kMaxDataLength = 1024 * 1024;
constexpr std::size_t kMaxErrorTextLength = 1024;
constexpr std::size_t kMaxStatusLength = 1024 * 1024;
constexpr std::size_t kMaxRefusalsPerMessage = 4096;

// Heartbeat-ack flag bits; every other bit must be 0.
constexpr std::uint8_t kAckFlagFull = 0x01;  // the node has refused changes for lack of memory
// Fetch-reply flag bits; every other bit must be 0. Provisional comes only with owner; asking
// only with owner alone, in a not-found reply.
constexpr std::uint8_t kFetchFlagOwner = 0x01;        // the node owns the key's shard
constexpr std::uint8_t kFetchFlagProvisional = 0x02;  // ... but cannot vouch for its copy yet
constexpr std::uint8_t kFetchFlagAsking = 0x04;       // ... and asks a server first (a handover)
constexpr std::size_t kMaxFrameSize = kMaxDataLength + 64 * 1024;

// Sizes that never change within a version. A published message is one frame: topic, header,
// body; every other message is a header frame and a body frame.
constexpr std::size_t kTopicBytes = 2;
constexpr std::size_t kHeaderBytes = 2;
constexpr std::size_t kPublishedBodyOffset = kTopicBytes + kHeaderBytes;
constexpr std::size_t kSessionKeyBytes = 16;
constexpr std::size_t kAgentIdBytes = 16;

enum class MessageType : std::uint8_t {
    // Published by an agent on its PUB socket, topic first.
    kUpdate = 1,
    kTombstone = 2,
    // Requests to a node's ROUTER and their answers.
    kFetch = 3,
    kFetchReply = 4,
    kHeartbeat = 5,
    kHeartbeatAck = 6,
    kResend = 7,
    kRefused = 8,
    kSnapshotRequest = 9,
    kSnapshotRecord = 10,
    kSnapshotEnd = 11,
    kStatusRequest = 12,
    kStatusReply = 13,
    kPing = 14,
    kPong = 15,
    kError = 16,
    kEndSession = 17,
    kEndSessionReply = 18,
    // A node to a web server's agent, and its answer (both over the agent's DEALER).
    kHandover = 19,
    kHandoverReply = 20,
    // A node to a peer that has come back (over the node's DEALER to the peer's ROUTER).
    kCatchUpOffer = 21,
    // An agent to a node, as it stops for a restart of its web server (over its DEALER).
    kRestarting = 22,
};

// The highest defined type: anything above it (or 0) is kUnknownType.
constexpr std::uint8_t kLastMessageType = static_cast<std::uint8_t>(MessageType::kRestarting);

const char *message_type_name(MessageType type);

}  // namespace rhythm::wire
