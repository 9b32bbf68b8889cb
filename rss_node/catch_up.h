// Catching up a peer that comes back to a bank that went on without it (hung, cut off): the
// shards this node owned while it counted the peer down are offered to the peer when it is up
// again, and the peer fills those it owns from this node's snapshot. The peer may see nothing
// change itself (a node that was stopped excuses its own silence), and the node that took its
// changes meanwhile may give the shard up as the peer comes back: without the offer the peer
// would answer for the shard with its copy from before, and the web servers re-send only the
// sessions they still hold (docs/backup.md, "A node that comes back").
//
// Both sides, without sockets or clocks: the node's loop sends the offers it is handed, passes on
// those it receives, and asks SnapshotFills for the fills they call for. Bounded by the number of
// configured peers: one shard set per peer and direction.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rss_node/membership.h"
#include "wire/messages.h"

namespace rhythm::node {

class CatchUp {
  public:
    // This node decided what it owns (`owned`) among `peers`: each peer not up misses the
    // changes of these shards from now on; a peer up again after missing some is to be offered
    // them.
    void on_ownership(const std::vector<Membership::Peer> &peers, const wire::ShardSet &owned);

    // The offer waiting for peer `peer` (empty when none).
    const wire::ShardSet &offer_for(std::size_t peer) const;
    // The offer went to peer `peer`.
    void offer_sent(std::size_t peer);

    // A peer's offer, received: false when no configured peer answers to `peer_name`.
    bool offered(const std::vector<Membership::Peer> &peers, std::string_view peer_name,
                 const wire::ShardSet &shards);

    // The fills the offers received call for, by peer name: of each offering peer that is up, the
    // offered shards this node owns and is not filling already. The offers of a peer not up
    // wait for it.
    std::map<std::string, wire::ShardSet> fills_due(const std::vector<Membership::Peer> &peers,
                                                    const wire::ShardSet &owned,
                                                    const wire::ShardSet &filling);

  private:
    void resize(std::size_t peers);

    std::vector<wire::ShardSet> missed_;    // by peer: owned here while it was not up
    std::vector<wire::ShardSet> to_offer_;  // by peer: up again, offer not sent yet
    std::vector<wire::ShardSet> offered_;   // by peer: its offers, not yet asked for
};

}  // namespace rhythm::node
