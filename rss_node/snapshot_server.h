// The snapshots this node serves: the streams of records a peer asks for to fill the shards it
// has gained (docs/protocol.md: snapshot-request, snapshot-record, snapshot-end). It reads the
// store and has no socket of its own: the node's loop hands it a way to send, which says whether
// the message went, would block (the requester is behind) or cannot go (the requester is gone).
//
// The rules:
//   - At most kMaxInProgress snapshots are in progress; a request past that is refused, and the
//     node answers it *busy* (the requester asks again later).
//   - Snapshots are served in the order they were asked for, at most kRecordsPerTurn records per
//     turn of the node's loop, so that updates and fetches keep being served meanwhile.
//   - A shard's keys are taken when its turn comes; each is then sent at its latest version, or
//     skipped if it has expired or gone meanwhile. The stream ends with snapshot-end, which
//     carries the number of records sent.
//   - A requester that is behind blocks the streams until a later turn (blocked() says so, and
//     the loop comes back a little later); a requester that is gone has its stream dropped, and
//     the dropped message is counted.
//   - A shard that a stream in progress covers is serving(): the node keeps a shard it has lost
//     until no stream covers it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "rss_node/session_store.h"
#include "wire/messages.h"

namespace rhythm::node {

class SnapshotServer {
  public:
    static constexpr std::size_t kMaxInProgress = 16;  // past that, a request is answered busy
    // Per turn of the node's loop, all streams together: the rest of the loop is not held up.
    static constexpr std::size_t kRecordsPerTurn = 2048;

    enum class Sent { kSent, kWouldBlock, kGone };
    // Sends `message` to the requester of routing identity `routing_id`.
    using Send = std::function<Sent(const std::string &routing_id, const wire::Message &message)>;

    // What a turn did, for the node's counters.
    struct Turn {
        std::uint64_t served = 0;   // streams completed (snapshot-end sent or dropped)
        std::uint64_t dropped = 0;  // messages that could not go
    };

    explicit SnapshotServer(const SessionStore &store) : store_(store) {}

    // A snapshot-request from `routing_id`; false when kMaxInProgress are in progress.
    bool start(const std::string &routing_id, const wire::SnapshotRequest &request);

    // Sends up to kRecordsPerTurn records of the streams in progress, oldest stream first; a
    // record expired at `now_wall_ms` (the wall clock, as the store compares) is left out.
    Turn advance(std::uint64_t now_wall_ms, const Send &send);

    bool idle() const { return jobs_.empty(); }
    // The last turn stopped at a requester that is behind.
    bool blocked() const { return blocked_; }
    bool serving(std::uint32_t shard) const;
    std::size_t size() const { return jobs_.size(); }

  private:
    struct Job {
        std::string routing_id;
        std::uint64_t request_id = 0;
        wire::ShardSet shards;
        std::uint32_t next_shard = 0;
        std::vector<wire::SessionKey> pending;  // keys of the shard being sent
        std::size_t sent_in_shard = 0;
        std::uint64_t records = 0;
    };

    const SessionStore &store_;
    std::deque<Job> jobs_;
    bool blocked_ = false;
};

}  // namespace rhythm::node
