// The session segment: every session this web server holds, in one shared-memory region that all
// worker processes map. It contains a header, a hash index of session entries kept in LRU order,
// the chunk arena with the data, and a table of lock waiters. Only indices are stored, never
// pointers, so the segment stays valid when httpd unloads and reloads the module at a restart.
//
// Each session has a FIFO lock that a request holds from load to save: requests for one session
// queue in arrival order, each waiting at most its timeout, and a lock whose holder process died
// is reclaimed by the next waiter. The index itself is guarded by one robust mutex held only for
// short, bounded sections; data is copied out without it because a locked session's chunks are
// never touched by anyone else.
//
// Times given here are the wall clock in Unix microseconds, plain integers (`now_wall_us`,
// `expiry_us`): a request passes its r->request_time, so the request path reads no clock for
// them. The signs of life of the server's processes are the monotonic clock's (common/clock.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "chunk_arena.h"
#include "counters.h"
#include "log_gate.h"
#include "session_id.h"
#include "shm_sync.h"

namespace rhythm {

struct CacheStats {
    std::uint64_t sessions = 0;
    std::uint64_t max_sessions = 0;
    std::uint64_t payload_bytes = 0;     // session data stored
    std::uint64_t arena_bytes_used = 0;  // chunks in use, whole
    std::uint64_t arena_bytes = 0;       // all chunks
    std::uint64_t segment_bytes = 0;
    RHYTHM_CACHE_COUNTERS(RHYTHM_COUNTER_FIELD_ZERO)
};

// No sign of life from any process of the server for this long (the backup agent turns every
// 16 ms at most, the parent's watch every second, and each request counts) means the server
// itself was stopped: its copies may have been taken over elsewhere meanwhile. So does an agent
// that could not reach the bank for this long.
constexpr std::int64_t kStallUs = 1'500'000;

namespace detail {
struct SegmentHeader;
class Segment;
}  // namespace detail

class SessionCache {
  public:
    // A held session lock. Valid until passed to one of the *_and_release calls.
    struct Handle {
        std::uint32_t entry = kNoIndex;
        std::uint32_t generation = 0;
        bool held() const { return entry != kNoIndex; }
    };

    // What acquire() copies out.
    struct Loaded {
        char *data = nullptr;  // NUL-terminated copy, from the caller's allocator
        std::size_t size = 0;
        std::uint64_t version = 0;
        std::int64_t expiry_us = 0;  // wall clock
        // The server stalled since this copy was last known current: check it against the bank
        // (begin_check / finish_check) before serving it.
        bool unchecked = false;
        // This call found that the server had stalled, for this long (0: it had not).
        std::int64_t stalled_us = 0;
    };

    enum class Acquire {
        kLocked,    // the lock is held and the data copied out
        kNotFound,  // no such session (or it expired, or was deleted while waiting)
        kDeleted,   // deleted here; the bank has not acknowledged the deletion yet
        kTimedOut,  // waited `timeout_ms` behind other requests
        kNoWaiter,  // too many requests waiting at once (all waiter slots in use)
    };
    enum class Save {
        kSaved,
        kNoSpace,    // could not make room even by evicting; the old version is intact
        kDuplicate,  // insert(): the ID exists already
        // Room only by evicting sessions the bank does not hold, which set_evict_unbacked(false)
        // forbids: nothing is evicted, the old version is intact (RS0106).
        kUnbackedOnly,
    };

    // The error-log lines due about sessions the bank does not hold, at most one of each kind
    // per kLogIntervalUs across every process: saves refused with kUnbackedOnly (RS0106) and
    // such sessions evicted (RS0107). A count of 0: nothing to write now.
    struct UnbackedLog {
        LogLine refused;
        LogLine evicted;
    };

    using Allocator = void *(*)(void *context, std::size_t bytes);

    // The smallest segment that holds the fixed tables and a few sessions.
    static std::size_t min_segment_bytes(std::uint32_t waiter_slots);

    // Lays out a new, empty cache in `base`. False (with the reason) if the space is too small
    // or the mutex cannot be made.
    static bool format(void *base, std::size_t bytes, std::uint32_t waiter_slots, std::string *why);

    // Attaches to a segment formatted by this layout version. False (with the reason) for a
    // segment of another layout or size.
    static bool attach(void *base, std::size_t bytes, SessionCache *cache, std::string *why);

