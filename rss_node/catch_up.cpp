// Offers of the shards a peer missed, made and taken (see catch_up.h).
#include "rss_node/catch_up.h"

namespace rhythm::node {

void CatchUp::resize(std::size_t peers) {
    if (missed_.size() < peers) {
        missed_.resize(peers);
        to_offer_.resize(peers);
        offered_.resize(peers);
    }
}

void CatchUp::on_ownership(const std::vector<Membership::Peer> &peers,
                           const wire::ShardSet &owned) {
    resize(peers.size());
    for (std::size_t i = 0; i < peers.size(); ++i) {
        if (peers[i].state != PeerState::kUp) {
            // Down again before its offer went: it misses those shards still.
            missed_[i].add_all(to_offer_[i]);
            missed_[i].add_all(owned);
            to_offer_[i] = wire::ShardSet();
        } else if (!missed_[i].empty()) {
            to_offer_[i].add_all(missed_[i]);
            missed_[i] = wire::ShardSet();
        }
    }
}

const wire::ShardSet &CatchUp::offer_for(std::size_t peer) const {
    static const wire::ShardSet kNone;
    return peer < to_offer_.size() ? to_offer_[peer] : kNone;
}

void CatchUp::offer_sent(std::size_t peer) {
    to_offer_[peer] = wire::ShardSet();
}

bool CatchUp::offered(const std::vector<Membership::Peer> &peers, std::string_view peer_name,
                      const wire::ShardSet &shards) {
    resize(peers.size());
    for (std::size_t i = 0; i < peers.size(); ++i) {
        if (!peers[i].name.empty() && peers[i].name == peer_name) {
            offered_[i].add_all(shards);
            return true;
        }
    }
    return false;
}

std::map<std::string, wire::ShardSet> CatchUp::fills_due(const std::vector<Membership::Peer> &peers,
                                                         const wire::ShardSet &owned,
                                                         const wire::ShardSet &filling) {
    std::map<std::string, wire::ShardSet> due;
    for (std::size_t i = 0; i < offered_.size() && i < peers.size(); ++i) {
        if (offered_[i].empty() || peers[i].state != PeerState::kUp) {
            continue;
        }
        wire::ShardSet shards = offered_[i].common(owned);
        shards.remove_all(filling);
        offered_[i] = wire::ShardSet();
        if (!shards.empty()) {
            due[peers[i].name] = shards;
        }
    }
    return due;
}

}  // namespace rhythm::node
