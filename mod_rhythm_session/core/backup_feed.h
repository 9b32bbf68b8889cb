// The backup agent's view of the session segment: the changes waiting to be published to the
// bank (the dirty list, oldest first), what the bank acknowledged, and the backup figures that
// server-status shows. Shared memory is the source of truth: the dirty list and each session's
// acknowledged version survive the agent, so an agent that (re)starts finds every change the
// bank has not acknowledged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "node_report.h"
#include "session_cache.h"
#include "session_id.h"

namespace rhythm {

// One change to publish: the current version of a session, or its tombstone.
struct ChangeRecord {
    SessionId id;
    std::uint64_t version = 0;
    std::int64_t expiry_us = 0;  // wall clock
    bool tombstone = false;
    std::int64_t saved_at_us = 0;  // wall clock of the first unpublished save of it
    std::string data;
};

struct BackupStats {
    bool enabled = false;
    std::int32_t agent_pid = 0;
    MonotonicTime agent_turn;             // the agent's last loop turn (0: none)
    std::uint64_t pending = 0;            // changes not yet published
    std::uint64_t unbacked_sessions = 0;  // sessions and deletions the bank does not hold yet
    std::uint32_t nodes_total = 0;
    std::uint32_t nodes_up = 0;
    std::uint64_t lag_samples = 0;  // acknowledgements in the last 10 to 20 seconds
    std::uint64_t lag_p50_us = 0;
    std::uint64_t lag_p99_us = 0;
    WallTime oldest_unacknowledged;        // save time of the oldest change not acknowledged
    std::vector<NodeReport> node_reports;  // one per node (at most kReportedNodes)
    RHYTHM_BACKUP_COUNTERS(RHYTHM_COUNTER_FIELD_ZERO)
};

class BackupFeed {
  public:
    explicit BackupFeed(SessionCache &cache) : cache_(cache) {}

    // Called once by each new agent: its identity in the bank (made at the first start and kept
    // in the segment) and a new, higher epoch.
    void start_agent(std::int32_t pid, std::uint8_t agent_id[16], std::uint64_t *epoch);

    // Takes up to `max_records` changes (and about `max_bytes` of data) off the dirty list,
    // oldest first, skipping sessions that requests hold or wait for: a session is published once
    // the last of its queued requests has saved. They count as in flight (see
    // set_oldest_in_flight) and as published from then on: the agent publishes every change it
    // takes in the same turn.
    void take_changes(std::vector<ChangeRecord> *out, std::size_t max_records,
                      std::size_t max_bytes);

    // The bank holds `version` of `id`; `saved_at` says when that change was made.
    struct Acknowledgement {
        SessionId id;
        std::uint64_t version = 0;
        WallTime saved_at;
    };
    // Records `count` acknowledgements under one hold of the segment mutex: keep batches short
    // (requests wait for that mutex). The lag of each is measured from its save to `now`.
    void acknowledge(const Acknowledgement *acks, std::size_t count, WallTime now);

    // Puts back on the dirty list, scanning up to `budget` entries from `*cursor`, every session
    // not acknowledged by the bank that this agent has not taken to publish (an agent before it
    // had, and its window is lost), or every session `wanted` selects (when given). Returns true
    // once the scan has come round the whole segment. A session not changed since it was
    // published is put back as changed at `now`.
    using Selector = bool (*)(void *context, const SessionId &id);
    bool requeue_scan(std::uint32_t *cursor, std::uint32_t *scanned, std::uint32_t budget,
                      Selector wanted, void *context, WallTime now);

    // The bank holds `version` of this session made by another server (or an operator's end of
    // it), and it wins over this server's copy (a higher version, or the same one from a server
    // that wins the tie): drops the copy unless it is newer still. A copy a request holds, or one
    // of that very version fetched from the bank and not changed here since, is checked against
    // the bank before it is served again instead. True if it was dropped.
    bool drop_if_older(const SessionId &id, std::uint64_t version);

    // Another server is taking this session over, and the bank holds `version` of it, made here
    // (wire::Handover): this copy is to be checked against the bank before it is served again,
    // and when it is newer than `version` (a change the bank has not received yet, a live
    // session or a deletion), it is copied to `*newer` for the bank and true is returned.
    bool hand_over(const SessionId &id, std::uint64_t version, ChangeRecord *newer);

    // A copy fetched from the bank for a request that gave up before it heard: checked against
    // the bank before it is served.
    void check_before_serving(const SessionId &id);

