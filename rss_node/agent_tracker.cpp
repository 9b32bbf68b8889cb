// Per-agent, per-shard sequence tracking and refusal queues.
#include "rss_node/agent_tracker.h"

#include <algorithm>

namespace rhythm::node {

AgentTracker::Agent *AgentTracker::agent_for(const wire::AgentId &id, std::uint64_t epoch,
                                             bool epoch_start, std::uint64_t now_mono_ms) {
    auto it = agents_.find(id);
    if (it == agents_.end()) {
        if (agents_.size() >= kMaxAgents) {
            return nullptr;
        }
        Agent fresh;
        fresh.epoch = epoch;
        // Met in the middle of its epoch: every shard waits for its head.
        fresh.needs_head = epoch_start ? wire::ShardSet{} : wire::ShardSet::all();
        it = agents_.emplace(id, std::move(fresh)).first;
    } else if (epoch > it->second.epoch) {
        // The agent restarted: a new stream, which every shard counts from 0.
        it->second.epoch = epoch;
        std::fill(it->second.shards.begin(), it->second.shards.end(), ShardProgress{});
        it->second.ahead.clear();
        it->second.ahead_total = 0;
        it->second.moved = wire::ShardSet{};
        it->second.moved_since_full = wire::ShardSet{};
        it->second.needs_head = wire::ShardSet{};
        it->second.refusing = wire::ShardSet{};
        it->second.refused = 0;
    }
    it->second.last_seen_mono_ms = now_mono_ms;
    return &it->second;
}

void AgentTracker::advance(Agent *a, std::uint32_t shard, std::uint64_t shard_sequence) {
    ShardProgress &p = a->shards[shard];
    if (!p.counted && !a->needs_head.contains(shard)) {
        p.counted = true;  // seen from the start of the epoch
    }
    if (p.counted && shard_sequence <= p.acked) {
        a->moved.add(shard);  // sent again: its acknowledgement may have been lost on the way
        return;
    }
    auto held = a->ahead.find(static_cast<std::uint16_t>(shard));
    if (p.counted && shard_sequence == p.acked + 1 && held == a->ahead.end()) {
        p.acked = shard_sequence;  // the usual case, in order: no need to hold it aside
        a->moved.add(shard);
        update_refusing(a, shard, p);
        return;
    }
    if (a->ahead_total < kMaxAhead &&
        a->ahead[static_cast<std::uint16_t>(shard)].insert(shard_sequence).second) {
        a->ahead_total++;
    }
    if (p.counted) {
        settle(a, shard, &p);
    }
}

// Moves `acked` over what is held aside and now follows it, and forgets what it passed.
void AgentTracker::settle(Agent *a, std::uint32_t shard, ShardProgress *p) {
    auto held = a->ahead.find(static_cast<std::uint16_t>(shard));
    if (held == a->ahead.end()) {
        update_refusing(a, shard, *p);
        return;
    }
    std::set<std::uint64_t> &ahead = held->second;
    std::uint64_t before = p->acked;
    while (!ahead.empty() && *ahead.begin() <= p->acked + 1) {
        p->acked = std::max(p->acked, *ahead.begin());
        ahead.erase(ahead.begin());
        a->ahead_total--;
    }
    if (ahead.empty()) {
        a->ahead.erase(held);
    }
    if (p->acked != before) {
        a->moved.add(shard);
    }
    update_refusing(a, shard, *p);
}

void AgentTracker::update_refusing(Agent *a, std::uint32_t shard, const ShardProgress &p) {
    if (p.refused_upto == 0) {
        return;  // nothing refused in this shard (the usual case): its bit is clear
    }
    if (p.refused_upto > p.acked) {
        a->refusing.add(shard);
    } else {
        a->refusing.remove(shard);
    }
}

void AgentTracker::on_published(const wire::SenderStamp &sender, std::uint32_t shard,
                                std::uint64_t now_mono_ms) {
    Agent *a = agent_for(sender.agent_id, sender.epoch, sender.sequence == 1, now_mono_ms);
    if (a != nullptr && sender.epoch == a->epoch) {
        advance(a, shard, sender.shard_sequence);
    }
}

void AgentTracker::on_refused(const wire::SenderStamp &sender, std::uint32_t shard,
                              std::uint64_t now_mono_ms) {
    Agent *a = agent_for(sender.agent_id, sender.epoch, sender.sequence == 1, now_mono_ms);
    if (a == nullptr || sender.epoch != a->epoch) {
        return;
    }
    a->refused++;
    ShardProgress &p = a->shards[shard];
    p.refused_upto = std::max(p.refused_upto, sender.shard_sequence);
    update_refusing(a, shard, p);
}

std::vector<wire::ShardSequence> AgentTracker::take_acks(Agent *a, const wire::ShardSet &owned,
                                                         std::uint64_t now_mono_ms) {
    wire::ShardSet listed = a->moved;
    a->moved_since_full.add_all(a->moved);
    if (now_mono_ms >= a->full_ack_due_wall_ms) {
        a->full_ack_due_wall_ms = now_mono_ms + kFullAckIntervalMs;
        listed = a->moved_since_full;
        a->moved_since_full = wire::ShardSet{};
    }
    std::vector<wire::ShardSequence> acks;
    owned.common(listed).for_each([&](std::uint32_t shard) {
        if (a->shards[shard].counted) {
            acks.push_back(
                wire::ShardSequence{static_cast<std::uint16_t>(shard), a->shards[shard].acked});
        }
    });
    a->moved = wire::ShardSet{};
    return acks;
}

void AgentTracker::forget_shards(const wire::ShardSet &shards) {
    for (auto &entry : agents_) {
        Agent &a = entry.second;
        shards.for_each([&](std::uint32_t shard) { a.shards[shard] = ShardProgress{}; });
        a.refusing.remove_all(shards);
        for (auto it = a.ahead.begin(); it != a.ahead.end();) {
            if (shards.contains(it->first)) {
                a.ahead_total -= it->second.size();
                it = a.ahead.erase(it);
            } else {
                ++it;
            }
        }
        a.needs_head.add_all(shards);
    }
}

AgentTracker::Agent *AgentTracker::on_heartbeat(const wire::Heartbeat &hb,
                                                const std::string &routing_id,
                                                const wire::ShardSet &owned,
                                                std::uint64_t now_mono_ms) {
    // Before its first message the stream of an epoch is seen from its start.
    Agent *a = agent_for(hb.agent_id, hb.epoch, hb.next_sequence <= 1, now_mono_ms);
    if (a == nullptr) {
        return nullptr;
    }
    if (a->routing_id != routing_id) {
        forget_routing_id(*a, hb.agent_id);
        a->routing_id = routing_id;
        by_routing_id_[routing_id] = hb.agent_id;
        // A connection of its own: the next agent of a server that restarted (the stopping one
        // says so last, on its old connection).
        a->restarting_since_mono_ms = 0;
    }
    name_server(a, hb.agent_id, std::string_view(hb.server_name.data(), hb.server_name.size()));
    a->last_heartbeat_mono_ms = now_mono_ms;
    if (hb.epoch == a->epoch) {
        // A head counts even where the stream was counted already: the agent sends heads when
        // it publishes a shard again because this node may have missed some of it (it was away
        // while the others acknowledged), and a repeat of one taken already changes nothing.
        for (const wire::ShardSequence &head : hb.heads) {
            if (!owned.contains(head.shard)) {
                continue;  // asked for before it lost the shard: it asks again if it regains it
            }
            a->needs_head.remove(head.shard);
            ShardProgress &p = a->shards[head.shard];
            p.counted = true;
            p.acked = std::max(p.acked, head.shard_sequence);
            settle(a, head.shard, &p);
            a->moved.add(head.shard);
        }
    }
    return a;
}

void AgentTracker::name_server(Agent *a, const wire::AgentId &id, std::string_view server_name) {
    if (a->server_name == server_name) {
        return;  // every heartbeat but the first
    }
    forget_server_name(*a, id);
    a->server_name.assign(server_name.data(), server_name.size());
    auto it = by_server_.find(server_name);
    if (it == by_server_.end()) {
        it = by_server_.emplace(a->server_name, std::set<wire::AgentId>{}).first;
    }
    it->second.insert(id);
}

void AgentTracker::forget_server_name(const Agent &a, const wire::AgentId &id) {
    auto it = by_server_.find(a.server_name);
    if (it != by_server_.end() && it->second.erase(id) != 0 && it->second.empty()) {
        by_server_.erase(it);
    }
}

void AgentTracker::add_refusal_to(Agent *a, const wire::AgentId &id, const wire::Refusal &refusal) {
    if (a->refusals.size() < kMaxQueuedRefusals) {
        a->refusals.push_back(refusal);
        waiting_.insert(id);
        refusals_added_ = true;
    }
}

void AgentTracker::add_refusal(const wire::AgentId &agent, const wire::Refusal &refusal) {
    auto it = agents_.find(agent);
    if (it != agents_.end()) {
        add_refusal_to(&it->second, it->first, refusal);
    }
}

void AgentTracker::add_refusal_for_server(std::string_view server_name,
                                          const wire::Refusal &refusal) {
    auto named = by_server_.find(server_name);
    if (named == by_server_.end()) {
        return;
    }
    for (const wire::AgentId &id : named->second) {
        add_refusal_to(&agents_.at(id), id, refusal);
    }
}

void AgentTracker::add_refusal_for_all(const wire::Refusal &refusal) {
    for (auto &entry : agents_) {
        add_refusal_to(&entry.second, entry.first, refusal);
    }
}

void AgentTracker::end_all_sessions() {
    for (auto &entry : agents_) {
        entry.second.all_sessions_ended = true;
        waiting_.insert(entry.first);
        refusals_added_ = true;
    }
}

void AgentTracker::request_resend(const wire::ShardSet &shards) {
    for (auto &entry : agents_) {
        entry.second.resend_shards.add_all(shards);
    }
}

std::string_view AgentTracker::on_restarting(const std::string &routing_id,
                                             std::uint64_t now_mono_ms) {
    auto id = by_routing_id_.find(routing_id);
    if (id == by_routing_id_.end()) {
        return {};
    }
    Agent &agent = agents_.at(id->second);
    agent.restarting_since_mono_ms = std::max<std::uint64_t>(now_mono_ms, 1);
    return agent.server_name;
}

bool AgentTracker::between_agents(std::string_view server_name, std::uint64_t now_mono_ms) const {
    auto named = by_server_.find(server_name);
    if (named == by_server_.end()) {
        return false;
    }
    for (const wire::AgentId &id : named->second) {
        const Agent &agent = agents_.at(id);
        if (agent.restarting_since_mono_ms != 0 &&
            now_mono_ms - agent.restarting_since_mono_ms <= kRestartWaitMs) {
            return true;
        }
    }
    return false;
}

void AgentTracker::forget_idle(std::uint64_t now_mono_ms, std::uint64_t idle_ms) {
    for (auto it = agents_.begin(); it != agents_.end();) {
        if (now_mono_ms - it->second.last_seen_mono_ms > idle_ms) {
            forget_routing_id(it->second, it->first);
            forget_server_name(it->second, it->first);
            waiting_.erase(it->first);
            it = agents_.erase(it);
        } else {
            ++it;
        }
    }
}

const AgentTracker::Agent *AgentTracker::find(const wire::AgentId &agent) const {
    auto it = agents_.find(agent);
    return it == agents_.end() ? nullptr : &it->second;
}

const AgentTracker::Agent *AgentTracker::find_by_routing_id(const std::string &routing_id) const {
    auto it = by_routing_id_.find(routing_id);
    return it == by_routing_id_.end() ? nullptr : find(it->second);
}

// An identity the ROUTER gave another connection since stays that connection's.
void AgentTracker::forget_routing_id(const Agent &agent, const wire::AgentId &id) {
    auto it = by_routing_id_.find(agent.routing_id);
    if (it != by_routing_id_.end() && it->second == id) {
        by_routing_id_.erase(it);
    }
}

const AgentTracker::Agent *AgentTracker::reachable_agent_of_server(std::string_view server_name,
                                                                   std::uint64_t now_mono_ms,
                                                                   std::uint64_t within_ms) const {
    auto named = by_server_.find(server_name);
    if (named == by_server_.end()) {
        return nullptr;
    }
    const Agent *latest = nullptr;
    for (const wire::AgentId &id : named->second) {
        const Agent &agent = agents_.at(id);
        if (!agent.routing_id.empty() &&
            (latest == nullptr || agent.last_heartbeat_mono_ms > latest->last_heartbeat_mono_ms)) {
            latest = &agent;
        }
    }
    return latest != nullptr && now_mono_ms - latest->last_heartbeat_mono_ms <= within_ms ? latest
                                                                                          : nullptr;
}

}  // namespace rhythm::node
