// The layout of the session segment and the operations on its structures, shared by the two
// views of it: SessionCache (the request side: index, LRU, locks) and BackupFeed (the backup
// agent's side: the changes to publish and what the bank acknowledged). Internal to the core.
//
// One mapping, the same in every process (offsets only: the module is unloaded and loaded again
// at each restart, and the segment outlives it), each part 64-byte aligned:
//
//   +--------------------------------------------------------------------------------------+
//   | SegmentHeader: magic, layout version, sizes and offsets, the mutex, the arena's free  |
//   |   list, the two LRU lists, the counters, the dirty list, the backup's figures         |
//   +--------------------------------------------------------------------------------------+
//   | buckets: uint32 x bucket_mask + 1, the first entry of each hash chain                 |
//   +--------------------------------------------------------------------------------------+
//   | entries: Entry x entry_count (free ones chained by hash_next)                         |
//   +--------------------------------------------------------------------------------------+
//   | waiters: Waiter x waiter_count, one per request that can run at once                  |
//   +--------------------------------------------------------------------------------------+
//   | arena: uint32 chain link x chunk_count, then 128-byte chunks x chunk_count            |
//   +--------------------------------------------------------------------------------------+
//
// Every structure in it is trivially copyable and of a size fixed by kLayoutVersion (asserted
// below): a module of another layout refuses an older segment instead of misreading it. Its times
// are plain microseconds, each field saying its clock (common/clock.h): the wall clock for expiry
// and save times, the monotonic clock for the signs of life.
//
// Everything here runs under the segment mutex unless a comment says otherwise.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "chunk_arena.h"
#include "common/clock.h"
#include "counters.h"
#include "fetch_slots.h"
#include "log_gate.h"
#include "node_report.h"
#include "session_cache.h"
#include "session_id.h"
#include "shm_sync.h"
#include "wire/protocol.h"

