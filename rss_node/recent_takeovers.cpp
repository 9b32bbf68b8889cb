// The sessions agents fetched lately (see recent_takeovers.h).
#include "rss_node/recent_takeovers.h"

#include <algorithm>

namespace rhythm::node {

void RecentTakeovers::note(const wire::SessionKey &key, std::string_view server_name,
                           std::uint64_t version, std::uint64_t now_mono_ms) {
    Taken &taken = taken_.note(key, now_mono_ms);
    if (taken.version != version) {
        taken.server_names = {};
        taken.version = version;
    }
    auto &names = taken.server_names;
    auto same = std::find(names.begin(), names.end(), server_name);
    if (same == names.end()) {
        same = names.end() - 1;  // the oldest makes room
    }
    std::rotate(names.begin(), same, same + 1);  // to the front, those before it after it
    names.front().assign(server_name.data(), server_name.size());
}

RecentTakeovers::Takers RecentTakeovers::takers(const wire::SessionKey &key, std::uint64_t version,
                                                std::uint64_t now_mono_ms) const {
    Takers out;
    const auto *taken = taken_.find(key, now_mono_ms);
    if (taken != nullptr && taken->value.version == version) {
        for (std::size_t i = 0; i < kTakers; ++i) {
            out[i] = taken->value.server_names[i];
        }
    }
    return out;
}

}  // namespace rhythm::node
