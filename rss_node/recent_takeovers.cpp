// The sessions agents fetched lately (see recent_takeovers.h).
#include "rss_node/recent_takeovers.h"

namespace rhythm::node {

void RecentTakeovers::note(const wire::SessionKey &key, std::string_view server_name,
                           std::uint64_t version, std::uint64_t now_mono_ms) {
    Taken &taken = taken_.note(key, now_mono_ms);
    taken.server_name.assign(server_name.data(), server_name.size());
    taken.version = version;
}

std::string_view RecentTakeovers::taker(const wire::SessionKey &key, std::uint64_t version,
                                        std::uint64_t now_mono_ms) const {
    const auto *taken = taken_.find(key, now_mono_ms);
    if (taken == nullptr || taken->value.version != version) {
        return {};
    }
    return taken->value.server_name;
}

}  // namespace rhythm::node