namespace rhythm::detail {

constexpr char kMagic[8] = {'R', 'H', 'Y', 'T', 'H', 'M', 'S', 'C'};
// Bump whenever a structure below changes: an older segment is then refused, not misread.
constexpr std::uint32_t kLayoutVersion = 7;
// Chunks planned per entry: an average session of up to 512 bytes fills both tables evenly.
constexpr std::uint32_t kChunksPerEntry = 4;
// How many locked entries eviction steps over before it gives up.
constexpr int kEvictionSkipLimit = 64;
// How often a waiter wakes to check whether the holder's process still exists.
constexpr std::uint64_t kHolderCheckUs = 50'000;

// kDeleted: out of the index, allocated until the requests queued on its lock have moved on.
// kTombstone: deleted while backup is on; in the index (requests see it as deleted) and on the
// dirty list until the bank acknowledges the deletion.
enum EntryState : std::uint8_t { kFree = 0, kLive = 1, kDeleted = 2, kTombstone = 3 };

// Every entry in the index is on one of two LRU lists. kBacked: the bank holds it as it is here
// (or backup is off); evicting it loses nothing the bank cannot give back. kUnbacked: a version
// or a deletion the bank has not acknowledged; evicting it loses that change for good.
enum LruList : std::uint8_t { kBacked = 0, kUnbacked = 1 };

struct Entry {
    SessionId id;
    std::uint64_t version;
    std::int64_t expiry_us;  // wall clock (Unix microseconds); 0: none
    std::uint32_t size;
    std::uint32_t first_chunk;
    std::uint32_t hash_next;  // next entry in the bucket, or the free list
    std::uint32_t lru_prev;
    std::uint32_t lru_next;
    std::uint32_t generation;     // bumped each time the entry is freed: stale handles fail
    ProcessIdentity holder;       // pid 0 when unlocked
    std::uint32_t holder_waiter;  // the holder's waiter slot until it picks its grant up
    std::uint32_t queue_head;
    std::uint32_t queue_tail;
    // Backup: what the bank acknowledged, and the dirty list of changes not yet published.
    std::uint64_t backed_version;
    // Wall clock: the first save not yet taken for publishing; 0 when none.
    std::int64_t dirty_since_us;
    std::uint32_t dirty_prev;
    std::uint32_t dirty_next;
    std::uint8_t on_dirty_list;
    std::uint8_t state;
    std::uint8_t continues_fetched;  // fetched from the bank and not changed here since
    std::uint8_t lru_list;           // the LruList it is on
    // After the server stalled, a session is checked against the bank before it is served: this
    // is the stall generation it was last known current at, and check_pending says a request
    // holding it waits for the agent's check (which may replace its data meanwhile).
    std::uint32_t checked_generation;
    std::uint8_t check_pending;
    // The agent epoch (low 32 bits) that last took a change of it to publish: that agent holds
    // it in its window until the bank acknowledges it, so its scan for unacknowledged changes
    // (left by an agent before it) passes over it. 0: never taken.
    std::uint32_t taken_in_epoch;
};

// A server that continues a copy fetched from the bank numbers its next version in a new term
// (the high 32 bits of the version): above every version a server that held the session before
// could make from the same copy, however many saves it makes, so the bank orders the two servers'
// changes by which one took the session over last (docs/protocol.md, "Versions").
inline std::uint64_t next_version(const Entry &e) {
    return e.continues_fetched ? wire::first_version_of_term(wire::version_term(e.version) + 1)
                               : e.version + 1;
}

struct Waiter {
    SharedWord<std::uint32_t> granted;  // futex word: 0 waiting, 1 granted
    ProcessIdentity owner;
    std::uint32_t next;  // next in the entry's queue, or the free list
    std::uint32_t entry;
    std::uint8_t in_use;
};

struct Counters {
    RHYTHM_CACHE_COUNTERS(RHYTHM_COUNTER_FIELD)
};

// Replication lag (save to acknowledgement) histogram: 4 buckets per power of two of microseconds.
constexpr std::size_t kLagBuckets = 4 * 40;

struct LagHistogram {
    std::uint64_t counts[kLagBuckets];
};

// Written by the backup agent, read by server-status.
struct BackupState {
    std::uint8_t agent_id[16];  // the agent's identity in the bank, kept across its restarts
    std::uint64_t agent_epoch;  // bumped at every start of the agent
    std::int32_t agent_pid;
    RHYTHM_BACKUP_COUNTERS(RHYTHM_COUNTER_FIELD)
    SharedWord<std::int64_t> agent_turn_us;  // monotonic: the agent's last loop turn
    // Wall clock: the save time of the oldest change published, not acknowledged.
    std::int64_t oldest_in_flight_us;
    std::uint32_t nodes_total, nodes_up;
    NodeReport node_reports[kReportedNodes];
    // Two windows: the current one and the one before it, swapped by the agent.
    LagHistogram lag[2];
    std::uint8_t lag_current;
    // Set by the parent as it stops the agent: 1 at a restart (the segment stays for the next
    // agent), 0 at the end of the server (stop_drain.h). Without the mutex, which a hung agent
    // may hold. In what was padding: an older segment reads 0, the cautious answer.
    SharedWord<std::uint8_t> stop_is_restart;
    FetchSlots fetch_slots;  // the workers' failover fetches waiting for the agent
};

struct SegmentHeader {
    char magic[8];
    std::uint32_t layout_version;
    std::uint32_t bucket_mask;
    std::uint64_t segment_bytes;
    std::uint32_t entry_count;
    std::uint32_t waiter_count;
    std::uint64_t off_buckets;
    std::uint64_t off_entries;
    std::uint64_t off_waiters;
    std::uint64_t off_arena;
    ShmMutex mutex;
    ChunkArenaState arena;
    std::uint32_t free_entry;
    std::uint32_t free_waiter;
    std::uint32_t lru_head[2];  // per LruList: most recently used
    std::uint32_t lru_tail[2];
    std::uint64_t lru_length[2];
    std::uint32_t sweep_cursor;
    std::uint64_t sessions;
    std::uint64_t payload_bytes;
    Counters counters;
    std::uint8_t backup_enabled;   // set by the configuration of the running generation
    std::uint8_t evict_unbacked;   // SessionBackupEvictUnbacked
    LogGate refused_unbacked_log;  // RS0106
    LogGate evicted_unbacked_log;  // RS0107
    std::uint32_t dirty_head;      // oldest change first
    std::uint32_t dirty_tail;
    std::uint64_t dirty_count;
    // Monotonic: the last sign of life of any process of this server (note_alive).
    SharedWord<std::int64_t> alive_us;
    std::uint32_t stall_generation;  // bumped each time the server is found to have stalled
    std::int64_t stalled_at_us;      // monotonic: when it last was (0: never)
    BackupState backup;
};

// The sizes of kLayoutVersion's structures. A structure changed above fails the build here:
// bump kLayoutVersion, so that an older segment is refused rather than misread, and write the
// new version's sizes in place of these.
struct LayoutSizes {
    std::size_t header, entry, waiter, backup, node_report, counters;
};
constexpr std::uint32_t kLayoutSizesVersion = 7;
constexpr LayoutSizes kLayoutSizes = {7104, 128, 40, 6728, 232, 104};
static_assert(kLayoutSizesVersion == kLayoutVersion,
              "kLayoutSizes are another version's: write the sizes of this one");
static_assert(sizeof(SegmentHeader) == kLayoutSizes.header && sizeof(Entry) == kLayoutSizes.entry &&
                  sizeof(Waiter) == kLayoutSizes.waiter &&
                  sizeof(BackupState) == kLayoutSizes.backup &&
                  sizeof(NodeReport) == kLayoutSizes.node_report &&
                  sizeof(Counters) == kLayoutSizes.counters,
              "a structure of the segment changed: bump kLayoutVersion and write its sizes");
static_assert(std::is_trivially_copyable_v<SegmentHeader> && std::is_trivially_copyable_v<Entry> &&
                  std::is_trivially_copyable_v<Waiter>,
              "the segment holds plain data only: it is shared between processes and outlives "
              "the module");

constexpr std::size_t align64(std::size_t n) {
    return (n + 63) & ~static_cast<std::size_t>(63);
}

// Pointers into one process's mapping of the segment, rebuilt from the header's offsets.
class Segment {
  public:
    Segment(SegmentHeader *h, unsigned char *base)
        : h_(h),
          buckets_(reinterpret_cast<std::uint32_t *>(base + h->off_buckets)),
          entries_(reinterpret_cast<Entry *>(base + h->off_entries)),
          waiters_(reinterpret_cast<Waiter *>(base + h->off_waiters)),
          arena_(&h->arena, base + h->off_arena) {}

