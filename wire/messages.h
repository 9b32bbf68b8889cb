// Every message of the bank protocol as a plain struct, with its encoder and its decoder.
//
// Published updates travel agent PUB -> node SUB as one frame: topic (shard, 2 bytes), header
// (version, type, 2 bytes), body. Everything else travels DEALER <-> ROUTER as two frames:
// header, body (the ROUTER's identity frame is the socket's business, not the protocol's).
// docs/protocol.md lays out each body byte by byte.
//
// Decoded structs hold string_views into the received frames: they are valid while the frames
// are, and decoding never copies or allocates on behalf of the sender.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "wire/decode_error.h"
#include "wire/protocol.h"
#include "wire/session_key.h"

namespace rhythm::wire {

using AgentId = std::array<std::uint8_t, kAgentIdBytes>;

// A set of shards, one bit each (shard 0 is the high bit of byte 0).
struct ShardSet {
    std::array<std::uint8_t, kShardBitmapBytes> bits{};

    void add(std::uint32_t shard) {
        bits[shard / 8] |= static_cast<std::uint8_t>(0x80 >> (shard % 8));
    }
    void remove(std::uint32_t shard) {
        bits[shard / 8] &= static_cast<std::uint8_t>(~(0x80 >> (shard % 8)));
    }
    bool contains(std::uint32_t shard) const {
        return shard < kShardCount && (bits[shard / 8] & (0x80 >> (shard % 8))) != 0;
    }
    void add_all(const ShardSet &other) {
        for (std::size_t i = 0; i < bits.size(); ++i) {
            bits[i] |= other.bits[i];
        }
    }
    void remove_all(const ShardSet &other) {
        for (std::size_t i = 0; i < bits.size(); ++i) {
            bits[i] &= static_cast<std::uint8_t>(~other.bits[i]);
        }
    }
    ShardSet common(const ShardSet &other) const {
        ShardSet both;
        for (std::size_t i = 0; i < bits.size(); ++i) {
            both.bits[i] = bits[i] & other.bits[i];
        }
        return both;
    }
    // Calls fn(shard) for each shard in the set, in increasing order, skipping empty bytes.
    template <typename Fn>
    void for_each(Fn fn) const {
        for (std::uint32_t byte = 0; byte < bits.size(); ++byte) {
            for (std::uint32_t left = bits[byte]; left != 0;) {
                int high = 31 - __builtin_clz(left);  // the lowest shard left in this byte
                left &= ~(1u << high);
                fn(byte * 8 + 7 - static_cast<std::uint32_t>(high));
            }
        }
    }
    std::size_t count() const;
    // No shard: cheaper than count() == 0, for a check made in every turn of a loop.
    bool empty() const {
        for (std::uint8_t b : bits) {
            if (b != 0) {
                return false;
            }
        }
        return true;
    }
    static ShardSet all();
    bool operator==(const ShardSet &other) const { return bits == other.bits; }
};

// One session at one version: live (with data) or a tombstone (no data).
struct SessionRecord {
    SessionKey key;
    std::uint64_t version = 0;        // >= 1; only goes up
    std::uint64_t expires_at_ms = 0;  // Unix time in ms; 0 = never
    bool tombstone = false;
    std::string_view origin;  // the server that made this version, 1..255 printable bytes
    std::string_view data;    // empty for a tombstone
};

// How every node and web server orders two versions of one session: the higher version wins;
// of two equal versions made by different servers (two servers that continued the same copy), the
// one whose origin sorts higher, byte by byte, wins. So a conflict is settled the same way
// everywhere, whichever copy arrives first.
inline bool supersedes(std::uint64_t version, std::string_view origin, std::uint64_t other_version,
                       std::string_view other_origin) {
    return version != other_version ? version > other_version : origin > other_origin;
}

// Who published a message, and its place in that publisher's stream.
struct SenderStamp {
    AgentId agent_id{};
    std::uint64_t epoch = 0;
    std::uint64_t sequence = 0;        // 1, 2, 3... within an epoch, over every shard
    std::uint64_t shard_sequence = 0;  // 1, 2, 3... within an epoch, in the message's shard
};

// kUpdate or kTombstone, on the shard's topic.
struct Published {
    SenderStamp sender;
    SessionRecord record;  // record.tombstone tells the type
};

struct Fetch {
    std::uint64_t request_id = 0;
    SessionKey key;
};

enum class FetchStatus : std::uint8_t { kFound = 0, kNotFound = 1, kDeleted = 2 };

struct FetchReply {
    std::uint64_t request_id = 0;
    FetchStatus status = FetchStatus::kNotFound;
    SessionRecord record;  // absent (default) when kNotFound; a tombstone when kDeleted
    // The answering node owns the key's shard. A node that lost the shard keeps its copy a few
    // seconds for the new owner's snapshot and answers from it, but that copy gets no updates:
    // only an owner's answer may end a fetch before every node asked has answered.
    bool owner = true;
    // The owner cannot vouch for its answer yet: it is still being filled with the shard from its
    // peers, or started too recently to have heard from the web server that made its copy, which
    // may hold a newer one. Its answer (found or not) counts beside the rest of the bank's, which
    // is asked too.
    bool provisional = false;
    // Not the answer yet: the owner is asking the web server that may hold a newer copy than its
    // own (a handover), and answers this request again when it knows. Sent at once, so that the
    // requester can tell an owner that is working on its answer from one that is hung.
    bool asking = false;
};

// A shard sequence of one shard of an agent's stream: in a heartbeat, the last one the agent has
// used (a head); in a heartbeat-ack, how far the node holds the shard.
struct ShardSequence {
    std::uint16_t shard = 0;
    std::uint64_t shard_sequence = 0;
};

// Agent -> node, about once a second (more often while changes are in flight): "I am here; my
// next sequence is next_sequence". `heads` answers a resend: for each shard asked for, the last
// shard sequence used before its sessions were published again; the node counts the shard's
// stream from there.
struct Heartbeat {
    std::uint64_t request_id = 0;
    AgentId agent_id{};
    std::uint64_t epoch = 0;
    std::uint64_t next_sequence = 0;
    std::string_view server_name;
    std::vector<ShardSequence> heads;  // at most one per shard
};

// Node -> agent: "I own these shards; of that epoch I hold, shard by shard, everything up to
// these shard sequences (the shards not listed have not moved since I last said); publish to
// this endpoint". A node sees only the shards it owns, so it acknowledges shard by shard. A
// change the node refused for lack of memory is not held: its shard's acknowledgement stops
// before it, the shard is listed in `refusing` until the change arrives again (or a head passes
// it), and `full` says the node has had no room since.
struct HeartbeatAck {
    std::uint64_t request_id = 0;
    std::uint64_t epoch = 0;
    std::string_view node_name;
    std::string_view updates_endpoint;
    ShardSet owned;
    bool full = false;
    std::uint64_t refused = 0;  // changes of this agent's epoch refused for lack of memory
    ShardSet refusing;
    std::vector<ShardSequence> shard_acks;  // at most one per shard
};

// Node -> agent: send again every message from from_sequence on, and every session in `shards`.
struct Resend {
    std::uint64_t epoch = 0;
    std::uint64_t from_sequence = 0;
    ShardSet shards;
};

// Node -> agent: the node holds `version` of this session, made by another server, and it wins
// over the agent's (a higher version, or the same version from a server whose name sorts higher):
// drop any copy up to that version.
struct Refusal {
    SessionKey key;
    std::uint64_t version = 0;
};

struct Refused {
    std::vector<Refusal> refusals;  // 1..kMaxRefusalsPerMessage (count checked before reserving)
};

struct SnapshotRequest {
    std::uint64_t request_id = 0;
    ShardSet shards;
};

struct SnapshotRecord {
    std::uint64_t request_id = 0;
    SessionRecord record;
};

struct SnapshotEnd {
    std::uint64_t request_id = 0;
    std::uint64_t records = 0;
};

struct StatusRequest {
    std::uint64_t request_id = 0;
};

struct StatusReply {
    std::uint64_t request_id = 0;
    std::string_view json;
};

struct Ping {
    std::uint64_t request_id = 0;
    std::string_view node_name;
};

struct Pong {
    std::uint64_t request_id = 0;
    std::string_view node_name;
};

enum class ErrorCode : std::uint8_t {
    kVersionMismatch = 1,  // the request's version is not the responder's (see the header)
    kMalformed = 2,        // the request did not decode
    kUnsupported = 3,      // a well-formed message this responder does not answer
    kBusy = 4,             // too much in progress (snapshots): ask again later
};

struct ErrorReply {
    std::uint64_t request_id = 0;  // 0 when the request was too broken to have one
    ErrorCode code = ErrorCode::kMalformed;
    std::string_view text;
};

// An operator ends one session, or every session, in the bank and on every web server (a breach,
// a user to log out everywhere: `rss_node end-session`). Sent to each node: an owner of the
// session's shard stores a tombstone in a new term, above any version a web server may still save.
// A node sends it on to each web server's agent (kAll; one session's end goes as a Refused at the
// tombstone's version), which then checks every session it holds against the bank before serving
// it again.
enum class EndScope : std::uint8_t {
    kOne = 0,  // `key`
    kAll = 1,  // every session; `key` is all zero
};

struct EndSession {
    std::uint64_t request_id = 0;
    EndScope scope = EndScope::kOne;
    SessionKey key;
};

enum class EndSessionOutcome : std::uint8_t {
    kEnded = 0,     // `count` tombstones stored (for kOne: 1)
    kNotOwner = 1,  // this node owns no shard of it: nothing to do here
    kRefused = 2,   // this node could not store the tombstone(s) (full): `count` were stored
};

struct EndSessionReply {
    std::uint64_t request_id = 0;
    EndSessionOutcome outcome = EndSessionOutcome::kNotOwner;
    std::uint64_t count = 0;
};

// Another web server asks for a session whose newest version in the bank (`version`) came from
// this agent's server: a node asks the agent for its own copy before it answers, and the agent
// gives the session up (it checks it against the bank before serving it again). So a request
// misrouted just after a change the bank has not received yet still sees that change.
struct Handover {
    std::uint64_t request_id = 0;
    SessionKey key;
    std::uint64_t version = 0;
};

// The agent's copy when it is newer than the version asked about (`newer`), else nothing.
struct HandoverReply {
    std::uint64_t request_id = 0;
    bool newer = false;
    SessionRecord record;  // when `newer`: live, or a tombstone (deleted there); else absent
};

// A node to a peer that has come back after this node counted it down: the shards this node
// owned meanwhile. The bank went on without the peer, so for those it owns it asks this node
// for a snapshot (the highest version wins), whether or not its own view of the bank changed.
struct CatchUpOffer {
    std::uint64_t request_id = 0;
    ShardSet shards;
    std::string_view node_name;  // the offering node
};

// An agent stops for a restart of its web server (a graceful restart, or SIGHUP): the server's
// next agent will answer for it. Until that agent is heard from (a heartbeat), a node does not
// take the server for gone: a fetch that would ask it for a handover waits (docs/backup.md).
// Unsolicited: nothing answers it.
struct Restarting {
    std::uint64_t request_id = 0;
};

// Everything that travels DEALER <-> ROUTER.
using Message =
    std::variant<Fetch, FetchReply, Heartbeat, HeartbeatAck, Resend, Refused, SnapshotRequest,
                 SnapshotRecord, SnapshotEnd, StatusRequest, StatusReply, Ping, Pong, ErrorReply,
                 EndSession, EndSessionReply, Handover, HandoverReply, CatchUpOffer, Restarting>;

MessageType message_type(const Message &message);

// A list of received frames.
struct FrameSpan {
    const std::string_view *frames = nullptr;
    std::size_t size = 0;

    FrameSpan() = default;
    FrameSpan(const std::string_view *f, std::size_t n) : frames(f), size(n) {}
    FrameSpan(const std::vector<std::string_view> &v) : frames(v.data()), size(v.size()) {}
    const std::string_view &operator[](std::size_t i) const { return frames[i]; }
};

// Frames ready to send, in order.
using Frames = std::vector<std::string>;

// The topic of a shard: its number, 2 bytes big-endian, the first bytes of each message published
// for the shard. A SUB subscribes to exactly this prefix.
std::string topic_for_shard(std::uint32_t shard);

// Encoders. Inputs must respect the limits of protocol.h (the encoder does not truncate).
// encode_published returns one frame.
Frames encode_published(const Published &message);
Frames encode_message(const Message &message);

// Decoders: `out` is written only on success. decode_published takes every frame received, so
// that a message of another version or junk of several frames is told as such.
DecodeResult decode_published(FrameSpan frames, Published *out);
DecodeResult decode_message(FrameSpan frames, Message *out);

// Reads only the header frame: for answering a request of another version with kError. On
// kVersionMismatch `*version` holds the version received.
DecodeResult decode_header(std::string_view frame, std::uint8_t *version, MessageType *type);

}  // namespace rhythm::wire
