// An operator's end of sessions (`rss_node end-session`): the session the command is given, how
// often a node takes such requests (EndSessionRate), and what a node does with one on its store,
// without sockets: each session ended is replaced by a tombstone in the term above the one held,
// so that whatever version a web server may still save of it is older and refused, and the
// shard's next owners get the tombstone in their snapshots. The node then tells the web servers
// (node_server.cpp).
#pragma once

#include <cstdint>
#include <string_view>

#include "rss_node/session_store.h"
#include "wire/messages.h"

namespace rhythm::node {

// The session the command names: its ID, or a signed cookie's value (ID.TAG, which names the
// same session). False when it is neither.
bool parse_end_session_target(std::string_view text, wire::EndSession *request);

struct EndedSessions {
    wire::EndSessionOutcome outcome = wire::EndSessionOutcome::kNotOwner;
    std::uint64_t count = 0;    // tombstones stored
    std::uint64_t version = 0;  // kOne, ended: the tombstone's version
};

// How many end-session requests a node takes: kOnePerSecond of one session (a script that logs
// out a list of users), and one of every session each kAllIntervalMs (each walks the whole store
// on the node's loop). Past that a request is answered busy: anyone who can reach the queries
// socket could otherwise keep the loop walking the store, or fill it with tombstones.
class EndSessionRate {
  public:
    static constexpr std::uint64_t kOnePerSecond = 1000;
    static constexpr std::uint64_t kAllIntervalMs = 10000;

    bool admit(wire::EndScope scope, std::uint64_t now_mono_ms);

  private:
    std::uint64_t second_start_ms_ = 0;
    std::uint64_t ones_this_second_ = 0;
    std::uint64_t last_all_ms_ = 0;
    bool all_seen_ = false;
};

// A session this node owns but does not hold (its first change may be on its way) gets a
// tombstone too, kept `unheld_lifetime_ms`: as long as a session may live here.
EndedSessions end_sessions(const wire::EndSession &request, const wire::ShardSet &owned,
                           std::uint64_t now_wall_ms, std::uint64_t unheld_lifetime_ms,
                           SessionStore *store);

}  // namespace rhythm::node
