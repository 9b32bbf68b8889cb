// The replication window: every change the backup agent has published that the bank has not
// settled yet, and what each node has acknowledged of it. It holds the rules of what counts as
// held by the bank and what is sent again to whom; it has no socket and no clock of its own (the
// agent's event loop feeds it answers and times, and sends what it says).
//
// Numbering. Each change gets the next sequence of the agent's stream and the next sequence of
// its shard (docs/protocol.md). In flight, a shard's changes form a run of consecutive shard
// sequences, oldest first, so a node's acknowledgement of a shard splits that run in two.
//
// The rules:
//   - A change is held by the bank (settled) when every node that is up, owns its shard and is
//     not refusing it (below) has acknowledged it, and there is at least one such node. Shards
//     settle independently: a shard that no node can take holds up no other.
//   - A node that refused a change for lack of memory acknowledges nothing of that shard past it
//     and says it is refusing the shard. It counts for what it acknowledged before the change it
//     refused, and for nothing after it until it has room, so the other owners settle the rest;
//     if no other owner holds it, it stays in flight (unacknowledged, and shown so). It is not
//     sent again to a node that says it is full.
//   - A node gets a change only once its subscription to the shard has reached the agent's
//     socket (a PUB socket drops what it sends before that, silently); what was published before
//     goes to it when the subscription arrives. A node known to be down gets nothing.
//   - What a node that is up lacks is sent again to that node alone, once a change has waited
//     resend_after_ms.
//   - A shard settled while a node was down or refusing it may lack changes at that node that
//     are no longer in flight: it is *missed*. Once the node answers again (and has room), each
//     missed shard it owns is published again in full after a *head*: the node counts the
//     shard's stream from there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "core/session_id.h"
#include "wire/messages.h"

namespace rhythm {

class ReplicationWindow {
  public:
    // A change in flight, with the message itself, to send again exactly as it was.
    struct Change {
        std::uint64_t sequence = 0;
        std::uint64_t shard_sequence = 0;
        SessionId id;
        std::uint64_t version = 0;
        WallTime saved_at;  // of the save (for the lag)
        MonotonicTime published;
        std::string message;  // the encoded published message (one frame)
    };

    // A node's heartbeat answer, as far as the window is concerned.
    struct Ack {
        wire::ShardSet owned;
        bool full = false;
        std::uint64_t refused = 0;  // changes it refused for lack of memory in this epoch
        wire::ShardSet refusing;
        const std::vector<wire::ShardSequence> *shard_acks = nullptr;
    };
    // What an answer changed, for the agent to log and act on.
    struct AckOutcome {
        bool became_full = false;
        bool room_again = false;
        std::uint64_t newly_refused = 0;
        wire::ShardSet repair;  // missed shards to publish again (republish() them)
    };

    struct NodeFigures {
        std::uint64_t unacknowledged = 0;  // changes of its shards it has not acknowledged
        WallTime oldest_saved_at;          // of those still in flight; 0: none there
        bool lacks_settled = false;        // it lacks changes no longer in flight
        std::uint64_t refused = 0;
        std::size_t refusing_shards = 0;
        bool full = false;
    };

    explicit ReplicationWindow(std::size_t nodes);

    // The numbers of the next change of `shard`, and the change itself once encoded with them.
    struct Numbers {
        std::uint64_t sequence;
        std::uint64_t shard_sequence;
    };
    Numbers number(std::uint32_t shard);
    const Change &add(std::uint32_t shard, const Numbers &numbers, const SessionId &id,
                      std::uint64_t version, WallTime saved_at, MonotonicTime now,
                      std::string message);

    // Whether a change of `shard` published now is to be sent to `node`.
    bool sends_to(std::size_t node, std::uint32_t shard) const;

    AckOutcome on_ack(std::size_t node, const Ack &ack);
    void on_down(std::size_t node);

    // The node's subscription to a shard reached the agent (or left it). Calls send(change) for
    // each change in flight of that shard the node has not acknowledged.
    template <typename Send>
    void on_subscribed(std::size_t node, std::uint32_t shard, Send send);
    void on_unsubscribed(std::size_t node, std::uint32_t shard);

    // Settles every change held by the bank, oldest of each shard first; calls
    // settled(change) for each.
    template <typename Settled>
    std::size_t settle(Settled settled);

    // Calls send(change) for each change in flight that `node` (up, and not full for the shard)
    // lacks, in shards where the oldest it lacks was published at least `age_ms` before `now`.
    template <typename Send>
    std::size_t resend(std::size_t node, MonotonicTime now, std::uint64_t age_ms, Send send);

