// What the node knows of each backup agent that publishes to it: the epoch and the highest
// contiguous sequence received (what heartbeat acks report, so the agent re-sends the rest), the
// routing identity of its heartbeats (to reach it over the ROUTER), and the "newer version
// elsewhere" refusals waiting to be told to it.
//
// A node that meets an agent for the first time cannot know what it missed before: it takes the
// first sequence it sees as the start of the stream and asks the agent, once, to re-send every
// shard the node owns (see Resend in docs/protocol.md). It asks the same for each shard it gains
// later, when the bank's membership changes.
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
    struct Agent {
        std::uint64_t epoch = 0;
        std::uint64_t acked = 0;        // highest contiguous sequence received in `epoch`
        std::set<std::uint64_t> ahead;  // received past a gap, waiting for the gap to fill
        std::string routing_id;         // of its last heartbeat; empty before one
        std::string server_name;        // from its heartbeats
        std::uint64_t last_seen_ms = 0;
        bool resend_requested = false;  // the first-contact re-send was asked for
        wire::ShardSet resend_shards;   // to ask it to publish again, in its next heartbeat reply
        std::vector<wire::Refusal> refusals;
    };

    // Most out-of-order sequences remembered per agent, most refusals queued per agent, most
    // agents remembered: past these the node forgets (the agent re-sends; nothing is lost).
    static constexpr std::size_t kMaxAhead = 65536;
    static constexpr std::size_t kMaxQueuedRefusals = 65536;
    static constexpr std::size_t kMaxAgents = 65536;

    void on_published(const wire::SenderStamp &sender, std::uint64_t now_ms);

    // Records a heartbeat; returns the agent, or null when the table of agents is full.
    Agent *on_heartbeat(const wire::Heartbeat &heartbeat, const std::string &routing_id,
                        std::uint64_t now_ms);

    void add_refusal(const wire::AgentId &agent, const wire::Refusal &refusal);

    // The same, for the agents of the web server that calls itself `server_name` (the origin of
    // a version another server has just superseded).
    void add_refusal_for_server(std::string_view server_name, const wire::Refusal &refusal);

    // Every known agent is to be asked to publish `shards` again (shards the node has gained).
    void request_resend(const wire::ShardSet &shards);

    // Forgets agents not seen for `idle_ms`.
    void forget_idle(std::uint64_t now_ms, std::uint64_t idle_ms);

    std::size_t size() const { return agents_.size(); }
    const Agent *find(const wire::AgentId &agent) const;

  private:
    Agent *agent_for(const wire::AgentId &id, std::uint64_t epoch, std::uint64_t first_sequence,
                     std::uint64_t now_ms);
    static void advance(Agent *agent, std::uint64_t sequence);

    std::map<wire::AgentId, Agent> agents_;
};

}  // namespace rhythm::node
