// The sessions agents fetched lately (see recent_takeovers.h).
#include "rss_node/recent_takeovers.h"

namespace rhythm::node {

void RecentTakeovers::note(const wire::SessionKey &key, std::string_view server_name,
                           std::uint64_t version, std::uint64_t now_mono_ms) {
    forget_old(now_mono_ms);
    Taken &taken = by_key_[key];
    taken.server_name.assign(server_name.data(), server_name.size());
    taken.version = version;
    taken.at_ms = now_mono_ms;
    taken.note = ++notes_;
    order_.push_back({key, taken.note, now_mono_ms});
    while (by_key_.size() > kMaxEntries || order_.size() > 2 * kMaxEntries) {
        forget_oldest();
    }
}

std::string_view RecentTakeovers::taker(const wire::SessionKey &key, std::uint64_t version,
                                        std::uint64_t now_mono_ms) const {
    auto it = by_key_.find(key);
    if (it == by_key_.end() || it->second.version != version ||
        now_mono_ms - it->second.at_ms > kKeepMs) {
        return {};
    }
    return it->second.server_name;
}

void RecentTakeovers::forget_old(std::uint64_t now_mono_ms) {
    while (!order_.empty() && now_mono_ms - order_.front().at_ms > kKeepMs) {
        forget_oldest();
    }
}

void RecentTakeovers::forget_oldest() {
    auto it = by_key_.find(order_.front().key);
    if (it != by_key_.end() && it->second.note == order_.front().note) {
        by_key_.erase(it);
    }
    order_.pop_front();
}

}  // namespace rhythm::node
