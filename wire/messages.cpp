// Encoding and strict decoding of the bank's messages (layouts in docs/protocol.md).
#include "wire/messages.h"

#include "common/name.h"
#include "wire/byte_io.h"

namespace rhythm::wire {
namespace {

std::string header(MessageType type) {
    std::string h;
    put_u8(&h, kProtocolVersion);
    put_u8(&h, static_cast<std::uint8_t>(type));
    return h;
}

void put_short_text(std::string *out, std::string_view s) {
    put_u8(out, static_cast<std::uint8_t>(s.size()));
    put_bytes(out, s.data(), s.size());
}

void put_record(std::string *out, const SessionRecord &r) {
    put_bytes(out, r.key.bytes.data(), r.key.bytes.size());
    put_u64(out, r.version);
    put_u64(out, r.expires_at_ms);
    put_u8(out, r.tombstone ? 1 : 0);
    put_u8(out, static_cast<std::uint8_t>(r.origin.size()));
    put_u32(out, static_cast<std::uint32_t>(r.data.size()));
    put_bytes(out, r.origin.data(), r.origin.size());
    put_bytes(out, r.data.data(), r.data.size());
}

// A name in the bank (common/name.h) with a 1-byte length.
DecodeResult read_short_name(ByteReader *in, std::string_view *out, const char *what_truncated,
                             const char *what_bad) {
    std::uint8_t len;
    if (!in->u8(&len) || !in->bytes(len, out)) {
        return decode_fail(DecodeError::kTruncated, what_truncated);
    }
    if (!is_valid_name(*out)) {
        return decode_fail(DecodeError::kBadValue, what_bad);
    }
    return decode_ok();
}

// The record is always the last field of its body: it must end exactly at the frame's end.
DecodeResult read_record(ByteReader *in, SessionRecord *out) {
    SessionRecord r;
    std::uint8_t flags;
    std::uint8_t origin_len;
    std::uint32_t data_len;
    if (!in->copy(kSessionKeyBytes, r.key.bytes.data()) || !in->u64(&r.version) ||
        !in->u64(&r.expires_at_ms) || !in->u8(&flags) || !in->u8(&origin_len) ||
        !in->u32(&data_len)) {
        return decode_fail(DecodeError::kTruncated, "session record: fixed fields truncated");
    }
    if (r.version == 0) {
        return decode_fail(DecodeError::kBadValue, "session record: version 0");
    }
    if (flags & ~1u) {
        return decode_fail(DecodeError::kBadValue, "session record: unknown flag bits");
    }
    r.tombstone = (flags & 1u) != 0;
    if (data_len > kMaxDataLength) {
        return decode_fail(DecodeError::kTooLarge, "session record: data length over the limit");
    }
    if (r.tombstone && data_len != 0) {
        return decode_fail(DecodeError::kBadValue, "session record: tombstone with data");
    }
    if (!in->bytes(origin_len, &r.origin)) {
        return decode_fail(DecodeError::kTruncated, "session record: origin truncated");
    }
    if (!is_valid_name(r.origin)) {
        return decode_fail(DecodeError::kBadValue, "session record: origin empty or unprintable");
    }
    if (!in->bytes(data_len, &r.data)) {
        return decode_fail(DecodeError::kTruncated, "session record: data truncated");
    }
    if (in->remaining() != 0) {
        return decode_fail(DecodeError::kTrailingBytes, "session record: bytes after the data");
    }
    *out = r;
    return decode_ok();
}

DecodeResult read_request_id(ByteReader *in, std::uint64_t *id) {
    if (!in->u64(id)) {
        return decode_fail(DecodeError::kTruncated, "request id truncated");
    }
    return decode_ok();
}

DecodeResult expect_end(const ByteReader &in, const char *what) {
    if (in.remaining() != 0) {
        return decode_fail(DecodeError::kTrailingBytes, what);
    }
    return decode_ok();
}

DecodeResult read_shard_set(ByteReader *in, ShardSet *out) {
    if (!in->copy(kShardBitmapBytes, out->bits.data())) {
        return decode_fail(DecodeError::kTruncated, "shard bitmap truncated");
    }
    return decode_ok();
}

// Body decoders, one per type. Each fills a local and the caller stores it on success.
#define RHYTHM_TRY(expr)          \
    do {                          \
        DecodeResult r_ = (expr); \
        if (!r_.ok()) {           \
            return r_;            \
        }                         \
    } while (0)

DecodeResult body_fetch(ByteReader *in, Message *out) {
    Fetch m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->copy(kSessionKeyBytes, m.key.bytes.data())) {
        return decode_fail(DecodeError::kTruncated, "fetch: session key truncated");
    }
    RHYTHM_TRY(expect_end(*in, "fetch: bytes after the session key"));
    *out = m;
    return decode_ok();
}

DecodeResult body_end_session(ByteReader *in, Message *out) {
    EndSession m;
    std::uint8_t scope;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->u8(&scope) || !in->copy(kSessionKeyBytes, m.key.bytes.data())) {
        return decode_fail(DecodeError::kTruncated, "end-session: truncated");
    }
    if (scope > static_cast<std::uint8_t>(EndScope::kAll)) {
        return decode_fail(DecodeError::kBadValue, "end-session: unknown scope");
    }
    m.scope = static_cast<EndScope>(scope);
    if (m.scope == EndScope::kAll && m.key != SessionKey{}) {
        return decode_fail(DecodeError::kBadValue, "end-session: a session key with scope all");
    }
    RHYTHM_TRY(expect_end(*in, "end-session: bytes after the session key"));
    *out = m;
    return decode_ok();
}

