// The fills of gained shards from peers' snapshots: what is asked of whom, when, and until when.
#include "rss_node/snapshot_fill.h"

#include <algorithm>

#include "rss_node/log.h"

namespace rhythm::node {

void SnapshotFills::ask(const std::map<std::string, wire::ShardSet> &sources,
                        const std::vector<Membership::Peer> &peers,
                        std::uint64_t *next_request_id) {
    for (const auto &[name, shards] : sources) {
        for (std::size_t i = 0; i < peers.size(); ++i) {
            if (peers[i].state == PeerState::kUp && peers[i].name == name) {
                Fill fill;
                fill.peer = i;
                fill.request_id = (*next_request_id)++;
                fill.shards = shards;
                fills_.push_back(fill);
                break;
            }
        }
    }
}

std::size_t SnapshotFills::send_due(std::uint64_t mono_ms, const Send &send) {
    std::size_t sent = 0;
    for (auto &fill : fills_) {
        if (fill.sent || mono_ms < fill.send_after_ms) {
            continue;
        }
        if (send(fill.peer, wire::SnapshotRequest{fill.request_id, fill.shards})) {
            fill.sent = true;
            fill.last_progress_ms = mono_ms;
            sent++;
        }
    }
    return sent;
}

bool SnapshotFills::accept(const wire::SnapshotRecord &record, const wire::ShardSet &owned,
                           std::uint64_t mono_ms) {
    auto fill = std::find_if(fills_.begin(), fills_.end(),
                             [&](const Fill &f) { return f.request_id == record.request_id; });
    if (fill == fills_.end()) {
        return false;  // given up, or its peer went down
    }
    fill->last_progress_ms = mono_ms;
    return owned.contains(wire::shard_of(record.record.key));
}

void SnapshotFills::on_end(std::uint64_t request_id, std::string_view peer_name) {
    for (auto it = fills_.begin(); it != fills_.end(); ++it) {
        if (it->request_id == request_id) {
            RSS_LOG(LogLevel::kInfo, "RN0204: filled %zu shard(s) from peer %.*s",
                    it->shards.count(), static_cast<int>(peer_name.size()), peer_name.data());
            fills_.erase(it);
            return;
        }
    }
}

void SnapshotFills::on_error(const wire::ErrorReply &error, std::string_view peer_name,
                             std::uint64_t mono_ms) {
    for (auto it = fills_.begin(); it != fills_.end(); ++it) {
        if (it->request_id != error.request_id) {
            continue;
        }
        if (error.code == wire::ErrorCode::kBusy) {
            it->sent = false;
            it->send_after_ms = mono_ms + kRetryMs;
        } else {
            RSS_LOG(LogLevel::kWarn,
                    "RN0205: peer %.*s refused a snapshot of %zu shard(s): %.*s; the agents "
                    "re-send them",
                    static_cast<int>(peer_name.size()), peer_name.data(), it->shards.count(),
                    static_cast<int>(error.text.size()), error.text.data());
            fills_.erase(it);
        }
        return;
    }
}

wire::ShardSet SnapshotFills::give_up(const std::vector<Membership::Peer> &peers,
                                      std::uint64_t mono_ms) {
    wire::ShardSet resend;
    for (auto it = fills_.begin(); it != fills_.end();) {
        const Membership::Peer &peer = peers[it->peer];
        if (peer.state != PeerState::kUp) {
            // Its snapshot will not come (all of it): the agents publish those shards again.
            RSS_LOG(LogLevel::kWarn,
                    "RN0206: peer %s went down during a snapshot of %zu shard(s): the agents are "
                    "asked to "
                    "re-send them",
                    peer.name.c_str(), it->shards.count());
            resend.add_all(it->shards);
            it = fills_.erase(it);
        } else if (it->sent && mono_ms - it->last_progress_ms > kStallMs) {
            RSS_LOG(
                LogLevel::kWarn,
                "RN0207: peer %s sent nothing of a snapshot of %zu shard(s) for %llu s: given up; "
                "the agents re-send them",
                peer.name.c_str(), it->shards.count(),
                static_cast<unsigned long long>(kStallMs / 1000));
            resend.add_all(it->shards);
            it = fills_.erase(it);
        } else {
            ++it;
        }
    }
    return resend;
}

bool SnapshotFills::filling(std::uint32_t shard) const {
    return std::any_of(fills_.begin(), fills_.end(),
                       [&](const Fill &fill) { return fill.shards.contains(shard); });
}

wire::ShardSet SnapshotFills::shards() const {
    wire::ShardSet all;
    for (const auto &fill : fills_) {
        all.add_all(fill.shards);
    }
    return all;
}

}  // namespace rhythm::node
