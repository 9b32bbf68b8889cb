// The snapshots this node has asked its peers for, to fill the shards it has gained, and the rules
// they follow. It has no socket and no clock of its own: the node's loop feeds it the peers'
// answers and the time (monotonic milliseconds), sends the requests it hands out, and asks the
// agents to re-send the shards of a fill it gives up.
//
// The rules:
//   - Each gained shard is asked of the best-scoring live node that held it before
//     (snapshot_sources in shard_ownership.h): one request per such peer, for all its shards,
//     and none of a peer that is not up (the agents' re-sends fill those shards alone).
//   - A request goes as soon as the peer's socket takes it; a peer that answers *busy* is asked
//     again kRetryMs later.
//   - A record is applied only while its fill is live (neither ended nor given up) and its shard
//     is still owned here: a shard lost again meanwhile would never be updated here. Any record of
//     a live fill is progress, applied or not.
//   - snapshot-end ends a fill: its shards are complete here. Any other error answer gives it up
//     (the agents were asked to re-send the gained shards when they were gained).
//   - A fill whose peer is no longer up, or whose snapshot sends nothing for kStallMs, is given
//     up: the agents are asked again to re-send its shards.
//   - While a fill is live its shards are being filled: a fetch of a session not there yet is
//     answered *filling* rather than not found, and the shards count as short of copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rss_node/membership.h"
#include "wire/messages.h"

namespace rhythm::node {

class SnapshotFills {
  public:
    static constexpr std::uint64_t kRetryMs = 1000;  // after a busy answer
    // A snapshot that sends nothing for this long is given up: the agents' re-sends fill its
    // shards.
    static constexpr std::uint64_t kStallMs = 10000;

    struct Fill {
        std::size_t peer = 0;  // index in Membership::peers()
        std::uint64_t request_id = 0;
        wire::ShardSet shards;
        bool sent = false;
        std::uint64_t send_after_ms = 0;     // a busy peer is asked again later
        std::uint64_t last_progress_ms = 0;  // sent, or its last record
    };

    // Sends a snapshot request to peer `peer`; false when its socket did not take it.
    using Send = std::function<bool(std::size_t peer, const wire::SnapshotRequest &request)>;

    // A fill of the shards of each source (by peer name) from the up peer of that name, if any.
    // Each fill takes the next of `*next_request_id`.
    void ask(const std::map<std::string, wire::ShardSet> &sources,
             const std::vector<Membership::Peer> &peers, std::uint64_t *next_request_id);

    // Sends the requests due at `mono_ms`; returns how many went.
    std::size_t send_due(std::uint64_t mono_ms, const Send &send);

    // A snapshot record arrived: true when it is to be applied (its fill is live and `owned`
    // holds its shard).
    bool accept(const wire::SnapshotRecord &record, const wire::ShardSet &owned,
                std::uint64_t mono_ms);

    // The snapshot-end of `request_id`, from the peer called `peer_name`.
    void on_end(std::uint64_t request_id, std::string_view peer_name);

    // An error answer from the peer called `peer_name`.
    void on_error(const wire::ErrorReply &error, std::string_view peer_name, std::uint64_t mono_ms);

    // Gives up the fills whose peer is no longer up in `peers`, or that stalled; returns their
    // shards, for the agents to re-send.
    wire::ShardSet give_up(const std::vector<Membership::Peer> &peers, std::uint64_t mono_ms);

    bool filling(std::uint32_t shard) const;
    // Every shard being filled.
    wire::ShardSet shards() const;
    std::size_t size() const { return fills_.size(); }
    const std::vector<Fill> &fills() const { return fills_; }

  private:
    std::vector<Fill> fills_;
};

}  // namespace rhythm::node