DecodeResult body_end_session_reply(ByteReader *in, Message *out) {
    EndSessionReply m;
    std::uint8_t outcome;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->u8(&outcome) || !in->u64(&m.count)) {
        return decode_fail(DecodeError::kTruncated, "end-session reply: truncated");
    }
    if (outcome > static_cast<std::uint8_t>(EndSessionOutcome::kRefused)) {
        return decode_fail(DecodeError::kBadValue, "end-session reply: unknown outcome");
    }
    m.outcome = static_cast<EndSessionOutcome>(outcome);
    RHYTHM_TRY(expect_end(*in, "end-session reply: bytes after the count"));
    *out = m;
    return decode_ok();
}

DecodeResult body_handover(ByteReader *in, Message *out) {
    Handover m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->copy(kSessionKeyBytes, m.key.bytes.data()) || !in->u64(&m.version)) {
        return decode_fail(DecodeError::kTruncated, "handover: truncated");
    }
    RHYTHM_TRY(expect_end(*in, "handover: bytes after the version"));
    *out = m;
    return decode_ok();
}

DecodeResult body_handover_reply(ByteReader *in, Message *out) {
    HandoverReply m;
    std::uint8_t newer;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->u8(&newer)) {
        return decode_fail(DecodeError::kTruncated, "handover reply: truncated");
    }
    if (newer > 1) {
        return decode_fail(DecodeError::kBadValue, "handover reply: newer is neither 0 nor 1");
    }
    m.newer = newer == 1;
    if (!m.newer) {
        RHYTHM_TRY(expect_end(*in, "handover reply: bytes after nothing newer"));
    } else {
        RHYTHM_TRY(read_record(in, &m.record));
    }
    *out = m;
    return decode_ok();
}

DecodeResult body_catch_up_offer(ByteReader *in, Message *out) {
    CatchUpOffer m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    RHYTHM_TRY(read_shard_set(in, &m.shards));
    RHYTHM_TRY(read_short_name(in, &m.node_name, "catch-up offer: node name truncated",
                               "catch-up offer: node name empty or unprintable"));
    RHYTHM_TRY(expect_end(*in, "catch-up offer: bytes after the node name"));
    *out = m;
    return decode_ok();
}

