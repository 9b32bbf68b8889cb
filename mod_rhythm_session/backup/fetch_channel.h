// The local channel between worker processes and the backup agent, for failover fetches: a
// worker that gets a well-formed session ID it does not hold asks the agent, which asks the bank
// and, when the bank has the session, stores it in the segment before answering. The worker then
// finds it there like any other session.
//
// An AF_UNIX SOCK_SEQPACKET socket in httpd's runtime directory: one connection per fetch, one
// datagram each way, so message boundaries come from the kernel. This is the only network-like
// I/O a request can do, and only on such a miss, bounded by SessionBackupTimeout.
#pragma once

#include <cstdint>
#include <string>

#include "core/session_id.h"

namespace rhythm {

// The agent's one-byte answer; the numbers are the channel's encoding.
enum class FetchOutcome : std::uint8_t {
    kFound = 0,     // the session is now in the segment
    kNotFound = 1,  // no node has it
    kDeleted = 2,   // the bank holds its tombstone
    kTimedOut = 3,  // no answer in time
    kNoAgent = 4,   // the agent is not running or refused the connection
    kShed = 5,      // too many fetches waiting already: answered at once
    kTooLarge = 6,  // the bank has it, larger than this server's RhythmSessionMaxSize: not stored
    kNoSpace = 7,   // the bank has it, but the segment is full of sessions in use: not stored
    // Answers to a check (after the server stalled) of a copy a request holds:
    kCurrent = 8,   // the bank has nothing newer: the copy here is current
    kReplaced = 9,  // the bank's newer copy replaced it
    // ... and to either:
    kUnreachable = 10,  // no node of the bank can be asked: nobody can take it over either
    // Every node silent for less than SessionBackupOutageGrace: a take-over, or a check of a copy
    // handed over or fetched (another server may be continuing it), cannot be answered yet.
    kBankSilent = 11,
    // No owner that answered vouches for its answer, and an owner out of reach lately may hold a
    // newer version: a take-over cannot be answered yet.
    kOwnerOut = 12,
};

// Why a session was or was not taken over, for RS0202.
const char *fetch_outcome_name(FetchOutcome outcome);

// The agent's answer byte; false for a byte that is no outcome.
bool decode_fetch_outcome(unsigned char byte, FetchOutcome *outcome);

// What the worker sends: take a session over from the bank, or check the copy it holds (locked)
// against the bank's after the server stalled.
struct FetchRequest {
    SessionId id;
    std::uint32_t timeout_ms = 0;
    bool check = false;
};

constexpr std::size_t kFetchRequestBytes = 2 + wire::kSessionKeyBytes + 4;

// Encodes a request (version byte, 0 take over or 1 check, ID, timeout in ms, big-endian).
// Decoding refuses anything that is not exactly that.
void encode_fetch_request(const FetchRequest &request, unsigned char out[kFetchRequestBytes]);
bool decode_fetch_request(const unsigned char *data, std::size_t size, FetchRequest *request);

// Creates the listening socket at `path` (replacing a stale one), owned by uid/gid so that
// unprivileged workers can connect. Returns the descriptor, or -1 with the reason.
int listen_fetch_channel(const std::string &path, int uid, int gid, std::string *why);

// The worker's side: asks and waits at most `timeout_ms` in all.
FetchOutcome fetch_via_agent(const std::string &path, const FetchRequest &request);

}  // namespace rhythm
