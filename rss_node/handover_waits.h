// The fetches a node holds back while it asks a session's origin for its own copy (wire::Handover).
//
// Write-behind leaves a window, tens of milliseconds, in which the server that made a change has
// it and the bank does not. A request misrouted to another server in that window would take the
// session over from the bank's older copy and roll the user back. So when a web server's agent
// fetches a session whose newest version here was made by another server whose agent is in
// touch, the node first asks that agent for its copy, and answers the fetch once the agent has
// answered (the node stores a newer copy first). Where another server took the session over at
// that version since, both may hold newer copies (the taker, and the maker that was not told of
// the take-over in time): both are asked, and the fetch waits for both answers. When the wait
// (--handover-wait, 150 ms by default) passes first, the fetches are left unanswered: the web
// server answers 503 and asks again (node_server.cpp, handover_unanswered). The wait stays under
// the fetch's own time-out (SessionBackupTimeout, 200 ms by default), with room for the answer's
// way back; it was 100 ms, and a server slow to answer (its agent runs below httpd's priority, on
// CPUs an ASan build saturated) made take-overs 503 whose requester would have waited 100 ms more.
// A server that is gone has no connection left to ask, and one silent for 1.5 s is taken for hung:
// the node answers at once.
//
// A peer cannot make the node hold much: at most kMaxWaits sessions wait at once, and
// kMaxFetchesPerWait fetches on each; past either the fetch is answered at once. Socket-free:
// the node's loop sends and answers (node_server.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "wire/messages.h"

namespace rhythm::node {

class HandoverWaits {
  public:
    static constexpr std::uint64_t kDefaultWaitMs = 150;
    static constexpr std::size_t kMaxWaits = 1024;
    static constexpr std::size_t kMaxFetchesPerWait = 16;
    static constexpr std::size_t kMaxAskedPerWait = 3;  // the servers that last took it, its maker

    // A fetch to answer later: who asked, and its request id.
    struct HeldFetch {
        std::string routing_id;
        std::uint64_t request_id = 0;
    };

    // Everything waiting on one handover, handed back when it ends.
    struct Wait {
        wire::SessionKey key;
        // The agents asked that have not answered (at most kMaxAskedPerWait).
        std::vector<std::string> unanswered;
        std::uint64_t handover_id = 0;  // the request id of the Handover sent to each
        std::uint64_t deadline_ms = 0;
        std::vector<HeldFetch> fetches;
    };

    enum class Held {
        kAsk,     // a new wait: send a Handover with *handover_id to each agent to ask
        kJoined,  // that session's servers are being asked already: the fetch waits with the others
        kFull,    // too many waits: answer the fetch now
    };

    enum class Answer {
        kNotAsked,  // no wait asked that agent with that id (late, or never asked)
        kMore,      // another agent asked has yet to answer: the fetches wait on
        kEnded,     // the last answer: the wait is handed back, its fetches to answer now
    };

    explicit HandoverWaits(std::uint64_t wait_ms = kDefaultWaitMs) : wait_ms_(wait_ms) {}

    // Holds `fetch` of `key` until every agent at `to_ask` (1 to kMaxAskedPerWait routing ids)
    // has answered.
    Held hold(const wire::SessionKey &key, const std::vector<std::string> &to_ask, HeldFetch fetch,
              std::uint64_t now_ms, std::uint64_t *handover_id);

    // The agent at `routing_id` answered handover `handover_id` (or could not be sent it): the
    // session it was about in `*key`, and the wait in `*ended` when that was the last answer.
    Answer answered(const std::string &routing_id, std::uint64_t handover_id, wire::SessionKey *key,
                    Wait *ended);

    // Moves the waits whose deadline has passed to `*expired`, each with the agents that did not
    // answer. The last kMaxWaits of them are remembered for answered_late().
    void expire(std::uint64_t now_ms, std::vector<Wait> *expired);

    // The agent at `routing_id` answered handover `handover_id` after its deadline: the session
    // it was about, or false when none matches.
    bool answered_late(const std::string &routing_id, std::uint64_t handover_id,
                       wire::SessionKey *key);

    std::size_t size() const { return waits_.size(); }
    // The earliest deadline, 0 when nothing waits.
    std::uint64_t next_deadline_ms() const;

  private:
    struct KeyLess {
        bool operator()(const wire::SessionKey &a, const wire::SessionKey &b) const {
            return a.bytes < b.bytes;
        }
    };
    struct Expired {
        wire::SessionKey key;
        std::vector<std::string> unanswered;
    };
    std::uint64_t wait_ms_;
    std::map<wire::SessionKey, Wait, KeyLess> waits_;
    std::map<std::uint64_t, Expired> expired_;  // by handover id: the oldest first
    std::uint64_t next_handover_id_ = 1;
};

}  // namespace rhythm::node