DecodeResult body_fetch_reply(ByteReader *in, Message *out) {
    FetchReply m;
    std::uint8_t status;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->u8(&status)) {
        return decode_fail(DecodeError::kTruncated, "fetch reply: status truncated");
    }
    if (status > static_cast<std::uint8_t>(FetchStatus::kDeleted)) {
        return decode_fail(DecodeError::kBadValue, "fetch reply: unknown status");
    }
    m.status = static_cast<FetchStatus>(status);
    std::uint8_t flags;
    if (!in->u8(&flags)) {
        return decode_fail(DecodeError::kTruncated, "fetch reply: flags truncated");
    }
    if ((flags & ~(kFetchFlagOwner | kFetchFlagProvisional | kFetchFlagAsking)) != 0 ||
        flags == kFetchFlagProvisional) {
        return decode_fail(DecodeError::kBadValue,
                           "fetch reply: unknown flags, or provisional without owner");
    }
    m.owner = (flags & kFetchFlagOwner) != 0;
    m.provisional = (flags & kFetchFlagProvisional) != 0;
    m.asking = (flags & kFetchFlagAsking) != 0;
    if (m.asking &&
        (flags != (kFetchFlagOwner | kFetchFlagAsking) || m.status != FetchStatus::kNotFound)) {
        return decode_fail(DecodeError::kBadValue,
                           "fetch reply: asking only from an owner, alone, and with no record");
    }
    if (m.status == FetchStatus::kNotFound) {
        RHYTHM_TRY(expect_end(*in, "fetch reply: bytes after not-found"));
    } else {
        RHYTHM_TRY(read_record(in, &m.record));
        if (m.record.tombstone != (m.status == FetchStatus::kDeleted)) {
            return decode_fail(DecodeError::kBadValue, "fetch reply: status and record disagree");
        }
    }
    *out = m;
    return decode_ok();
}

// A u16 count, then (u16 shard, u64 shard sequence) pairs; the count is checked against the bytes
// received before anything is allocated for it.
DecodeResult read_shard_sequences(ByteReader *in, std::vector<ShardSequence> *out,
                                  const char *truncated, const char *too_many,
                                  const char *out_of_range) {
    std::uint16_t count;
    if (!in->u16(&count)) {
        return decode_fail(DecodeError::kTruncated, truncated);
    }
    if (count > kShardCount) {
        return decode_fail(DecodeError::kTooLarge, too_many);
    }
    if (in->remaining() < count * std::size_t{10}) {
        return decode_fail(DecodeError::kTruncated, truncated);
    }
    out->resize(count);
    for (ShardSequence &s : *out) {
        in->u16(&s.shard);
        in->u64(&s.shard_sequence);
        if (s.shard >= kShardCount) {
            return decode_fail(DecodeError::kBadValue, out_of_range);
        }
    }
    return decode_ok();
}

void put_shard_sequences(std::string *body, const std::vector<ShardSequence> &list) {
    put_u16(body, static_cast<std::uint16_t>(list.size()));
    for (const ShardSequence &s : list) {
        put_u16(body, s.shard);
        put_u64(body, s.shard_sequence);
    }
}

DecodeResult body_heartbeat(ByteReader *in, Message *out) {
    Heartbeat m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->copy(kAgentIdBytes, m.agent_id.data()) || !in->u64(&m.epoch) ||
        !in->u64(&m.next_sequence)) {
        return decode_fail(DecodeError::kTruncated, "heartbeat: fixed fields truncated");
    }
    RHYTHM_TRY(read_short_name(in, &m.server_name, "heartbeat: server name truncated",
                               "heartbeat: server name empty or unprintable"));
    RHYTHM_TRY(read_shard_sequences(in, &m.heads, "heartbeat: shard heads truncated",
                                    "heartbeat: more shard heads than shards",
                                    "heartbeat: shard out of range"));
    RHYTHM_TRY(expect_end(*in, "heartbeat: bytes after the shard heads"));
    *out = m;
    return decode_ok();
}