    SessionCache() = default;

    // Finds the session and takes its lock, queueing behind earlier requests for at most
    // `timeout_ms`. `owner` is the calling process (current_process()), so that others can
    // reclaim the lock if it dies. On kLocked, `loaded` holds a copy made with `allocate` (size + 1
    // bytes).
    Acquire acquire(const SessionId &id, const ProcessIdentity &owner, std::int64_t now_wall_us,
                    std::uint64_t timeout_ms, Handle *handle, Allocator allocate, void *context,
                    Loaded *loaded);

    // Replaces the locked session's data, bumps its version and releases the lock, whatever
    // the outcome. `expiry_us` 0 means no expiry. With backup on, the change joins the list of
    // changes to publish (as of `now_wall_us`). When the cache is full, sessions the bank holds are
    // evicted first. `log`, when given, receives the RS0106/RS0107 lines due at `now_wall_us`.
    Save save_and_release(Handle *handle, const void *data, std::size_t size,
                          std::int64_t expiry_us, std::int64_t now_wall_us, std::uint64_t *version,
                          UnbackedLog *log = nullptr);

    // Deletes the locked session and releases the lock. With backup on, a tombstone stays until
    // the bank acknowledges the deletion.
    void erase_and_release(Handle *handle, std::int64_t now_wall_us);

    // Moves the locked session to `new_id` with this data (a new session there, version 1) and
    // deletes it under its old ID as erase_and_release() does: the ID is renewed at a login. On
    // kDuplicate (`new_id` is taken) nothing changed and the lock is still held: draw another ID
    // and call again. Otherwise the lock is released; on kNoSpace or kUnbackedOnly the session
    // stays as it was under its old ID.
    Save renew_and_release(Handle *handle, const SessionId &new_id, const void *data,
                           std::size_t size, std::int64_t expiry_us, std::int64_t now_wall_us,
                           UnbackedLog *log = nullptr);

    // Releases the lock without changing the session.
    void release(Handle *handle);

    // Around the backup agent's check of an unchecked session, with its lock held: the agent
    // may replace the data (or delete the session) meanwhile. finish_check marks it checked
    // (whatever the agent answered, or if it never did) and copies it out again: kLocked, or
    // kNotFound / kDeleted with the lock released when it is gone.
    void begin_check(const Handle &handle);
    Acquire finish_check(Handle *handle, Allocator allocate, void *context, Loaded *loaded);
    // The check could not be made (no answer in time): releases the lock and leaves the session
    // unchecked, for the next request to try again.
    void abandon_check(Handle *handle);

    // Stores a new session under a fresh ID (not locked afterwards). Room is made as for
    // save_and_release().
    Save insert(const SessionId &id, const void *data, std::size_t size, std::int64_t expiry_us,
                std::int64_t now_wall_us, std::uint64_t *version, UnbackedLog *log = nullptr);

    // Whether saves and deletions are recorded for the backup agent. Set at each start from the
    // configuration; the segment outlives it. A change files every session again as held by
    // the bank or not (O(sessions), once).
    void set_backup_enabled(bool enabled);

    // Whether a full cache may evict sessions the bank does not hold (they are lost), or refuses
    // the save instead (kUnbackedOnly, the default). Set at each start from the configuration.
    void set_evict_unbacked(bool evict);

    // The RS0106/RS0107 lines due at `now_wall_us`: the httpd parent asks every 10 s, so that what
    // happened after the last line is logged even if nothing follows.
    void take_unbacked_log(std::int64_t now_wall_us, UnbackedLog *log);

    // Reclaims up to `budget` entries' worth of expired, unlocked sessions; returns how many.
    std::size_t sweep_expired(std::int64_t now_wall_us, std::uint32_t budget);

    // Counts a save refused by the caller because it was larger than the configured limit.
    void count_oversized();
    // Counts a session ID refused because no key here signed it (RhythmSessionKeyFile).
    void count_id_refused();

    CacheStats stats();

    // The segment's own interface (segment.h), for the core's other view of it, BackupFeed.
    detail::Segment segment() const;

  private:
    explicit SessionCache(void *base);

    detail::SegmentHeader *header_ = nullptr;
    unsigned char *base_ = nullptr;
};

}  // namespace rhythm
