// What the node knows of each backup agent that publishes to it: the epoch and, for each shard
// the node receives, the highest contiguous shard sequence (what heartbeat acks report, shard by
// shard, so the agent re-sends the rest), the routing identity of its heartbeats (to reach it over
// the ROUTER), and the "newer version elsewhere" refusals waiting to be told to it. A node only
// sees the shards it owns, so the agent's stream-wide sequence has gaps here by design; each
// shard's own sequence has none.
//
// A node that meets an agent in the middle of its epoch, or gains a shard, cannot know what it
// missed before: it asks the agent to publish every session of the shards concerned again (see
// Resend in docs/protocol.md), and the agent answers, in its next heartbeat, with each shard's
// head: the last shard sequence it used before. The shard's stream counts from there; what
// arrives before the head is kept aside. A stream seen from the start of its epoch counts from 0.
// The agent also sends heads, with the sessions, for shards that changed while this node was
// away (not answering): those count from the new head too, whatever was missed before it.
//
// A change the node refused for lack of memory is not held: it leaves a gap in its shard's
// stream, so the acknowledgement stops before it, and the shard is *refusing* until the change
// arrives again (the agent re-sends it once the node has room) or a head passes it (the agent
// published the shard again).
//
// Its times measure intervals only (an agent idle for 10 minutes, a full acknowledgement every
// second): the node's turn on the monotonic clock, plain milliseconds (`_mono_ms`) as it is fed
// on every update.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "wire/messages.h"

namespace rhythm::node {

class AgentTracker {
  public:
    struct ShardProgress {
        bool counted = false;            // its start is known (0, or a head the agent sent)
        std::uint64_t acked = 0;         // highest contiguous shard sequence received in the epoch
        std::uint64_t refused_upto = 0;  // highest shard sequence refused for lack of memory
    };
    struct Agent {
        std::uint64_t epoch = 0;
        // By shard number: looked up for every update, so an array (16 KiB) rather than a tree.
        std::vector<ShardProgress> shards = std::vector<ShardProgress>(wire::kShardCount);
        // By shard: sequences received past a gap (or before the shard's start is known).
        std::map<std::uint16_t, std::set<std::uint64_t>> ahead;
        std::size_t ahead_total = 0;      // entries in every shard's `ahead`
        wire::ShardSet moved;             // shards whose `acked` moved since the last ack
        wire::ShardSet moved_since_full;  // ... since the last full ack
        wire::ShardSet needs_head;        // shards whose stream starts at a head still to come
        wire::ShardSet refusing;          // shards whose `acked` stops before a refused change
        std::uint64_t refused = 0;        // changes of the epoch refused for lack of memory
        std::uint64_t full_ack_due_wall_ms = 0;    // when to report moved_since_full again
        std::string routing_id;                    // of its last heartbeat; empty before one
        std::string server_name;                   // from its heartbeats
        std::uint64_t last_seen_mono_ms = 0;       // by anything it sent
        std::uint64_t last_heartbeat_mono_ms = 0;  // by its heartbeats, on its queries connection
        bool resend_requested = false;             // the first-contact re-send was asked for
        wire::ShardSet resend_shards;  // to ask it to publish again, in its next heartbeat reply
        std::vector<wire::Refusal> refusals;
        bool all_sessions_ended = false;  // to tell it: an operator ended every session
        // When it said it stops for a restart of its server (0: it did not): until the server's
        // next agent heartbeats, the server is between two agents, not gone.
        std::uint64_t restarting_since_mono_ms = 0;
    };

    // Most out-of-order sequences remembered per agent, most refusals queued per agent, most
    // agents remembered (each costs about 16 KiB; a bank has one per web server): past these the
    // node forgets (the agent re-sends; nothing is lost).
    static constexpr std::size_t kMaxAhead = 65536;
    static constexpr std::size_t kMaxQueuedRefusals = 65536;
    static constexpr std::size_t kMaxAgents = 4096;
    // How long a server that said it restarts counts as between two agents at most: a graceful
    // restart reads its configuration and forks the next agent in well under a second, and its
    // first handshake may take a second or two under packet loss. A restart that failed (the
    // configuration no longer reads) ends the wait.
    static constexpr std::uint64_t kRestartWaitMs = 5000;

    void on_published(const wire::SenderStamp &sender, std::uint32_t shard,
                      std::uint64_t now_mono_ms);

    // A published change the node did not store (no memory): not counted as received.
    void on_refused(const wire::SenderStamp &sender, std::uint32_t shard,
                    std::uint64_t now_mono_ms);

    // The shard acknowledgements for `agent`'s next heartbeat ack: the shards of `owned` whose
    // progress moved since the last one, and every kFullAckIntervalMs again those that moved
    // since the last such full ack. Not every counted shard: an idle agent needs none, and 1,024
    // of them a second to each of 1,000 idle agents cost the node 8 MiB/s (bench/agent_swarm).
    // An ack lost on the way does not hold the agent up for good: it publishes what stays
    // unacknowledged again, and a change that arrives again marks its shard moved.
    std::vector<wire::ShardSequence> take_acks(Agent *agent, const wire::ShardSet &owned,
                                               std::uint64_t now_mono_ms);

