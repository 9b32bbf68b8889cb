// The sessions web servers' agents fetched lately, and at which version: a server that took a
// session over may have changed it since, before the bank has that change (write-behind). A
// fetch by another server of the same session while the node still holds that version asks the
// server that took it over for its copy first (handover_waits.h), as it asks the server that
// made the newest version: so a user sent back to the first server just after a take-over does
// not get its copy from before (the fault campaign, seed 55: count 491 after 491, the second
// server's change still on its way after a cut of that server healed).
//
// The last kTakers servers answered the same version are kept, not the last alone: two servers
// may fetch a version within a millisecond, and the one that took the session over is not
// always the last (the fault campaign, s109-80all-b: web-1 took a session over, web-2's fetch of
// it came right after and ended in a 503; the node remembered web-2 only, asked it alone when
// web-3 checked its copy, and vouched for it: web-3 served on beside web-1's change).
//
// Bounded: at most kMaxEntries sessions, each kept kKeepMs; past either the oldest go (a fetch
// then asks only the server that made the version, as before). Socket-free, with the time passed
// in.
#pragma once

#include <array>
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
    static constexpr std::size_t kTakers = 2;
    using Takers = std::array<std::string_view, kTakers>;  // the latest first; empty where fewer

    // The agent of web server `server_name` was answered `version` of `key`.
    void note(const wire::SessionKey &key, std::string_view server_name, std::uint64_t version,
              std::uint64_t now_mono_ms);

    // The last servers answered `key` at `version`, within kKeepMs.
    Takers takers(const wire::SessionKey &key, std::uint64_t version,
                  std::uint64_t now_mono_ms) const;

    std::size_t size() const { return taken_.size(); }

  private:
    struct Taken {
        std::array<std::string, kTakers> server_names;  // the latest first
        std::uint64_t version = 0;
    };
    RecentByKey<Taken, kMaxEntries, kKeepMs> taken_;
};

}  // namespace rhythm::node