DecodeResult body_heartbeat_ack(ByteReader *in, Message *out) {
    HeartbeatAck m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->u64(&m.epoch)) {
        return decode_fail(DecodeError::kTruncated, "heartbeat ack: fixed fields truncated");
    }
    RHYTHM_TRY(read_short_name(in, &m.node_name, "heartbeat ack: node name truncated",
                               "heartbeat ack: node name empty or unprintable"));
    std::uint16_t len;
    if (!in->u16(&len) || !in->bytes(len, &m.updates_endpoint)) {
        return decode_fail(DecodeError::kTruncated, "heartbeat ack: endpoint truncated");
    }
    if (len > kMaxEndpointLength) {
        return decode_fail(DecodeError::kTooLarge, "heartbeat ack: endpoint over the limit");
    }
    if (!is_printable_word(m.updates_endpoint)) {
        return decode_fail(DecodeError::kBadValue, "heartbeat ack: endpoint empty or unprintable");
    }
    RHYTHM_TRY(read_shard_set(in, &m.owned));
    std::uint8_t flags;
    if (!in->u8(&flags) || !in->u64(&m.refused)) {
        return decode_fail(DecodeError::kTruncated, "heartbeat ack: refusal fields truncated");
    }
    if ((flags & ~kAckFlagFull) != 0) {
        return decode_fail(DecodeError::kBadValue, "heartbeat ack: unknown flag bits");
    }
    m.full = (flags & kAckFlagFull) != 0;
    RHYTHM_TRY(read_shard_set(in, &m.refusing));
    RHYTHM_TRY(read_shard_sequences(in, &m.shard_acks, "heartbeat ack: shard acks truncated",
                                    "heartbeat ack: more shards than exist",
                                    "heartbeat ack: shard out of range"));
    RHYTHM_TRY(expect_end(*in, "heartbeat ack: bytes after the shard acks"));
    *out = m;
    return decode_ok();
}

DecodeResult body_resend(ByteReader *in, Message *out) {
    Resend m;
    if (!in->u64(&m.epoch) || !in->u64(&m.from_sequence)) {
        return decode_fail(DecodeError::kTruncated, "resend: fixed fields truncated");
    }
    RHYTHM_TRY(read_shard_set(in, &m.shards));
    RHYTHM_TRY(expect_end(*in, "resend: bytes after the shard bitmap"));
    *out = m;
    return decode_ok();
}

DecodeResult body_refused(ByteReader *in, Message *out) {
    std::uint16_t count;
    if (!in->u16(&count)) {
        return decode_fail(DecodeError::kTruncated, "refused: count truncated");
    }
    if (count == 0) {
        return decode_fail(DecodeError::kBadValue, "refused: count 0");
    }
    if (count > kMaxRefusalsPerMessage) {
        return decode_fail(DecodeError::kTooLarge, "refused: count over the limit");
    }
    constexpr std::size_t kEntry = kSessionKeyBytes + 8;
    // Check the frame really holds `count` entries before reserving anything for them.
    if (in->remaining() < count * kEntry) {
        return decode_fail(DecodeError::kTruncated, "refused: fewer entries than the count");
    }
    if (in->remaining() > count * kEntry) {
        return decode_fail(DecodeError::kTrailingBytes, "refused: more bytes than the count");
    }
    Refused m;
    m.refusals.resize(count);
    for (auto &r : m.refusals) {
        in->copy(kSessionKeyBytes, r.key.bytes.data());
        in->u64(&r.version);
    }
    *out = std::move(m);
    return decode_ok();
}

DecodeResult body_snapshot_request(ByteReader *in, Message *out) {
    SnapshotRequest m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    RHYTHM_TRY(read_shard_set(in, &m.shards));
    RHYTHM_TRY(expect_end(*in, "snapshot request: bytes after the shard bitmap"));
    *out = m;
    return decode_ok();
}

DecodeResult body_snapshot_record(ByteReader *in, Message *out) {
    SnapshotRecord m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    RHYTHM_TRY(read_record(in, &m.record));
    *out = m;
    return decode_ok();
}

