// What became of the handovers a node asked lately, by session: whether the node needs to ask the
// server again before it answers another fetch (handover_waits.h).
//
// A handover left unanswered leaves the fetch unanswered too (a 503 for the web server that
// asked: the server asked may hold a newer copy). Two things bound that:
//   - a server that answered a handover gave the session up (it checks with the bank before it
//     serves it again): while the node holds the version it held after that answer, no fetch
//     needs to ask that server again. Without this a server whose link is slower than
//     --handover-wait would be asked on every fetch and never in time: a 503 without end.
//   - a server that has not answered a handover of one version for kGiveUpMs counts as hung for
//     that session, as one silent that long does for all (node_server.cpp): the fetch is
//     answered from what the node holds.
// A fetch by the server itself may mean it takes the session back: what it answered is forgotten.
// What one agent of a server answered, or left unanswered, holds for that agent only: the
// server's next agent (a graceful restart) may have checked the session with other nodes only,
// its connections to this one not made yet, and served it on (the fault campaign, s106-97: 18
// changes rolled back). Two servers may be asked about one session (handover_waits.h): each
// one's outcome is kept.
//
// Bounded: at most kMaxEntries sessions, each kept kKeepMs. Socket-free, the time passed in.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rss_node/recent_by_key.h"
#include "wire/messages.h"

namespace rhythm::node {

class HandoverOutcomes {
  public:
    static constexpr std::size_t kMaxEntries = 16384;
    static constexpr std::uint64_t kKeepMs = 10000;
    // As long as a server may be silent before the node takes it for hung (kHandoverReachableMs).
    static constexpr std::uint64_t kGiveUpMs = 1500;

    enum class Verdict {
        kAsk,       // ask the server for its copy
        kAnswered,  // it answered at this version and gave the session up: answer from here
        kGiveUp,    // it has not answered at this version for kGiveUpMs: answer from here
    };

    // A server's agent asked for a handover: its server's name and its connection's routing id.
    struct Asked {
        std::string_view server;
        std::string_view agent;
    };

    // `asked` answered a handover of `key`; the node holds `version` of it after the answer.
    void answered(const wire::SessionKey &key, Asked asked, std::uint64_t version,
                  std::uint64_t now_ms);
    // A handover of `key` to `asked`, the node holding `version`, was not answered in time.
    void unanswered(const wire::SessionKey &key, Asked asked, std::uint64_t version,
                    std::uint64_t now_ms);
    // `server` fetched `key` itself.
    void fetched_by(const wire::SessionKey &key, std::string_view server, std::uint64_t now_ms);

    Verdict verdict(const wire::SessionKey &key, Asked asked, std::uint64_t version,
                    std::uint64_t now_ms) const;

    std::size_t size() const { return outcomes_.size(); }

  private:
    struct Outcome {
        std::string server;  // empty: a free slot
        std::string agent;   // the routing id of the agent asked
        std::uint64_t version = 0;
        bool answered = false;       // else unanswered since since_ms
        std::uint64_t since_ms = 0;  // when it was noted
    };
    using Outcomes = std::array<Outcome, 2>;  // by server asked
    static const Outcome *of(const Outcomes &outcomes, std::string_view server);
    void record(const wire::SessionKey &key, Asked asked, std::uint64_t version, bool answered,
                std::uint64_t now_ms);

    RecentByKey<Outcomes, kMaxEntries, kKeepMs> outcomes_;
};

}  // namespace rhythm::node