    SegmentHeader &h() { return *h_; }
    Entry &entry(std::uint32_t i) { return entries_[i]; }
    Waiter &waiter(std::uint32_t i) { return waiters_[i]; }
    ChunkArena &arena() { return arena_; }

    std::uint32_t &bucket(const SessionId &id) {
        // IDs are uniformly random and issued by us, so their leading bytes are a fine hash.
        std::uint32_t h;
        std::memcpy(&h, id.bytes.data(), sizeof h);
        return buckets_[h & h_->bucket_mask];
    }

    std::uint32_t find(const SessionId &id) {
        for (std::uint32_t i = bucket(id); i != kNoIndex; i = entries_[i].hash_next) {
            if (entries_[i].id == id) {
                return i;
            }
        }
        return kNoIndex;
    }

    void hash_unlink(std::uint32_t i) {
        std::uint32_t *link = &bucket(entries_[i].id);
        while (*link != i) {
            link = &entries_[*link].hash_next;
        }
        *link = entries_[i].hash_next;
    }

    // Whether the bank holds the entry as it is here: always with backup off; otherwise once it
    // has acknowledged this version (of a session, or of its deletion).
    bool backed(const Entry &e) const {
        return !h_->backup_enabled || e.version <= e.backed_version;
    }

    void lru_unlink(std::uint32_t i) {
        Entry &e = entries_[i];
        std::uint8_t l = e.lru_list;
        (e.lru_prev != kNoIndex ? entries_[e.lru_prev].lru_next : h_->lru_head[l]) = e.lru_next;
        (e.lru_next != kNoIndex ? entries_[e.lru_next].lru_prev : h_->lru_tail[l]) = e.lru_prev;
        h_->lru_length[l] -= 1;
    }

    void lru_push_front(std::uint32_t i, LruList l) {
        Entry &e = entries_[i];
        e.lru_list = l;
        e.lru_prev = kNoIndex;
        e.lru_next = h_->lru_head[l];
        (h_->lru_head[l] != kNoIndex ? entries_[h_->lru_head[l]].lru_prev : h_->lru_tail[l]) = i;
        h_->lru_head[l] = i;
        h_->lru_length[l] += 1;
    }

    // The most recently used of its list.
    void touch(std::uint32_t i) {
        Entry &e = entries_[i];
        if (h_->lru_head[e.lru_list] != i) {
            lru_unlink(i);
            lru_push_front(i, static_cast<LruList>(e.lru_list));
        }
    }

    // The most recently used of the list it belongs on now: after a new version, a deletion or an
    // acknowledgement.
    void lru_file(std::uint32_t i) {
        lru_unlink(i);
        lru_push_front(i, backed(entries_[i]) ? kBacked : kUnbacked);
    }

