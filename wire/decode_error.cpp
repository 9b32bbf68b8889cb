// Names of decode errors and message types, for logs and status.
#include "wire/decode_error.h"

#include "wire/protocol.h"

namespace rhythm::wire {

const char *decode_error_name(DecodeError error) {
    switch (error) {
        case DecodeError::kNone:
            return "none";
        case DecodeError::kFrameCount:
            return "frame-count";
        case DecodeError::kBadHeader:
            return "bad-header";
        case DecodeError::kVersionMismatch:
            return "version-mismatch";
        case DecodeError::kUnknownType:
            return "unknown-type";
        case DecodeError::kUnexpectedType:
            return "unexpected-type";
        case DecodeError::kBadTopic:
            return "bad-topic";
        case DecodeError::kWrongShard:
            return "wrong-shard";
        case DecodeError::kTruncated:
            return "truncated";
        case DecodeError::kTrailingBytes:
            return "trailing-bytes";
        case DecodeError::kTooLarge:
            return "too-large";
        case DecodeError::kBadValue:
            return "bad-value";
    }
    return "unknown";
}

const char *message_type_name(MessageType type) {
    switch (type) {
        case MessageType::kUpdate:
            return "update";
        case MessageType::kTombstone:
            return "tombstone";
        case MessageType::kFetch:
            return "fetch";
        case MessageType::kFetchReply:
            return "fetch-reply";
        case MessageType::kHeartbeat:
            return "heartbeat";
        case MessageType::kHeartbeatAck:
            return "heartbeat-ack";
        case MessageType::kResend:
            return "resend";
        case MessageType::kRefused:
            return "refused";
        case MessageType::kSnapshotRequest:
            return "snapshot-request";
        case MessageType::kSnapshotRecord:
            return "snapshot-record";
        case MessageType::kSnapshotEnd:
            return "snapshot-end";
        case MessageType::kStatusRequest:
            return "status-request";
        case MessageType::kStatusReply:
            return "status-reply";
        case MessageType::kPing:
            return "ping";
        case MessageType::kPong:
            return "pong";
        case MessageType::kError:
            return "error";
        case MessageType::kEndSession:
            return "end-session";
        case MessageType::kEndSessionReply:
            return "end-session-reply";
        case MessageType::kHandover:
            return "handover";
        case MessageType::kHandoverReply:
            return "handover-reply";
        case MessageType::kCatchUpOffer:
            return "catch-up-offer";
        case MessageType::kRestarting:
            return "restarting";
    }
    return "unknown";
}

}  // namespace rhythm::wire
