// What a decoder says when a frame is not a well-formed message of this protocol: an error code
// that callers count and switch on, and a fixed text naming the field that failed, for logs.
// Neither allocates: a hostile frame costs the receiver nothing beyond its own bytes.
#pragma once

#include <cstdint>

namespace rhythm::wire {

enum class DecodeError : std::uint8_t {
    kNone = 0,
    kFrameCount,       // more or fewer frames than the message type has
    kBadHeader,        // header frame is not exactly 2 bytes
    kVersionMismatch,  // header names another protocol version
    kUnknownType,      // header names no message type of this version
    kUnexpectedType,   // a known type that does not belong on this socket
    kBadTopic,         // a published message's topic names a shard >= kShardCount
    kWrongShard,       // topic does not match the session ID's shard
    kTruncated,        // a field runs past the end of its frame
    kTrailingBytes,    // bytes left over after the last field
    kTooLarge,         // a length exceeds its protocol limit
    kBadValue,         // a field holds a value the protocol forbids
};

// A decoder's answer: kNone with a null message on success.
struct DecodeResult {
    DecodeError error = DecodeError::kNone;
    const char *message = nullptr;  // static text: which field, what was wrong

    bool ok() const { return error == DecodeError::kNone; }
};

inline DecodeResult decode_ok() {
    return {};
}
inline DecodeResult decode_fail(DecodeError error, const char *message) {
    return {error, message};
}

// A short stable name for the code ("truncated", "version-mismatch"...), for counters and logs.
const char *decode_error_name(DecodeError error);

}  // namespace rhythm::wire