    // After backup was switched on or off, which changes what is backed: every entry is filed
    // again, O(entries) once per such change of the configuration. Each list is walked from its
    // cold end, so the order within each stays.
    void lru_refile_all() {
        const std::uint32_t tails[2] = {h_->lru_tail[kBacked], h_->lru_tail[kUnbacked]};
        for (int l = 0; l < 2; ++l) {
            h_->lru_head[l] = h_->lru_tail[l] = kNoIndex;
            h_->lru_length[l] = 0;
        }
        for (std::uint32_t tail : tails) {
            for (std::uint32_t i = tail; i != kNoIndex;) {
                std::uint32_t prev = entries_[i].lru_prev;
                lru_push_front(i, backed(entries_[i]) ? kBacked : kUnbacked);
                i = prev;
            }
        }
    }

    bool idle(const Entry &e) const { return e.holder.pid == 0 && e.queue_head == kNoIndex; }

    static bool expired(const Entry &e, std::int64_t now_wall_us) {
        return e.expiry_us != 0 && e.expiry_us < now_wall_us;
    }

    // Takes a live session out of the index; the entry stays allocated (state kDeleted) until
    // its lock is released, so that queued waiters can be told it is gone.
    void remove_session(std::uint32_t i) {
        Entry &e = entries_[i];
        hash_unlink(i);
        lru_unlink(i);
        dirty_unlink(i);
        if (e.state == kLive) {
            arena_.release(e.first_chunk);
            h_->sessions -= 1;
            h_->payload_bytes -= e.size;
        }
        e.first_chunk = kNoIndex;
        e.size = 0;
        e.state = kDeleted;
    }

    // A deletion the bank must hear of: the data goes, the entry stays (state kTombstone) with
    // the next version until the bank acknowledges it.
    void make_tombstone(std::uint32_t i, std::int64_t now_wall_us) {
        Entry &e = entries_[i];
        arena_.release(e.first_chunk);
        h_->sessions -= 1;
        h_->payload_bytes -= e.size;
        e.first_chunk = kNoIndex;
        e.size = 0;
        e.version = next_version(e);
        e.continues_fetched = 0;
        e.state = kTombstone;
        lru_file(i);  // unbacked until the bank acknowledges the deletion
        dirty_link(i, now_wall_us);
    }

    // A change to publish: appended to the dirty list unless it is on it already.
    void dirty_link(std::uint32_t i, std::int64_t now_wall_us) {
        Entry &e = entries_[i];
        if (!h_->backup_enabled || e.on_dirty_list) {
            return;
        }
        e.on_dirty_list = 1;
        e.dirty_since_us = now_wall_us;
        e.dirty_next = kNoIndex;
        e.dirty_prev = h_->dirty_tail;
        (h_->dirty_tail != kNoIndex ? entries_[h_->dirty_tail].dirty_next : h_->dirty_head) = i;
        h_->dirty_tail = i;
        h_->dirty_count += 1;
    }

    void dirty_unlink(std::uint32_t i) {
        Entry &e = entries_[i];
        if (!e.on_dirty_list) {
            return;
        }
        (e.dirty_prev != kNoIndex ? entries_[e.dirty_prev].dirty_next : h_->dirty_head) =
            e.dirty_next;
        (e.dirty_next != kNoIndex ? entries_[e.dirty_next].dirty_prev : h_->dirty_tail) =
            e.dirty_prev;
        e.on_dirty_list = 0;
        e.dirty_since_us = 0;
        h_->dirty_count -= 1;
    }

    // Adds a session at `version` to the index (not locked), new here or `fetched` from the bank
    // (at the bank's version). kDuplicate if the ID is taken.
    SessionCache::Save add_session(const SessionId &id, const void *data, std::size_t size,
                                   std::int64_t expiry_us, std::uint64_t version, bool fetched,
                                   std::uint32_t *index) {
        if (find(id) != kNoIndex) {
            return SessionCache::Save::kDuplicate;
        }
        std::uint32_t first;
        Room room = make_room(ChunkArena::chunks_for(size), true, kNoIndex);
        if (room == Room::kUnbackedOnly) {
            count_refused_unbacked();
            return SessionCache::Save::kUnbackedOnly;
        }
        if (room != Room::kMade || !arena_.store(data, size, &first)) {
            h_->counters.no_space += 1;
            return SessionCache::Save::kNoSpace;
        }
        std::uint32_t i = h_->free_entry;
        Entry &e = entries_[i];
        h_->free_entry = e.hash_next;
        e.id = id;
        e.version = version;
        e.backed_version = fetched ? version : 0;
        e.expiry_us = expiry_us;
        e.size = static_cast<std::uint32_t>(size);
        e.first_chunk = first;
        e.holder = ProcessIdentity();
        e.holder_waiter = e.queue_head = e.queue_tail = kNoIndex;
        e.on_dirty_list = 0;
        e.dirty_since_us = 0;
        e.state = kLive;
        e.continues_fetched = fetched ? 1 : 0;
        e.checked_generation = h_->stall_generation;
        e.check_pending = 0;
        e.taken_in_epoch = 0;
        std::uint32_t &head = bucket(id);
        e.hash_next = head;
        head = i;
        lru_push_front(i, backed(e) ? kBacked : kUnbacked);
        h_->sessions += 1;
        h_->payload_bytes += size;
        h_->counters.saves += 1;
        *index = i;
        return SessionCache::Save::kSaved;
    }

