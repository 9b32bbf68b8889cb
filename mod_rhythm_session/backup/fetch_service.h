// The backup agent's side of the fetch channel (fetch_channel.h): the workers' requests for a
// session this server does not hold (a failover), or for a check of a copy it holds after it
// stalled, asked of the bank and answered from what the bank says.
//
// A fetch asks the session's owners first (the nodes that are up and own its shard) and, if none
// has it, every other node that answers this agent's heartbeats. The best answer wins
// (wire::supersedes): it waits for every node it asked, until its deadline (SessionBackupTimeout),
// and takes no copy while one of them has not answered (a 503). A session found
// is stored in the segment before the worker hears of it; a check replaces the copy held if the
// bank's is newer. At most max_pending fetches wait at once: past that a fetch is answered at once
// as shed.
//
// With every node silent a take-over cannot ask anyone. For SessionBackupOutageGrace after the
// bank's last word it is answered at once as such (a 503: a node may answer again, a partition
// healing, packet loss, the nodes restarting); after that the bank counts as down and a new
// session starts, so that the site serves on without it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backup/agent_log.h"
#include "backup/fetch_channel.h"
#include "common/clock.h"
#include "core/backup_feed.h"
#include "wire/messages.h"

namespace rhythm {

class FetchService {
  public:
    // What a fetch needs of the agent's nodes: whom to ask, and a way to ask.
    class Bank {
      public:
        virtual ~Bank() = default;
        virtual std::size_t node_count() const = 0;
        virtual bool up(std::size_t node) const = 0;
        // It answered heartbeats once and no longer does (hung, or gone without a word), or has
        // not answered since the agent started as long as a node may be silent: it would hold a
        // fetch until its deadline.
        virtual bool silent(std::size_t node) const = 0;
        virtual bool owns(std::size_t node, std::uint32_t shard) const = 0;
        virtual bool send(std::size_t node, const wire::Frames &frames) = 0;
        // Its connection closed and no heartbeat sent since has been answered: a send may still
        // go into the closed connection.
        virtual bool reconnecting(std::size_t node) const = 0;
        // When a node last answered (the agent's start, when none has yet).
        virtual MonotonicTime last_answer() const = 0;
        // It answered once, is not up now, and answered within the last `within_ms`.
        virtual bool out_lately(std::size_t node, std::uint64_t within_ms) const = 0;
        // It has not answered this agent, which started less than `within_ms` ago: what it owns
        // is not known.
        virtual bool unheard_lately(std::size_t node, std::uint64_t within_ms) const = 0;
        // Its name in the bank, or its address until it has said its name.
        virtual std::string_view name(std::size_t node) const = 0;
    };

    struct Settings {
        int listener = -1;  // fetch_channel.h's listening socket; -1: fetches are off
        std::size_t max_pending = 32;
        std::uint64_t max_session_bytes = 64u << 10;  // RhythmSessionMaxSize
        // SessionBackupOutageGrace: for this long after the last node fell silent a take-over
        // is answered kBankSilent (a 503), and only then starts a new session.
        std::uint64_t outage_grace_ms = 30000;
    };

    // How long an owner that went out of reach is waited for, as it may hold a newer copy than
    // the other owners have seen: a cut or a loss is over, or the node's peers have given its
    // shards to others (3 s) and the server that made the copy has published them again, well
    // within it.
    static constexpr std::uint64_t kOwnerOutMs = 10000;

    FetchService(BackupFeed &feed, const Settings &settings, AgentLog log, Bank &bank);
    ~FetchService();
    FetchService(const FetchService &) = delete;
    FetchService &operator=(const FetchService &) = delete;

    int listener() const { return settings_.listener; }
    // Connections whose request has not arrived yet: the agent polls them.
    const std::vector<int> &waiting() const { return accepted_; }

    void accept_all();
    // A connection of waiting() is readable: its request has come (or it closed).
    void on_request(int fd, MonotonicTime now);
    // Node `node`'s answer to a fetch.
    void on_reply(std::size_t node, const wire::FetchReply &reply, MonotonicTime now);
    // A node answered a heartbeat: the fetches that found no node to ask (none reached yet, or
    // the sends failed while connections were made again) go to the bank now.
    void on_node_answer();
    // The connection to `node` closed: what was asked through it, or is until it is back, is
    // asked again once it is (on_node_answer).
    void on_connection_lost(std::size_t node);
    // This server answered a handover of `id` (BackupFeed::hand_over): a check of it already
    // sent to the bank is asked again, its answers possibly older than that handover. Call it
    // after the answer is sent: the new fetch must reach each node after it.
    void on_handed_over(const SessionId &id);
    // Answers the fetches whose deadline has passed with the best they have.
    void expire(MonotonicTime now);

  private:
    struct Pending;

    std::size_t ask_bank(Pending &fetch);
    bool every_node_silent() const;
    // Every node silent for SessionBackupOutageGrace: a take-over starts a new session.
    bool bank_down(MonotonicTime now) const;
    // The whole server stalled within SessionBackupOutageGrace.
    bool stalled_lately(MonotonicTime now);
    std::size_t ask(Pending &fetch);
    bool owner_out_lately(const Pending &fetch) const;
    bool node_unheard_lately(const Pending &fetch) const;
    void ask_again_if_lost(Pending &fetch);
    void finish(Pending &fetch, bool deadline_passed, MonotonicTime now);
    void finish_check(Pending &fetch, bool deadline_passed);
    void log_too_large(const Pending &fetch, MonotonicTime now);
    void log_decision(const Pending &fetch, FetchOutcome outcome) const;
    // Counts a take-over's outcome, then replies.
    // Both return whether the worker took the answer (it had not given up).
    bool answer(Pending &fetch, FetchOutcome outcome);
    bool reply(Pending &fetch, FetchOutcome outcome);

    BackupFeed &feed_;
    Settings settings_;
    AgentLog log_;
    Bank &bank_;
    std::vector<int> accepted_;
    std::map<std::uint64_t, std::unique_ptr<Pending>> pending_;  // by request id
    std::uint64_t next_request_id_ = 1;
    MonotonicTime too_large_logged_;        // the last RS0323 line (0: none yet)
    std::uint64_t too_large_unlogged_ = 0;  // ... and those held back since
};

}  // namespace rhythm
