// Which nodes of the bank this node believes alive: itself, and each `--peer` that has answered
// a ping within the last 3 s. Peers are configured by endpoint; their names, which shard
// ownership is computed from, are learnt from their pongs.
//
// Pure bookkeeping with the time passed in (a monotonic clock): the node's loop sends the pings
// and feeds the pongs, and recomputes shard ownership when the live membership changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rhythm::node {

enum class PeerState { kUnknown, kUp, kDown };

const char *peer_state_name(PeerState state);

class Membership {
  public:
    struct Peer {
        std::string endpoint;
        std::string name;  // from its pongs; empty before the first
        PeerState state = PeerState::kUnknown;
        std::uint64_t last_pong_ms = 0;  // monotonic
    };

    // A peer silent for this long is down (protocol.md: ping every second, down after 3 s).
    static constexpr std::uint64_t kDeadAfterMs = 3000;
    // At most this long after start the node waits for its peers before deciding what it owns.
    static constexpr std::uint64_t kStartupGraceMs = 1000;

    Membership(std::string self, const std::vector<std::string> &peer_endpoints,
               std::uint64_t now_mono_ms);

    // A pong from peer `index`. True when the live membership changed (it came up, or answers
    // under another name).
    bool on_pong(std::size_t index, std::string_view name, std::uint64_t now_mono_ms);

    // Any other message from an up peer (a snapshot record...) shows it alive as well as a pong:
    // a pong may wait behind a long snapshot on the same connection.
    void on_heard(std::size_t index, std::uint64_t now_mono_ms);

    // Marks down the up peers silent for kDeadAfterMs; returns the indices of those.
    std::vector<std::size_t> expire(std::uint64_t now_mono_ms);

    // The loop did not turn for `gap_ms` (the node was stopped or starved): the silence of that
    // time was this node's deafness, not the peers', and does not count against them.
    void excuse_stall(std::uint64_t gap_ms);

    // False during the start-up grace: until every peer has answered once, or kStartupGraceMs.
    bool settled(std::uint64_t now_mono_ms) const;

    // This node and the up peers, by name, sorted, each name once.
    std::vector<std::string> live_members() const;

    // Peers are configured and none is up: this node is as likely cut off from the rest of the
    // bank as its last survivor.
    bool cut_off() const;

    const std::string &self() const { return self_; }
    const std::vector<Peer> &peers() const { return peers_; }

  private:
    std::string self_;
    std::vector<Peer> peers_;
    std::uint64_t started_mono_ms_;
};

}  // namespace rhythm::node