    // This server's copy was handed over (hand_over) or fetched from the bank, and not changed
    // here since: another server may be continuing the session.
    bool handed_over_or_fetched(const SessionId &id);
    // When the whole server was last found to have stalled (0: never).
    MonotonicTime last_stall();

    // Stores a session fetched from the bank, at the bank's version, as acknowledged. kNoSpace
    // also when room could only be made by evicting sessions the bank does not hold (and
    // SessionBackupEvictUnbacked is Off): counted with the refused saves.
    SessionCache::Save insert_fetched(const SessionId &id, const void *data, std::size_t size,
                                      std::int64_t expiry_us, std::uint64_t version);

    // The bank's best copy of a session that a request holds and has asked to be checked after
    // the server stalled (SessionCache::begin_check). A newer one replaces this server's copy
    // (which then continues it in a new term, as after a failover); a newer deletion, or a newer
    // copy there is no room for, removes it. Changes nothing unless that request still waits.
    struct BankCopy {
        bool found = false;  // false: the bank has nothing (this copy stays)
        bool deleted = false;
        std::uint64_t version = 0;
        std::string_view data;
        std::int64_t expiry_us = 0;
        bool too_large = false;  // larger than RhythmSessionMaxSize here: cannot be kept
    };
    enum class Reconciled { kCurrent, kReplaced, kDeleted, kTooLarge, kNoSpace, kNotWaiting };
    Reconciled reconcile(const SessionId &id, const BankCopy &bank);

    // A sign of life from the agent's loop at `now` (MonotonicTime::coarse_now): what the httpd
    // parent and server-status read as its progress. Returns the gap in microseconds, when it
    // shows the whole server had stalled (see SessionCache::Loaded::stalled_us).
    std::int64_t agent_turn(MonotonicTime now);
    // The agent's last turn (0: none yet). Read without the mutex.
    MonotonicTime last_agent_turn() const;
    // A sign of life from the httpd parent's watch over the agent; as agent_turn.
    std::int64_t parent_alive(MonotonicTime now);
    // The agent could not reach any node for longer than a stall: as after a stall, every
    // session is to be checked against the bank before it is served again.
    void cut_off_from_bank();
    // A node the agent had counted down answers again: it may have let another server take this
    // server's sessions over without asking it. Every session is checked against the bank before
    // it is served again.
    void node_back();
    // The httpd parent is about to fork an agent. Where another served this segment before (httpd
    // restarted, or the agent died or hung), a take-over the bank told nobody of in between would
    // let a copy here be served stale: every session is checked against the bank before it is
    // served again. Returns whether an agent served it before.
    bool agent_replaced();
    // The httpd parent stops the agent: at a restart (`restart`: the segment stays for the next
    // agent) or at the end of the server. The agent reads it once told to stop (stop_drain.h).
    void agent_stopped_by_parent(bool restart);
    bool stop_is_restart();
    // Sessions and deletions the bank does not hold yet: changed and not acknowledged.
    std::uint64_t unacknowledged();
    // An operator ended every session in the bank (rss_node end-session --all): each session
    // held here is checked against the bank before it is served again.
    void all_sessions_ended();

    // Figures only the agent knows.
    // Changes a node did not store for lack of memory (each refusal by each node).
    void count_refused(std::uint64_t n);
    enum class FetchCount { kFound, kMissing, kTimedOut, kShed, kTooLarge, kNoSpace };
    void count_fetch(FetchCount what);

    // A worker's place among the failover fetches that wait for the agent (fetch_slots.h):
    // taken until `until` (its deadline), or -1 when kFetchSlots wait already.
    int take_fetch_slot(MonotonicTime now, MonotonicTime until);
    void give_back_fetch_slot(int slot);
    // A session checked against the bank after a stall; `replaced` when the bank's was newer.
    void count_check(bool replaced);
    void set_nodes(std::uint32_t total, std::uint32_t up);
    // The agent's view of each node (at most kReportedNodes are kept).
    void set_node_reports(const NodeReport *reports, std::size_t count);
    // The save time of the oldest change published but not acknowledged (0: none); combined
    // with the oldest change still waiting on the dirty list.
    void set_oldest_in_flight(WallTime saved_at);
    // Starts a new lag window; the previous one is kept for reading.
    void rotate_lag_window();

    BackupStats stats();

  private:
    detail::SegmentHeader &header() const;
    std::int64_t note_alive(MonotonicTime now);

    SessionCache &cache_;
};

}  // namespace rhythm