    void free_entry(std::uint32_t i) {
        Entry &e = entries_[i];
        e.state = kFree;
        e.generation += 1;
        e.hash_next = h_->free_entry;
        h_->free_entry = i;
    }

    enum class Room {
        kMade,
        kNone,          // not even by evicting every idle entry within reach
        kUnbackedOnly,  // only by evicting unbacked entries, and SessionBackupEvictUnbacked is Off
    };

    // Makes `chunks` chunks (and an entry, if asked) free by evicting idle entries from the cold
    // end of the backed list, then, only if that is not enough and SessionBackupEvictUnbacked is
    // On, of the unbacked list. `keep` is never evicted. Nothing is evicted unless that makes
    // enough room: each list is first walked without evicting, as far as eviction would go.
    Room make_room(std::uint32_t chunks, bool need_entry, std::uint32_t keep) {
        std::uint32_t free = arena_.free_chunks();
        std::uint32_t chunks_short = chunks > free ? chunks - free : 0;
        bool entry_short = need_entry && h_->free_entry == kNoIndex;
        if (chunks_short == 0 && !entry_short) {
            return Room::kMade;
        }
        if (!could_free(kBacked, keep, &chunks_short, &entry_short)) {
            if (!could_free(kUnbacked, keep, &chunks_short, &entry_short)) {
                return Room::kNone;
            }
            if (!h_->evict_unbacked) {
                return Room::kUnbackedOnly;
            }
        }
        bool made = evict(kBacked, chunks, need_entry, keep) ||
                    (h_->evict_unbacked && evict(kUnbacked, chunks, need_entry, keep));
        return made ? Room::kMade : Room::kNone;
    }

    // A save (or a fetched session) refused with Room::kUnbackedOnly.
    void count_refused_unbacked() {
        h_->backup.saves_refused_unbacked += 1;
        h_->refused_unbacked_log.unlogged += 1;
    }

    // The RS0106 and RS0107 lines due now, if any.
    void take_log_lines(std::int64_t now_wall_us, SessionCache::UnbackedLog *out) {
        log_gate_take(h_->refused_unbacked_log, h_->backup.saves_refused_unbacked, now_wall_us,
                      &out->refused);
        log_gate_take(h_->evicted_unbacked_log, h_->backup.evicted_unbacked, now_wall_us,
                      &out->evicted);
    }

    std::uint32_t take_waiter(const ProcessIdentity &owner, std::uint32_t entry_index) {
        std::uint32_t w = h_->free_waiter;
        if (w == kNoIndex) {
            return kNoIndex;
        }
        Waiter &slot = waiters_[w];
        h_->free_waiter = slot.next;
        slot.granted.store(0, std::memory_order_relaxed);
        slot.owner = owner;
        slot.next = kNoIndex;
        slot.entry = entry_index;
        slot.in_use = 1;
        return w;
    }

    void give_back_waiter(std::uint32_t w) {
        Waiter &slot = waiters_[w];
        slot.in_use = 0;
        slot.next = h_->free_waiter;
        h_->free_waiter = w;
    }

    void enqueue(std::uint32_t i, std::uint32_t w) {
        Entry &e = entries_[i];
        if (e.queue_tail == kNoIndex) {
            e.queue_head = w;
        } else {
            waiters_[e.queue_tail].next = w;
        }
        e.queue_tail = w;
    }

    void dequeue(std::uint32_t i, std::uint32_t w) {
        Entry &e = entries_[i];
        std::uint32_t prev = kNoIndex;
        for (std::uint32_t q = e.queue_head; q != kNoIndex; prev = q, q = waiters_[q].next) {
            if (q == w) {
                (prev == kNoIndex ? e.queue_head : waiters_[prev].next) = waiters_[q].next;
                if (e.queue_tail == w) {
                    e.queue_tail = prev;
                }
                return;
            }
        }
    }