DecodeResult body_snapshot_end(ByteReader *in, Message *out) {
    SnapshotEnd m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->u64(&m.records)) {
        return decode_fail(DecodeError::kTruncated, "snapshot end: record count truncated");
    }
    RHYTHM_TRY(expect_end(*in, "snapshot end: bytes after the record count"));
    *out = m;
    return decode_ok();
}

DecodeResult body_status_request(ByteReader *in, Message *out) {
    StatusRequest m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    RHYTHM_TRY(expect_end(*in, "status request: bytes after the request id"));
    *out = m;
    return decode_ok();
}

DecodeResult body_restarting(ByteReader *in, Message *out) {
    Restarting m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    RHYTHM_TRY(expect_end(*in, "restarting: bytes after the request id"));
    *out = m;
    return decode_ok();
}

DecodeResult body_status_reply(ByteReader *in, Message *out) {
    StatusReply m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    m.json = in->rest();
    if (m.json.size() > kMaxStatusLength) {
        return decode_fail(DecodeError::kTooLarge, "status reply: text over the limit");
    }
    *out = m;
    return decode_ok();
}

template <typename T>
DecodeResult body_ping_pong(ByteReader *in, Message *out, const char *truncated, const char *bad,
                            const char *trailing) {
    T m;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    RHYTHM_TRY(read_short_name(in, &m.node_name, truncated, bad));
    RHYTHM_TRY(expect_end(*in, trailing));
    *out = m;
    return decode_ok();
}

DecodeResult body_error(ByteReader *in, Message *out) {
    ErrorReply m;
    std::uint8_t code;
    RHYTHM_TRY(read_request_id(in, &m.request_id));
    if (!in->u8(&code)) {
        return decode_fail(DecodeError::kTruncated, "error: code truncated");
    }
    if (code < static_cast<std::uint8_t>(ErrorCode::kVersionMismatch) ||
        code > static_cast<std::uint8_t>(ErrorCode::kBusy)) {
        return decode_fail(DecodeError::kBadValue, "error: unknown code");
    }
    m.code = static_cast<ErrorCode>(code);
    m.text = in->rest();
    if (m.text.size() > kMaxErrorTextLength) {
        return decode_fail(DecodeError::kTooLarge, "error: text over the limit");
    }
    *out = m;
    return decode_ok();
}

// Writes a request id; every DEALER <-> ROUTER body but kResend and kRefused starts with one.
struct BodyWriter {
    std::string body;

