// Streaming snapshots of the store to the peers that ask, a slice per turn.
#include "rss_node/snapshot_server.h"

#include <algorithm>

namespace rhythm::node {

bool SnapshotServer::start(const std::string &routing_id, const wire::SnapshotRequest &request) {
    if (jobs_.size() >= kMaxInProgress) {
        return false;
    }
    Job job;
    job.routing_id = routing_id;
    job.request_id = request.request_id;
    job.shards = request.shards;
    jobs_.push_back(std::move(job));
    return true;
}

SnapshotServer::Turn SnapshotServer::advance(std::uint64_t now_wall_ms, const Send &send) {
    Turn turn;
    blocked_ = false;
    std::size_t budget = kRecordsPerTurn;
    while (!jobs_.empty() && budget > 0) {
        Job &job = jobs_.front();
        if (job.sent_in_shard == job.pending.size()) {
            // Next shard of the request: take its keys now, send their latest versions below.
            job.pending.clear();
            job.sent_in_shard = 0;
            while (job.next_shard < wire::kShardCount && !job.shards.contains(job.next_shard)) {
                job.next_shard++;
            }
            if (job.next_shard == wire::kShardCount) {
                if (send(job.routing_id, wire::SnapshotEnd{job.request_id, job.records}) !=
                    Sent::kSent) {
                    turn.dropped++;
                }
                turn.served++;
                jobs_.pop_front();
                continue;
            }
            store_.for_each_in_shard(
                job.next_shard, now_wall_ms,
                [&](const wire::SessionRecord &r) { job.pending.push_back(r.key); });
            job.next_shard++;
        }
        while (job.sent_in_shard < job.pending.size() && budget > 0) {
            wire::SnapshotRecord record;
            record.request_id = job.request_id;
            if (store_.find(job.pending[job.sent_in_shard], now_wall_ms, &record.record)) {
                Sent sent = send(job.routing_id, record);
                if (sent == Sent::kWouldBlock) {
                    blocked_ = true;  // the requester is behind: carry on later
                    return turn;
                }
                if (sent == Sent::kGone) {
                    turn.dropped++;
                    jobs_.pop_front();  // the requester is gone
                    break;
                }
                job.records++;
            }
            job.sent_in_shard++;
            budget--;
        }
    }
    return turn;
}

bool SnapshotServer::serving(std::uint32_t shard) const {
    return std::any_of(jobs_.begin(), jobs_.end(),
                       [&](const Job &job) { return job.shards.contains(shard); });
}

}  // namespace rhythm::node