    // Passes the lock to the first waiter in line, or frees it. A deleted entry with nobody
    // left waiting is returned to the free list.
    void hand_on(std::uint32_t i) {
        Entry &e = entries_[i];
        e.holder_waiter = kNoIndex;
        std::uint32_t w = e.queue_head;
        if (w == kNoIndex) {
            e.holder = ProcessIdentity();
            if (e.state == kDeleted) {
                free_entry(i);
            }
            return;
        }
        Waiter &next = waiters_[w];
        e.queue_head = next.next;
        if (e.queue_head == kNoIndex) {
            e.queue_tail = kNoIndex;
        }
        e.holder = next.owner;
        e.holder_waiter = w;
        next.granted.store(1, std::memory_order_release);
        futex_wake_all(&next.granted);
    }

    // If the lock's holder process no longer exists, takes the lock from it.
    void reclaim_if_holder_gone(std::uint32_t i) {
        Entry &e = entries_[i];
        if (e.holder.pid == 0 || !process_is_gone(e.holder)) {
            return;
        }
        if (e.holder_waiter != kNoIndex) {
            give_back_waiter(e.holder_waiter);
        }
        h_->counters.locks_reclaimed += 1;
        hand_on(i);
    }

    // A sign of life at `now`. With backup on, a gap over kStallUs since the last one means the
    // whole server was stopped: every session is to be checked against the bank before it is
    // served again. Returns the gap in microseconds when it was one (0 otherwise). Under the
    // mutex; alive_us is also written without it (the agent's turns), hence the exchange.
    std::int64_t note_alive(MonotonicTime now) {
        std::int64_t before = h_->alive_us.exchange(now.us(), std::memory_order_relaxed);
        if (!h_->backup_enabled || before == 0 || now.us() - before <= kStallUs) {
            return 0;
        }
        h_->stall_generation += 1;
        h_->stalled_at_us = now.us();
        h_->backup.stalls += 1;
        return now.us() - before;
    }

    bool handle_valid(const SessionCache::Handle &handle) {
        return handle.entry != kNoIndex && handle.entry < h_->entry_count &&
               entries_[handle.entry].generation == handle.generation &&
               entries_[handle.entry].state != kFree;
    }

  private:
    // Walks list `l` from its cold end as evict() would, without evicting, taking what its idle
    // entries would free off `*chunks_short` and `*entry_short`. True once nothing is short.
    bool could_free(LruList l, std::uint32_t keep, std::uint32_t *chunks_short, bool *entry_short) {
        int skipped = 0;
        for (std::uint32_t i = h_->lru_tail[l]; *chunks_short > 0 || *entry_short;
             i = entries_[i].lru_prev) {
            if (i == kNoIndex || skipped > kEvictionSkipLimit) {
                return false;
            }
            if (i == keep || !idle(entries_[i])) {
                ++skipped;
                continue;
            }
            *chunks_short -= std::min(*chunks_short, ChunkArena::chunks_for(entries_[i].size));
            *entry_short = false;
        }
        return true;
    }

    // Evicts idle entries of list `l` from its cold end until `chunks` chunks (and an entry, if
    // asked) are free, stepping over at most kEvictionSkipLimit locked ones. False if it could
    // not. An unbacked entry evicted is lost: counted for RS0107.
    bool evict(LruList l, std::uint32_t chunks, bool need_entry, std::uint32_t keep) {
        int skipped = 0;
        std::uint32_t i = h_->lru_tail[l];
        while (arena_.free_chunks() < chunks || (need_entry && h_->free_entry == kNoIndex)) {
            if (i == kNoIndex || skipped > kEvictionSkipLimit) {
                return false;
            }
            std::uint32_t prev = entries_[i].lru_prev;
            if (i == keep || !idle(entries_[i])) {
                ++skipped;
            } else {
                if (l == kUnbacked) {
                    h_->backup.evicted_unbacked += 1;
                    h_->evicted_unbacked_log.unlogged += 1;
                }
                remove_session(i);
                free_entry(i);
                h_->counters.evictions += 1;
            }
            i = prev;
        }
        return true;
    }

    SegmentHeader *h_;
    std::uint32_t *buckets_;
    Entry *entries_;
    Waiter *waiters_;
    ChunkArena arena_;
};

}  // namespace rhythm::detail
