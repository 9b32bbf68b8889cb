// Per-agent sequence tracking and refusal queues.
#include "rss_node/agent_tracker.h"

namespace rhythm::node {

AgentTracker::Agent *AgentTracker::agent_for(const wire::AgentId &id, std::uint64_t epoch,
                                             std::uint64_t first_sequence, std::uint64_t now_ms) {
    auto it = agents_.find(id);
    if (it == agents_.end()) {
        if (agents_.size() >= kMaxAgents) {
            return nullptr;
        }
        Agent fresh;
        fresh.epoch = epoch;
        fresh.acked = first_sequence - 1;
        it = agents_.emplace(id, std::move(fresh)).first;
    } else if (epoch > it->second.epoch) {
        // The agent restarted: a new stream, counted from where we join it.
        it->second.epoch = epoch;
        it->second.acked = first_sequence - 1;
        it->second.ahead.clear();
    }
    it->second.last_seen_ms = now_ms;
    return &it->second;
}

void AgentTracker::advance(Agent *a, std::uint64_t sequence) {
    if (sequence <= a->acked) {
        return;
    }
    if (sequence == a->acked + 1) {
        a->acked = sequence;
        while (!a->ahead.empty() && *a->ahead.begin() == a->acked + 1) {
            a->acked++;
            a->ahead.erase(a->ahead.begin());
        }
        return;
    }
    if (a->ahead.size() < kMaxAhead) {
        a->ahead.insert(sequence);
    }
}

void AgentTracker::on_published(const wire::SenderStamp &sender, std::uint64_t now_ms) {
    Agent *a = agent_for(sender.agent_id, sender.epoch, sender.sequence, now_ms);
    if (a != nullptr && sender.epoch == a->epoch) {
        advance(a, sender.sequence);
    }
}

AgentTracker::Agent *AgentTracker::on_heartbeat(const wire::Heartbeat &hb,
                                                const std::string &routing_id,
                                                std::uint64_t now_ms) {
    // Before any update arrives, the stream starts at the agent's next sequence.
    std::uint64_t first = hb.next_sequence == 0 ? 1 : hb.next_sequence;
    Agent *a = agent_for(hb.agent_id, hb.epoch, first, now_ms);
    if (a == nullptr) {
        return nullptr;
    }
    a->routing_id = routing_id;
    a->server_name.assign(hb.server_name.data(), hb.server_name.size());
    return a;
}

void AgentTracker::add_refusal(const wire::AgentId &agent, const wire::Refusal &refusal) {
    auto it = agents_.find(agent);
    if (it != agents_.end() && it->second.refusals.size() < kMaxQueuedRefusals) {
        it->second.refusals.push_back(refusal);
    }
}

void AgentTracker::add_refusal_for_server(std::string_view server_name,
                                          const wire::Refusal &refusal) {
    for (auto &entry : agents_) {
        Agent &agent = entry.second;
        if (agent.server_name == server_name && agent.refusals.size() < kMaxQueuedRefusals) {
            agent.refusals.push_back(refusal);
        }
    }
}

void AgentTracker::request_resend(const wire::ShardSet &shards) {
    for (auto &entry : agents_) {
        entry.second.resend_shards.add_all(shards);
    }
}

void AgentTracker::forget_idle(std::uint64_t now_ms, std::uint64_t idle_ms) {
    for (auto it = agents_.begin(); it != agents_.end();) {
        if (now_ms - it->second.last_seen_ms > idle_ms) {
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

}  // namespace rhythm::node
