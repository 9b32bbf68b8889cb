// The sessions web servers' agents fetched lately, and at which version: a server that took a
// session over may have changed it since, before the bank has that change (write-behind). A
// fetch by another server of the same session while the node still holds that version asks the
// server that took it over for its copy first (handover_waits.h), as it asks the server that
// made the newest version: so a user sent back to the first server just after a take-over does
// not get its copy from before (the fault campaign, seed 55: count 491 after 491, the second
// server's change still on its way after a cut of that server healed).
//
// Bounded: at most kMaxEntries sessions, each kept kKeepMs; past either the oldest go (a fetch
// then asks only the server that made the version, as before). Socket-free, with the time passed
// in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rss_node/recent_by_key.h"
#include "wire/messages.h"

namespace rhythm::node {

class RecentTakeovers {
  public:
    static constexpr std::size_t kMaxEntries = 16384;
    // Longer than a change takes to reach the bank even with a connection coming back after a
    // cut heals (TCP's back-off): seconds.
    static constexpr std::uint64_t kKeepMs = 10000;

    // The agent of web server `server_name` was answered `version` of `key`.
    void note(const wire::SessionKey &key, std::string_view server_name, std::uint64_t version,
              std::uint64_t now_mono_ms);

    // The server that was last answered `key` at `version`, within kKeepMs; empty when none.
    std::string_view taker(const wire::SessionKey &key, std::uint64_t version,
                           std::uint64_t now_mono_ms) const;

    std::size_t size() const { return taken_.size(); }

  private:
    struct Taken {
        std::string server_name;
        std::uint64_t version = 0;
    };
    RecentByKey<Taken, kMaxEntries, kKeepMs> taken_;
};

}  // namespace rhythm::node
