// The replication window's rules (see replication_window.h).
#include "backup/replication_window.h"

#include <algorithm>

namespace rhythm {

ReplicationWindow::ReplicationWindow(std::size_t nodes)
    : nodes_(nodes), shards_(wire::kShardCount), shard_sequences_(wire::kShardCount) {}

ReplicationWindow::Numbers ReplicationWindow::number(std::uint32_t shard) {
    return Numbers{next_sequence_++, ++shard_sequences_[shard]};
}

const ReplicationWindow::Change &ReplicationWindow::add(std::uint32_t shard, const Numbers &numbers,
                                                        const SessionId &id, std::uint64_t version,
                                                        WallTime saved_at, MonotonicTime now,
                                                        std::string message) {
    bytes_ += message.size();
    ++in_flight_;
    in_flight_shards_.add(shard);
    std::deque<Change> &changes = shards_[shard];
    changes.push_back(Change{numbers.sequence, numbers.shard_sequence, id, version, saved_at, now,
                             std::move(message)});
    return changes.back();
}

bool ReplicationWindow::sends_to(std::size_t node, std::uint32_t shard) const {
    const Node &n = nodes_[node];
    // A node not heard from yet is sent to as soon as it subscribes: it may be up already.
    return n.subscribed.contains(shard) && (n.up || !n.answered);
}

ReplicationWindow::AckOutcome ReplicationWindow::on_ack(std::size_t node, const Ack &ack) {
    Node &n = nodes_[node];
    AckOutcome out;
    bool was_up = n.up;
    // What it missed of the shards it owned at its previous answer, now that it can take them: a
    // node that was down answers once before its repair, so that a re-send it asked for with
    // that first answer (one that restarted empty asks for all its shards) is taken first and no
    // shard is published twice.
    if (was_up && !ack.full) {
        out.repair = n.missed.common(n.owned);
    }
    out.became_full = ack.full && !n.full;
    out.room_again = !ack.full && n.full;
    out.newly_refused = ack.refused > n.refused ? ack.refused - n.refused : 0;
    if (!was_up || !(ack.owned == n.owned) || !(ack.refusing == n.refusing)) {
        to_settle_.add_all(in_flight_shards_);  // who counts for which shard has changed
    }
    n.answered = true;
    n.up = true;
    n.full = ack.full;
    n.refused = ack.refused;
    // A shard it has just gained counts from 0 again there: what it held of it before is gone.
    wire::ShardSet gained = ack.owned;
    gained.remove_all(n.owned);
    gained.for_each([&](std::uint32_t shard) { n.shard_acked[shard] = 0; });
    n.owned = ack.owned;
    // ... and the nodes out of reach that owned it own it no more, as far as this agent can
    // tell, once the nodes that are up hold it as many times as it was held: the bank has given
    // their part to others (a take-over does not wait for them, FetchService). One gain alone
    // says only that one owner was replaced, not which: the fault campaign under ASan (s108-80all)
    // saw node-1 gain node-2's part of a shard while node-3, its other owner, was out of web-3's
    // reach with the newer copy; web-3 then counted no owner out, took node-1's copy it could not
    // vouch for, and the user lost 2 changes.
    gained.for_each([&](std::uint32_t shard) {
        std::size_t held = 0, held_up = 0;
        for (const Node &other : nodes_) {
            if (other.owned.contains(shard)) {
                ++held;
                held_up += other.up ? 1 : 0;
            }
        }
        if (held_up >= held - 1) {  // held - 1: the holders before this node gained it
            for (Node &other : nodes_) {
                if (!other.up) {
                    other.owned.remove(shard);
                }
            }
        }
    });
    n.refusing = ack.refusing;
    if (ack.shard_acks != nullptr) {
        for (const wire::ShardSequence &a : *ack.shard_acks) {
            n.shard_acked[a.shard] = std::max(n.shard_acked[a.shard], a.shard_sequence);
            to_settle_.add(a.shard);
        }
    }
    return out;
}

void ReplicationWindow::on_down(std::size_t node) {
    nodes_[node].up = false;
    to_settle_.add_all(in_flight_shards_);
}

void ReplicationWindow::on_unsubscribed(std::size_t node, std::uint32_t shard) {
    nodes_[node].subscribed.remove(shard);
}

void ReplicationWindow::republish(std::size_t node, const wire::ShardSet &shards) {
    Node &n = nodes_[node];
    shards.for_each([&](std::uint32_t shard) {
        // The head stops before what is in flight: the node acknowledges a head at once, before
        // anything published after it arrives, so a head past a change in flight would count
        // the change as held by a node that may never get it (it may be full).
        const std::deque<Change> &changes = shards_[shard];
        std::uint64_t head =
            changes.empty() ? shard_sequences_[shard] : changes.front().shard_sequence - 1;
        n.heads_to_send[static_cast<std::uint16_t>(shard)] = head;
        n.shard_acked[shard] = std::min(n.shard_acked[shard], head);
    });
    n.missed.remove_all(shards);
}

std::vector<wire::ShardSequence> ReplicationWindow::heads_for(std::size_t node,
                                                              std::uint64_t request_id) {
    Node &n = nodes_[node];
    if (n.heads_sent.empty() && !n.heads_to_send.empty()) {
        n.heads_sent.swap(n.heads_to_send);
        n.heads_request_id = request_id;
    }
    std::vector<wire::ShardSequence> heads;
    for (const auto &[shard, head] : n.heads_sent) {
        heads.push_back(wire::ShardSequence{shard, head});
    }
    return heads;
}

void ReplicationWindow::on_answered(std::size_t node, std::uint64_t request_id) {
    Node &n = nodes_[node];
    if (request_id >= n.heads_request_id) {
        n.heads_sent.clear();
    }
}

bool ReplicationWindow::held(std::uint32_t shard, const Change &change) const {
    bool counted = false;
    for (const Node &n : nodes_) {
        if (!n.up || !n.owned.contains(shard)) {
            continue;
        }
        bool has_it = n.shard_acked[shard] >= change.shard_sequence;
        if (n.refusing.contains(shard)) {
            // What it holds before the change it refused counts; the rest waits for no one
            // (it is not sent again to a full node until it has room).
            counted = counted || has_it;
            continue;
        }
        if (!has_it) {
            return false;
        }
        counted = true;
    }
    return counted;
}

std::size_t ReplicationWindow::first_after(std::uint32_t shard, std::uint64_t acked) const {
    const std::deque<Change> &changes = shards_[shard];
    if (changes.empty() || acked < changes.front().shard_sequence) {
        return 0;
    }
    return static_cast<std::size_t>(
        std::min<std::uint64_t>(acked + 1 - changes.front().shard_sequence, changes.size()));
}

WallTime ReplicationWindow::oldest_saved_at() const {
    WallTime oldest;
    in_flight_shards_.for_each([&](std::uint32_t shard) {
        WallTime saved = shards_[shard].front().saved_at;
        if (oldest == WallTime() || (saved != WallTime() && saved < oldest)) {
            oldest = saved;
        }
    });
    return oldest;
}

ReplicationWindow::NodeFigures ReplicationWindow::figures(std::size_t node) const {
    const Node &n = nodes_[node];
    NodeFigures f;
    f.refused = n.refused;
    f.refusing_shards = n.refusing.count();
    f.full = n.full;
    n.owned.for_each([&](std::uint32_t shard) {
        std::uint64_t acked = n.shard_acked[shard];
        if (shard_sequences_[shard] <= acked) {
            return;
        }
        f.unacknowledged += shard_sequences_[shard] - acked;
        const std::deque<Change> &changes = shards_[shard];
        if (changes.empty() || acked + 1 < changes.front().shard_sequence) {
            f.lacks_settled = true;  // settled without it: no longer here to date
            return;
        }
        WallTime saved = changes[first_after(shard, acked)].saved_at;
        if (f.oldest_saved_at == WallTime() || (saved != WallTime() && saved < f.oldest_saved_at)) {
            f.oldest_saved_at = saved;
        }
    });
    return f;
}

}  // namespace rhythm