    std::string operator()(const Fetch &m) {
        put_u64(&body, m.request_id);
        put_bytes(&body, m.key.bytes.data(), m.key.bytes.size());
        return std::move(body);
    }
    std::string operator()(const FetchReply &m) {
        put_u64(&body, m.request_id);
        put_u8(&body, static_cast<std::uint8_t>(m.status));
        put_u8(&body, static_cast<std::uint8_t>((m.owner ? kFetchFlagOwner : 0) |
                                                (m.provisional ? kFetchFlagProvisional : 0) |
                                                (m.asking ? kFetchFlagAsking : 0)));
        if (m.status != FetchStatus::kNotFound) {
            put_record(&body, m.record);
        }
        return std::move(body);
    }
    std::string operator()(const Heartbeat &m) {
        put_u64(&body, m.request_id);
        put_bytes(&body, m.agent_id.data(), m.agent_id.size());
        put_u64(&body, m.epoch);
        put_u64(&body, m.next_sequence);
        put_short_text(&body, m.server_name);
        put_shard_sequences(&body, m.heads);
        return std::move(body);
    }
    std::string operator()(const HeartbeatAck &m) {
        put_u64(&body, m.request_id);
        put_u64(&body, m.epoch);
        put_short_text(&body, m.node_name);
        put_u16(&body, static_cast<std::uint16_t>(m.updates_endpoint.size()));
        put_bytes(&body, m.updates_endpoint.data(), m.updates_endpoint.size());
        put_bytes(&body, m.owned.bits.data(), m.owned.bits.size());
        put_u8(&body, m.full ? kAckFlagFull : 0);
        put_u64(&body, m.refused);
        put_bytes(&body, m.refusing.bits.data(), m.refusing.bits.size());
        put_shard_sequences(&body, m.shard_acks);
        return std::move(body);
    }
    std::string operator()(const Resend &m) {
        put_u64(&body, m.epoch);
        put_u64(&body, m.from_sequence);
        put_bytes(&body, m.shards.bits.data(), m.shards.bits.size());
        return std::move(body);
    }
    std::string operator()(const Refused &m) {
        put_u16(&body, static_cast<std::uint16_t>(m.refusals.size()));
        for (const auto &r : m.refusals) {
            put_bytes(&body, r.key.bytes.data(), r.key.bytes.size());
            put_u64(&body, r.version);
        }
        return std::move(body);
    }
    std::string operator()(const SnapshotRequest &m) {
        put_u64(&body, m.request_id);
        put_bytes(&body, m.shards.bits.data(), m.shards.bits.size());
        return std::move(body);
    }
    std::string operator()(const SnapshotRecord &m) {
        put_u64(&body, m.request_id);
        put_record(&body, m.record);
        return std::move(body);
    }
    std::string operator()(const SnapshotEnd &m) {
        put_u64(&body, m.request_id);
        put_u64(&body, m.records);
        return std::move(body);
    }
    std::string operator()(const StatusRequest &m) {
        put_u64(&body, m.request_id);
        return std::move(body);
    }
    std::string operator()(const StatusReply &m) {
        put_u64(&body, m.request_id);
        put_bytes(&body, m.json.data(), m.json.size());
        return std::move(body);
    }
    std::string operator()(const Ping &m) {
        put_u64(&body, m.request_id);
        put_short_text(&body, m.node_name);
        return std::move(body);
    }
    std::string operator()(const Pong &m) {
        put_u64(&body, m.request_id);
        put_short_text(&body, m.node_name);
        return std::move(body);
    }
    std::string operator()(const ErrorReply &m) {
        put_u64(&body, m.request_id);
        put_u8(&body, static_cast<std::uint8_t>(m.code));
        put_bytes(&body, m.text.data(), m.text.size());
        return std::move(body);
    }
    std::string operator()(const EndSession &m) {
        put_u64(&body, m.request_id);
        put_u8(&body, static_cast<std::uint8_t>(m.scope));
        put_bytes(&body, m.key.bytes.data(), m.key.bytes.size());
        return std::move(body);
    }
    std::string operator()(const EndSessionReply &m) {
        put_u64(&body, m.request_id);
        put_u8(&body, static_cast<std::uint8_t>(m.outcome));
        put_u64(&body, m.count);
        return std::move(body);
    }
    std::string operator()(const Handover &m) {
        put_u64(&body, m.request_id);
        put_bytes(&body, m.key.bytes.data(), m.key.bytes.size());
        put_u64(&body, m.version);
        return std::move(body);
    }
    std::string operator()(const HandoverReply &m) {
        put_u64(&body, m.request_id);
        put_u8(&body, m.newer ? 1 : 0);
        if (m.newer) {
            put_record(&body, m.record);
        }
        return std::move(body);
    }
    std::string operator()(const CatchUpOffer &m) {
        put_u64(&body, m.request_id);
        put_bytes(&body, m.shards.bits.data(), m.shards.bits.size());
        put_short_text(&body, m.node_name);
        return std::move(body);
    }
    std::string operator()(const Restarting &m) {
        put_u64(&body, m.request_id);
        return std::move(body);
    }
};

// Where a published message's header is: bytes 2 and 3 of its one frame from version 3 on; in
// versions 1 and 2, the second of three frames, after a 2-byte topic frame. Reading both places
// tells a sender of another version from junk whatever its frame count. Empty when neither fits.
std::string_view published_header(FrameSpan frames) {
    if (frames[0].size() >= kPublishedBodyOffset) {
        return frames[0].substr(kTopicBytes, kHeaderBytes);
    }
    if (frames.size >= 2 && frames[0].size() == kTopicBytes && frames[1].size() == kHeaderBytes) {
        return frames[1];
    }
    return {};
}

