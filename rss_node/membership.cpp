// Peer liveness from pings and pongs.
#include "rss_node/membership.h"

#include <algorithm>

namespace rhythm::node {

const char *peer_state_name(PeerState state) {
    switch (state) {
        case PeerState::kUp:
            return "up";
        case PeerState::kDown:
            return "down";
        case PeerState::kUnknown:
            break;
    }
    return "unknown";
}

Membership::Membership(std::string self, const std::vector<std::string> &peer_endpoints,
                       std::uint64_t now_mono_ms)
    : self_(std::move(self)), started_mono_ms_(now_mono_ms) {
    for (const auto &endpoint : peer_endpoints) {
        Peer p;
        p.endpoint = endpoint;
        peers_.push_back(std::move(p));
    }
}

bool Membership::on_pong(std::size_t index, std::string_view name, std::uint64_t now_mono_ms) {
    Peer &p = peers_[index];
    bool changed = p.state != PeerState::kUp || p.name != name;
    p.state = PeerState::kUp;
    p.name.assign(name.data(), name.size());
    p.last_pong_ms = now_mono_ms;
    return changed;
}

void Membership::on_heard(std::size_t index, std::uint64_t now_mono_ms) {
    Peer &p = peers_[index];
    if (p.state == PeerState::kUp) {
        p.last_pong_ms = std::max(p.last_pong_ms, now_mono_ms);
    }
}

std::vector<std::size_t> Membership::expire(std::uint64_t now_mono_ms) {
    std::vector<std::size_t> gone;
    for (std::size_t i = 0; i < peers_.size(); ++i) {
        Peer &p = peers_[i];
        if (p.state == PeerState::kUp && now_mono_ms - p.last_pong_ms > kDeadAfterMs) {
            p.state = PeerState::kDown;
            gone.push_back(i);
        }
    }
    return gone;
}

void Membership::excuse_stall(std::uint64_t gap_ms) {
    for (auto &p : peers_) {
        p.last_pong_ms += gap_ms;
    }
    started_mono_ms_ += gap_ms;
}

bool Membership::settled(std::uint64_t now_mono_ms) const {
    return now_mono_ms - started_mono_ms_ >= kStartupGraceMs ||
           std::all_of(peers_.begin(), peers_.end(),
                       [](const Peer &p) { return p.state != PeerState::kUnknown; });
}

bool Membership::cut_off() const {
    return !peers_.empty() && std::none_of(peers_.begin(), peers_.end(),
                                           [](const Peer &p) { return p.state == PeerState::kUp; });
}

std::vector<std::string> Membership::live_members() const {
    std::vector<std::string> members{self_};
    for (const auto &p : peers_) {
        if (p.state == PeerState::kUp) {
            members.push_back(p.name);
        }
    }
    std::sort(members.begin(), members.end());
    members.erase(std::unique(members.begin(), members.end()), members.end());
    return members;
}

}  // namespace rhythm::node