    // Forgets every agent's progress in `shards` (gained or lost by this node): the next message
    // of such a shard starts its stream again.
    void forget_shards(const wire::ShardSet &shards);

    static constexpr std::uint64_t kFullAckIntervalMs = 1000;

    // Records a heartbeat and takes its heads for the shards of `owned`; returns the agent, or
    // null when the table of agents is full.
    Agent *on_heartbeat(const wire::Heartbeat &heartbeat, const std::string &routing_id,
                        const wire::ShardSet &owned, std::uint64_t now_mono_ms);

    void add_refusal(const wire::AgentId &agent, const wire::Refusal &refusal);

    // The same, for the agents of the web server that calls itself `server_name` (the origin of
    // a version another server has just superseded).
    void add_refusal_for_server(std::string_view server_name, const wire::Refusal &refusal);

    // An operator ended a session (its tombstone's version in `refusal`), or every session: each
    // agent is told, as it is of a refusal, since any web server may hold a copy.
    void add_refusal_for_all(const wire::Refusal &refusal);
    void end_all_sessions();

    // Calls send(routing_id, &agent) for each agent with refusals (or an end of all) waiting and a
    // known routing identity, when any was added since the last call: a server that another has
    // just taken a session over from must learn it at once, not at its next heartbeat (up to a
    // second when idle), or it serves its old copy to a request that comes back to it meanwhile.
    template <typename Send>
    void send_waiting_refusals(Send send);

    // Every known agent is to be asked to publish `shards` again (shards the node has gained).
    void request_resend(const wire::ShardSet &shards);

    // The agent whose heartbeats come from `routing_id` stops for a restart of its server (a
    // restarting message): returns its server's name, or empty when the agent is not known.
    std::string_view on_restarting(const std::string &routing_id, std::uint64_t now_mono_ms);
    // Whether `server_name`'s agent said it stops for a restart, at most kRestartWaitMs ago, and
    // no heartbeat of its next agent has come since: a handover it would be asked for waits.
    bool between_agents(std::string_view server_name, std::uint64_t now_mono_ms) const;

    // Forgets agents not seen for `idle_ms`.
    void forget_idle(std::uint64_t now_mono_ms, std::uint64_t idle_ms);

    std::size_t size() const { return agents_.size(); }
    const Agent *find(const wire::AgentId &agent) const;
    // The agent whose last heartbeat came from `routing_id`, or null.
    const Agent *find_by_routing_id(const std::string &routing_id) const;
    // The agent of the web server `server_name` whose heartbeat came last, if that was within
    // `within_ms`; null otherwise. Its heartbeats, not its publications: what can be asked of it
    // (a handover) goes on the connection its heartbeats come on, and a server that publishes
    // while that connection is cut or silent cannot be asked (the fault campaign's fix 31 test:
    // web-a's re-sends reached the node on its updates connection after the relay cut its queries
    // connection, and the node, counting web-a heard from 1.2 s before, took the failed send of
    // the handover for web-a's death and vouched for its own older copy).
    const Agent *reachable_agent_of_server(std::string_view server_name, std::uint64_t now_mono_ms,
                                           std::uint64_t within_ms) const;

  private:
    Agent *agent_for(const wire::AgentId &id, std::uint64_t epoch, bool epoch_start,
                     std::uint64_t now_mono_ms);
    static void advance(Agent *agent, std::uint32_t shard, std::uint64_t shard_sequence);
    static void settle(Agent *agent, std::uint32_t shard, ShardProgress *progress);
    static void update_refusing(Agent *agent, std::uint32_t shard, const ShardProgress &progress);
    void forget_routing_id(const Agent &agent, const wire::AgentId &id);
    void name_server(Agent *agent, const wire::AgentId &id, std::string_view server_name);
    void forget_server_name(const Agent &agent, const wire::AgentId &id);
    void add_refusal_to(Agent *agent, const wire::AgentId &id, const wire::Refusal &refusal);

    std::map<wire::AgentId, Agent> agents_;
    std::map<std::string, wire::AgentId> by_routing_id_;  // of each agent's last heartbeat
    // The agents of each web server (one, or a few across its restarts), and those with refusals
    // or an end of all sessions waiting: a failover to 3,000 web servers would otherwise walk
    // every agent for each session taken over.
    std::map<std::string, std::set<wire::AgentId>, std::less<>> by_server_;
    std::set<wire::AgentId> waiting_;
    bool refusals_added_ = false;
};

template <typename Send>
void AgentTracker::send_waiting_refusals(Send send) {
    if (!refusals_added_) {
        return;  // the usual turn
    }
    refusals_added_ = false;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        Agent &agent = agents_.at(*it);
        if ((!agent.refusals.empty() || agent.all_sessions_ended) && !agent.routing_id.empty()) {
            send(agent.routing_id, &agent);
        }
        // What is left (its queue full, or no heartbeat yet) goes with the next refusal added
        // or the agent's next heartbeat, as before.
        it = agent.refusals.empty() && !agent.all_sessions_ended ? waiting_.erase(it) : ++it;
    }
}

}  // namespace rhythm::node