    // The node's shards are to be published again in full (it asked, or missed them): records
    // each shard's head, the last shard sequence used before, for the node's next heartbeats.
    void republish(std::size_t node, const wire::ShardSet &shards);
    // The heads to put in a heartbeat with `request_id`: every head recorded, sent again in each
    // heartbeat until one that carried them is answered.
    std::vector<wire::ShardSequence> heads_for(std::size_t node, std::uint64_t request_id);
    void on_answered(std::size_t node, std::uint64_t request_id);

    bool empty() const { return in_flight_ == 0; }
    std::size_t size() const { return in_flight_; }
    std::size_t bytes() const { return bytes_; }
    std::uint64_t next_sequence() const { return next_sequence_; }
    // The save time of the oldest change in flight (0: none).
    WallTime oldest_saved_at() const;
    NodeFigures figures(std::size_t node) const;
    bool up(std::size_t node) const { return nodes_[node].up; }
    bool full(std::size_t node) const { return nodes_[node].full; }
    const wire::ShardSet &owned(std::size_t node) const { return nodes_[node].owned; }

  private:
    struct Node {
        bool answered = false;  // in this agent's life
        bool up = false;
        bool full = false;
        std::uint64_t refused = 0;
        wire::ShardSet owned;
        wire::ShardSet refusing;
        wire::ShardSet missed;
        wire::ShardSet subscribed;
        std::vector<std::uint64_t> shard_acked = std::vector<std::uint64_t>(wire::kShardCount);
        std::map<std::uint16_t, std::uint64_t> heads_to_send;
        std::map<std::uint16_t, std::uint64_t> heads_sent;
        std::uint64_t heads_request_id = 0;
    };

    bool held(std::uint32_t shard, const Change &change) const;
    // Changes of `shard` in flight after the shard sequence `acked`: a range of its deque.
    std::size_t first_after(std::uint32_t shard, std::uint64_t acked) const;

    std::vector<Node> nodes_;
    std::vector<std::deque<Change>> shards_;
    wire::ShardSet in_flight_shards_;             // shards with changes in flight
    wire::ShardSet to_settle_;                    // shards whose front may have become settled
    std::vector<std::uint64_t> shard_sequences_;  // the last used, per shard
    std::uint64_t next_sequence_ = 1;
    std::size_t in_flight_ = 0;
    std::size_t bytes_ = 0;
};

template <typename Send>
void ReplicationWindow::on_subscribed(std::size_t node, std::uint32_t shard, Send send) {
    Node &n = nodes_[node];
    n.subscribed.add(shard);
    if (!sends_to(node, shard)) {
        return;
    }
    const std::deque<Change> &changes = shards_[shard];
    for (std::size_t i = first_after(shard, n.shard_acked[shard]); i < changes.size(); ++i) {
        send(changes[i]);
    }
}

template <typename Settled>
std::size_t ReplicationWindow::settle(Settled settled) {
    std::size_t count = 0;
    wire::ShardSet look = to_settle_.common(in_flight_shards_);
    to_settle_ = wire::ShardSet{};
    look.for_each([&](std::uint32_t shard) {
        std::deque<Change> &changes = shards_[shard];
        while (!changes.empty() && held(shard, changes.front())) {
            for (Node &n : nodes_) {
                if (!n.up || (n.owned.contains(shard) && n.refusing.contains(shard))) {
                    n.missed.add(shard);
                }
            }
            settled(changes.front());
            bytes_ -= changes.front().message.size();
            --in_flight_;
            ++count;
            changes.pop_front();
        }
        if (changes.empty()) {
            in_flight_shards_.remove(shard);
        }
    });
    return count;
}

template <typename Send>
std::size_t ReplicationWindow::resend(std::size_t node, MonotonicTime now, std::uint64_t age_ms,
                                      Send send) {
    const Node &n = nodes_[node];
    if (!n.up) {
        return 0;
    }
    std::size_t sent = 0;
    n.owned.common(in_flight_shards_).common(n.subscribed).for_each([&](std::uint32_t shard) {
        if (n.full && n.refusing.contains(shard)) {
            return;  // it would refuse them again
        }
        const std::deque<Change> &changes = shards_[shard];
        std::size_t first = first_after(shard, n.shard_acked[shard]);
        if (first == changes.size() ||
            now - changes[first].published < std::chrono::milliseconds(age_ms)) {
            return;
        }
        for (std::size_t i = first; i < changes.size(); ++i) {
            send(changes[i]);
            ++sent;
        }
    });
    return sent;
}

}  // namespace rhythm