constexpr MessageType kVariantTypes[] = {
    MessageType::kFetch,
    MessageType::kFetchReply,
    MessageType::kHeartbeat,
    MessageType::kHeartbeatAck,
    MessageType::kResend,
    MessageType::kRefused,
    MessageType::kSnapshotRequest,
    MessageType::kSnapshotRecord,
    MessageType::kSnapshotEnd,
    MessageType::kStatusRequest,
    MessageType::kStatusReply,
    MessageType::kPing,
    MessageType::kPong,
    MessageType::kError,
    MessageType::kEndSession,
    MessageType::kEndSessionReply,
    MessageType::kHandover,
    MessageType::kHandoverReply,
    MessageType::kCatchUpOffer,
    MessageType::kRestarting,
};
static_assert(std::size(kVariantTypes) == std::variant_size_v<Message>,
              "one message type per alternative of Message, in order");

}  // namespace

std::size_t ShardSet::count() const {
    std::size_t n = 0;
    for (auto b : bits) {
        n += static_cast<std::size_t>(__builtin_popcount(b));
    }
    return n;
}

ShardSet ShardSet::all() {
    ShardSet s;
    s.bits.fill(0xff);
    return s;
}

MessageType message_type(const Message &message) {
    return kVariantTypes[message.index()];
}

std::string topic_for_shard(std::uint32_t shard) {
    std::string t;
    put_u16(&t, static_cast<std::uint16_t>(shard));
    return t;
}

Frames encode_published(const Published &m) {
    // Built in place: the one frame is the session's data and more, not to be copied again.
    Frames frames(1);
    std::string &frame = frames[0];
    frame.reserve(kPublishedBodyOffset + kAgentIdBytes + 24 + 38 + m.record.origin.size() +
                  m.record.data.size());
    put_u16(&frame, static_cast<std::uint16_t>(shard_of(m.record.key)));
    frame += header(m.record.tombstone ? MessageType::kTombstone : MessageType::kUpdate);
    put_bytes(&frame, m.sender.agent_id.data(), m.sender.agent_id.size());
    put_u64(&frame, m.sender.epoch);
    put_u64(&frame, m.sender.sequence);
    put_u64(&frame, m.sender.shard_sequence);
    put_record(&frame, m.record);
    return frames;
}

Frames encode_message(const Message &message) {
    Frames frames;
    frames.push_back(header(message_type(message)));
    frames.push_back(std::visit(BodyWriter{}, message));
    return frames;
}

DecodeResult decode_header(std::string_view frame, std::uint8_t *version, MessageType *type) {
    if (frame.size() != kHeaderBytes) {
        return decode_fail(DecodeError::kBadHeader, "header frame is not 2 bytes");
    }
    auto v = static_cast<std::uint8_t>(frame[0]);
    auto t = static_cast<std::uint8_t>(frame[1]);
    if (v != kProtocolVersion) {
        *version = v;
        return decode_fail(DecodeError::kVersionMismatch, "header names another protocol version");
    }
    if (t == 0 || t > kLastMessageType) {
        return decode_fail(DecodeError::kUnknownType, "header names an unknown message type");
    }
    *version = v;
    *type = static_cast<MessageType>(t);
    return decode_ok();
}

DecodeResult decode_published(FrameSpan frames, Published *out) {
    if (frames.size == 0) {
        return decode_fail(DecodeError::kFrameCount, "published message: no frames");
    }
    std::string_view header_bytes = published_header(frames);
    if (header_bytes.empty()) {
        if (frames.size == 1) {
            return decode_fail(DecodeError::kTruncated,
                               "published message: shorter than its topic and header");
        }
        return decode_fail(DecodeError::kFrameCount, "published message: not one frame");
    }
    std::uint8_t version;
    MessageType type;
    RHYTHM_TRY(decode_header(header_bytes, &version, &type));
    if (type != MessageType::kUpdate && type != MessageType::kTombstone) {
        return decode_fail(DecodeError::kUnexpectedType, "published message: not an update");
    }
    if (frames.size != 1) {
        return decode_fail(DecodeError::kFrameCount, "published message: not one frame");
    }
    std::uint16_t shard = 0;
    ByteReader(frames[0]).u16(&shard);  // published_header found the frame long enough
    if (shard >= kShardCount) {
        return decode_fail(DecodeError::kBadTopic, "published message: topic is not a shard");
    }
    Published m;
    ByteReader in(frames[0].substr(kPublishedBodyOffset));
    if (!in.copy(kAgentIdBytes, m.sender.agent_id.data()) || !in.u64(&m.sender.epoch) ||
        !in.u64(&m.sender.sequence) || !in.u64(&m.sender.shard_sequence)) {
        return decode_fail(DecodeError::kTruncated, "published message: sender truncated");
    }
    if (m.sender.sequence == 0 || m.sender.shard_sequence == 0) {
        return decode_fail(DecodeError::kBadValue, "published message: sequence 0");
    }
    RHYTHM_TRY(read_record(&in, &m.record));
    if (m.record.tombstone != (type == MessageType::kTombstone)) {
        return decode_fail(DecodeError::kBadValue, "published message: type and record disagree");
    }
    if (shard_of(m.record.key) != shard) {
        return decode_fail(DecodeError::kWrongShard, "published message: topic is not its shard");
    }
    *out = m;
    return decode_ok();
}

DecodeResult decode_message(FrameSpan frames, Message *out) {
    if (frames.size < 1) {
        return decode_fail(DecodeError::kFrameCount, "message: no frames");
    }
    std::uint8_t version;
    MessageType type;
    RHYTHM_TRY(decode_header(frames[0], &version, &type));
    if (type == MessageType::kUpdate || type == MessageType::kTombstone) {
        return decode_fail(DecodeError::kUnexpectedType, "message: an update outside PUB/SUB");
    }
    if (frames.size != 2) {
        return decode_fail(DecodeError::kFrameCount, "message: not 2 frames");
    }
    ByteReader in(frames[1]);
    switch (type) {
        case MessageType::kFetch:
            return body_fetch(&in, out);
        case MessageType::kFetchReply:
            return body_fetch_reply(&in, out);
        case MessageType::kHeartbeat:
            return body_heartbeat(&in, out);
        case MessageType::kHeartbeatAck:
            return body_heartbeat_ack(&in, out);
        case MessageType::kResend:
            return body_resend(&in, out);
        case MessageType::kRefused:
            return body_refused(&in, out);
        case MessageType::kSnapshotRequest:
            return body_snapshot_request(&in, out);
        case MessageType::kSnapshotRecord:
            return body_snapshot_record(&in, out);
        case MessageType::kSnapshotEnd:
            return body_snapshot_end(&in, out);
        case MessageType::kStatusRequest:
            return body_status_request(&in, out);
        case MessageType::kStatusReply:
            return body_status_reply(&in, out);
        case MessageType::kPing:
            return body_ping_pong<Ping>(&in, out, "ping: node name truncated",
                                        "ping: node name empty or unprintable",
                                        "ping: bytes after the node name");
        case MessageType::kPong:
            return body_ping_pong<Pong>(&in, out, "pong: node name truncated",
                                        "pong: node name empty or unprintable",
                                        "pong: bytes after the node name");
        case MessageType::kError:
            return body_error(&in, out);
        case MessageType::kEndSession:
            return body_end_session(&in, out);
        case MessageType::kEndSessionReply:
            return body_end_session_reply(&in, out);
        case MessageType::kHandover:
            return body_handover(&in, out);
        case MessageType::kHandoverReply:
            return body_handover_reply(&in, out);
        case MessageType::kCatchUpOffer:
            return body_catch_up_offer(&in, out);
        case MessageType::kRestarting:
            return body_restarting(&in, out);
        case MessageType::kUpdate:
        case MessageType::kTombstone:
            break;
    }
    return decode_fail(DecodeError::kUnknownType, "message: unknown type");
}

}  // namespace rhythm::wire
