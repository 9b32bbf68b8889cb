// The session segment: layout, index, LRU, FIFO locks and expiry. Every function that changes
// shared state runs under the segment mutex except the data copy-out in acquire(), which is safe
// because a locked entry's chunks are never touched by another process.
#include "session_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <new>

#include "shm_sync.h"

namespace rhythm {
namespace {

constexpr char kMagic[8] = {'R', 'H', 'Y', 'T', 'H', 'M', 'S', 'C'};
// Bump whenever a structure below changes: an older segment is then refused, not misread.
constexpr std::uint32_t kLayoutVersion = 1;
// Chunks planned per entry: an average session of up to 512 bytes fills both tables evenly.
constexpr std::uint32_t kChunksPerEntry = 4;
// How many locked entries eviction steps over before it gives up.
constexpr int kEvictionSkipLimit = 64;
// How often a waiter wakes to check whether the holder's process still exists.
constexpr std::uint64_t kHolderCheckUs = 50'000;

enum EntryState : std::uint8_t { kFree = 0, kLive = 1, kDeleted = 2 };

struct Entry {
    SessionId id;
    std::uint64_t version;
    std::int64_t expiry_us;
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
    std::uint8_t state;
};

struct Waiter {
    std::atomic<std::uint32_t> granted;  // futex word: 0 waiting, 1 granted
    ProcessIdentity owner;
    std::uint32_t next;  // next in the entry's queue, or the free list
    std::uint32_t entry;
    std::uint8_t in_use;
};

struct Counters {
    std::uint64_t hits, misses, saves, deletions, evictions, expirations;
    std::uint64_t lock_waits, lock_timeouts, locks_reclaimed, oversized_refused, no_space;
};

}  // namespace

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
    std::uint32_t lru_head;  // most recently used
    std::uint32_t lru_tail;
    std::uint32_t sweep_cursor;
    std::uint64_t sessions;
    std::uint64_t payload_bytes;
    Counters counters;
};

namespace {

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

    void lru_unlink(std::uint32_t i) {
        Entry &e = entries_[i];
        (e.lru_prev != kNoIndex ? entries_[e.lru_prev].lru_next : h_->lru_head) = e.lru_next;
        (e.lru_next != kNoIndex ? entries_[e.lru_next].lru_prev : h_->lru_tail) = e.lru_prev;
    }

    void lru_push_front(std::uint32_t i) {
        Entry &e = entries_[i];
        e.lru_prev = kNoIndex;
        e.lru_next = h_->lru_head;
        (h_->lru_head != kNoIndex ? entries_[h_->lru_head].lru_prev : h_->lru_tail) = i;
        h_->lru_head = i;
    }

    void touch(std::uint32_t i) {
        if (h_->lru_head != i) {
            lru_unlink(i);
            lru_push_front(i);
        }
    }

    bool idle(const Entry &e) const { return e.holder.pid == 0 && e.queue_head == kNoIndex; }

    static bool expired(const Entry &e, std::int64_t now_us) {
        return e.expiry_us != 0 && e.expiry_us < now_us;
    }

    // Takes a live session out of the index; the entry stays allocated (state kDeleted) until
    // its lock is released, so that queued waiters can be told it is gone.
    void remove_session(std::uint32_t i) {
        Entry &e = entries_[i];
        hash_unlink(i);
        lru_unlink(i);
        arena_.release(e.first_chunk);
        e.first_chunk = kNoIndex;
        h_->sessions -= 1;
        h_->payload_bytes -= e.size;
        e.size = 0;
        e.state = kDeleted;
    }

    void free_entry(std::uint32_t i) {
        Entry &e = entries_[i];
        e.state = kFree;
        e.generation += 1;
        e.hash_next = h_->free_entry;
        h_->free_entry = i;
    }

    // Evicts idle sessions from the cold end until `chunks` chunks (and an entry, if asked) are
    // free. `keep` is never evicted. False if it cannot make that much room.
    bool make_room(std::uint32_t chunks, bool need_entry, std::uint32_t keep) {
        int skipped = 0;
        std::uint32_t i = h_->lru_tail;
        while (arena_.free_chunks() < chunks || (need_entry && h_->free_entry == kNoIndex)) {
            if (i == kNoIndex || skipped > kEvictionSkipLimit) {
                return false;
            }
            std::uint32_t prev = entries_[i].lru_prev;
            if (i == keep || !idle(entries_[i])) {
                ++skipped;
            } else {
                remove_session(i);
                free_entry(i);
                h_->counters.evictions += 1;
            }
            i = prev;
        }
        return true;
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

    bool handle_valid(const SessionCache::Handle &handle) {
        return handle.entry != kNoIndex && handle.entry < h_->entry_count &&
               entries_[handle.entry].generation == handle.generation &&
               entries_[handle.entry].state != kFree;
    }

  private:
    SegmentHeader *h_;
    std::uint32_t *buckets_;
    Entry *entries_;
    Waiter *waiters_;
    ChunkArena arena_;
};

struct Layout {
    std::uint32_t bucket_count, entry_count, chunk_count;
    std::size_t off_buckets, off_entries, off_waiters, off_arena;
};

bool plan_layout(std::size_t bytes, std::uint32_t waiter_slots, Layout *out) {
    std::size_t fixed = align64(sizeof(SegmentHeader)) + align64(waiter_slots * sizeof(Waiter));
    // Per entry: the entry, ~1 bucket, and its share of the arena, plus alignment slack.
    std::size_t per_entry =
        sizeof(Entry) + sizeof(std::uint32_t) + ChunkArena::bytes_for(kChunksPerEntry);
    if (bytes < fixed + 3 * 64 + 16 * per_entry) {
        return false;
    }
    std::size_t entries = (bytes - fixed - 3 * 64) / per_entry;
    entries = std::min<std::size_t>(entries, kNoIndex / kChunksPerEntry - 1);
    std::uint32_t buckets = 1;
    while (buckets < entries && buckets < (1u << 31)) {
        buckets <<= 1;
    }
    Layout l;
    l.entry_count = static_cast<std::uint32_t>(entries);
    l.bucket_count = buckets;
    l.off_buckets = align64(sizeof(SegmentHeader));
    l.off_entries = align64(l.off_buckets + buckets * sizeof(std::uint32_t));
    l.off_waiters = align64(l.off_entries + entries * sizeof(Entry));
    l.off_arena = align64(l.off_waiters + waiter_slots * sizeof(Waiter));
    if (l.off_arena >= bytes) {
        return false;
    }
    // The arena takes the rest.
    std::size_t arena_bytes = bytes - l.off_arena;
    std::size_t chunks = arena_bytes / ChunkArena::bytes_for(1);
    l.chunk_count = static_cast<std::uint32_t>(std::min<std::size_t>(chunks, kNoIndex - 1));
    if (l.chunk_count < l.entry_count) {
        return false;
    }
    *out = l;
    return true;
}

std::uint64_t steady_us() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

}  // namespace

std::size_t SessionCache::min_segment_bytes(std::uint32_t waiter_slots) {
    return align64(sizeof(SegmentHeader)) + align64(waiter_slots * sizeof(Waiter)) + 3 * 64 +
           16 * (sizeof(Entry) + sizeof(std::uint32_t) + ChunkArena::bytes_for(kChunksPerEntry));
}

bool SessionCache::format(void *base, std::size_t bytes, std::uint32_t waiter_slots,
                          std::string *why) {
    Layout l;
    if (waiter_slots == 0 || !plan_layout(bytes, waiter_slots, &l)) {
        *why = "the segment of " + std::to_string(bytes) + " bytes is too small (at least " +
               std::to_string(min_segment_bytes(waiter_slots)) + " needed)";
        return false;
    }
    unsigned char *b = static_cast<unsigned char *>(base);
    SegmentHeader *h = new (b) SegmentHeader();
    h->layout_version = kLayoutVersion;
    h->bucket_mask = l.bucket_count - 1;
    h->segment_bytes = bytes;
    h->entry_count = l.entry_count;
    h->waiter_count = waiter_slots;
    h->off_buckets = l.off_buckets;
    h->off_entries = l.off_entries;
    h->off_waiters = l.off_waiters;
    h->off_arena = l.off_arena;
    if (!h->mutex.init()) {
        *why = "cannot initialise a process-shared robust mutex";
        return false;
    }
    h->arena.chunk_count = l.chunk_count;
    h->lru_head = h->lru_tail = kNoIndex;

    std::uint32_t *buckets = reinterpret_cast<std::uint32_t *>(b + l.off_buckets);
    std::fill(buckets, buckets + l.bucket_count, kNoIndex);
    Entry *entries = reinterpret_cast<Entry *>(b + l.off_entries);
    for (std::uint32_t i = 0; i < l.entry_count; ++i) {
        Entry *e = new (&entries[i]) Entry();
        e->state = kFree;
        e->first_chunk = kNoIndex;
        e->holder_waiter = e->queue_head = e->queue_tail = kNoIndex;
        e->lru_prev = e->lru_next = kNoIndex;
        e->hash_next = i + 1 < l.entry_count ? i + 1 : kNoIndex;
    }
    h->free_entry = 0;
    Waiter *waiters = reinterpret_cast<Waiter *>(b + l.off_waiters);
    for (std::uint32_t i = 0; i < waiter_slots; ++i) {
        Waiter *w = new (&waiters[i]) Waiter();
        w->next = i + 1 < waiter_slots ? i + 1 : kNoIndex;
    }
    h->free_waiter = 0;
    ChunkArena(&h->arena, b + l.off_arena).format(l.chunk_count);
    // Written last: a segment whose formatting was interrupted is never attached.
    std::memcpy(h->magic, kMagic, sizeof kMagic);
    return true;
}

bool SessionCache::attach(void *base, std::size_t bytes, SessionCache *cache, std::string *why) {
    const SegmentHeader *h = static_cast<const SegmentHeader *>(base);
    if (bytes < sizeof(SegmentHeader) || std::memcmp(h->magic, kMagic, sizeof kMagic) != 0) {
        *why = "the segment does not hold a Rhythm session cache";
        return false;
    }
    if (h->layout_version != kLayoutVersion) {
        *why = "the segment has layout version " + std::to_string(h->layout_version) +
               ", this module uses " + std::to_string(kLayoutVersion);
        return false;
    }
    if (h->segment_bytes != bytes) {
        *why = "the segment was formatted for " + std::to_string(h->segment_bytes) +
               " bytes, not " + std::to_string(bytes);
        return false;
    }
    *cache = SessionCache(base);
    return true;
}

SessionCache::SessionCache(void *base)
    : header_(static_cast<SegmentHeader *>(base)), base_(static_cast<unsigned char *>(base)) {}

SessionCache::Acquire SessionCache::acquire(const SessionId &id, const ProcessIdentity &owner,
                                            std::int64_t now_us, std::uint64_t timeout_ms,
                                            Handle *handle, Allocator allocate, void *context,
                                            Loaded *loaded) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    std::uint32_t i;
    std::uint32_t w;
    {
        ShmMutexGuard guard(h.mutex);
        i = seg.find(id);
        if (i == kNoIndex) {
            h.counters.misses += 1;
            return Acquire::kNotFound;
        }
        Entry &e = seg.entry(i);
        if (Segment::expired(e, now_us) && seg.idle(e)) {
            seg.remove_session(i);
            seg.free_entry(i);
            h.counters.expirations += 1;
            h.counters.misses += 1;
            return Acquire::kNotFound;
        }
        seg.reclaim_if_holder_gone(i);
        w = kNoIndex;
        if (seg.idle(e)) {
            e.holder = owner;
        } else {
            w = seg.take_waiter(owner, i);
            if (w == kNoIndex) {
                h.counters.lock_timeouts += 1;
                return Acquire::kNoWaiter;
            }
            seg.enqueue(i, w);
            h.counters.lock_waits += 1;
        }
    }

    if (w != kNoIndex) {
        Waiter &slot = seg.waiter(w);
        std::uint64_t deadline = steady_us() + timeout_ms * 1000;
        for (;;) {
            if (slot.granted.load(std::memory_order_acquire)) {
                break;
            }
            std::uint64_t now = steady_us();
            if (now >= deadline) {
                ShmMutexGuard guard(h.mutex);
                if (slot.granted.load(std::memory_order_acquire)) {
                    break;  // granted just as time ran out: take it
                }
                seg.dequeue(i, w);
                seg.give_back_waiter(w);
                h.counters.lock_timeouts += 1;
                return Acquire::kTimedOut;
            }
            futex_wait(&slot.granted, 0, std::min(deadline - now, kHolderCheckUs));
            if (!slot.granted.load(std::memory_order_acquire)) {
                ShmMutexGuard guard(h.mutex);
                seg.reclaim_if_holder_gone(i);
            }
        }
    }

    Entry &e = seg.entry(i);
    std::uint32_t first_chunk;
    {
        ShmMutexGuard guard(h.mutex);
        if (w != kNoIndex) {
            e.holder_waiter = kNoIndex;
            seg.give_back_waiter(w);
        }
        if (e.state == kLive && Segment::expired(e, now_us)) {
            seg.remove_session(i);
            h.counters.expirations += 1;
        }
        if (e.state != kLive) {
            // Deleted or expired while we waited: the caller starts a new session.
            h.counters.misses += 1;
            seg.hand_on(i);
            return Acquire::kNotFound;
        }
        seg.touch(i);
        h.counters.hits += 1;
        handle->entry = i;
        handle->generation = e.generation;
        loaded->size = e.size;
        loaded->version = e.version;
        loaded->expiry_us = e.expiry_us;
        first_chunk = e.first_chunk;
    }
    // We hold the session's lock: nobody else changes or evicts these chunks.
    loaded->data = static_cast<char *>(allocate(context, loaded->size + 1));
    seg.arena().load(first_chunk, loaded->data, loaded->size);
    loaded->data[loaded->size] = '\0';
    return Acquire::kLocked;
}

SessionCache::Save SessionCache::save_and_release(Handle *handle, const void *data,
                                                  std::size_t size, std::int64_t expiry_us,
                                                  std::uint64_t *version) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    Save result = Save::kSaved;
    if (seg.handle_valid(*handle)) {
        std::uint32_t i = handle->entry;
        Entry &e = seg.entry(i);
        std::uint32_t first;
        // The new copy is written before the old one is released, so a failure leaves it intact.
        if (e.state == kLive && seg.make_room(ChunkArena::chunks_for(size), false, i) &&
            seg.arena().store(data, size, &first)) {
            seg.arena().release(e.first_chunk);
            h.payload_bytes = h.payload_bytes - e.size + size;
            e.first_chunk = first;
            e.size = static_cast<std::uint32_t>(size);
            e.expiry_us = expiry_us;
            e.version += 1;
            *version = e.version;
            seg.touch(i);
            h.counters.saves += 1;
        } else {
            h.counters.no_space += 1;
            result = Save::kNoSpace;
        }
        seg.hand_on(i);
    } else {
        result = Save::kNoSpace;
    }
    handle->entry = kNoIndex;
    return result;
}

void SessionCache::erase_and_release(Handle *handle) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    if (seg.handle_valid(*handle)) {
        std::uint32_t i = handle->entry;
        if (seg.entry(i).state == kLive) {
            seg.remove_session(i);
            h.counters.deletions += 1;
        }
        seg.hand_on(i);
    }
    handle->entry = kNoIndex;
}

void SessionCache::release(Handle *handle) {
    Segment seg(header_, base_);
    ShmMutexGuard guard(seg.h().mutex);
    if (seg.handle_valid(*handle)) {
        seg.hand_on(handle->entry);
    }
    handle->entry = kNoIndex;
}

SessionCache::Save SessionCache::insert(const SessionId &id, const void *data, std::size_t size,
                                        std::int64_t expiry_us, std::uint64_t *version) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    if (seg.find(id) != kNoIndex) {
        return Save::kDuplicate;
    }
    std::uint32_t first;
    if (!seg.make_room(ChunkArena::chunks_for(size), true, kNoIndex) ||
        !seg.arena().store(data, size, &first)) {
        h.counters.no_space += 1;
        return Save::kNoSpace;
    }
    std::uint32_t i = h.free_entry;
    Entry &e = seg.entry(i);
    h.free_entry = e.hash_next;
    e.id = id;
    e.version = 1;
    e.expiry_us = expiry_us;
    e.size = static_cast<std::uint32_t>(size);
    e.first_chunk = first;
    e.holder = ProcessIdentity();
    e.holder_waiter = e.queue_head = e.queue_tail = kNoIndex;
    e.state = kLive;
    std::uint32_t &head = seg.bucket(id);
    e.hash_next = head;
    head = i;
    seg.lru_push_front(i);
    h.sessions += 1;
    h.payload_bytes += size;
    h.counters.saves += 1;
    *version = e.version;
    return Save::kSaved;
}

std::size_t SessionCache::sweep_expired(std::int64_t now_us, std::uint32_t budget) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    std::size_t reclaimed = 0;
    budget = std::min(budget, h.entry_count);
    for (std::uint32_t n = 0; n < budget; ++n) {
        std::uint32_t i = h.sweep_cursor;
        h.sweep_cursor = i + 1 < h.entry_count ? i + 1 : 0;
        Entry &e = seg.entry(i);
        if (e.state == kLive && Segment::expired(e, now_us) && seg.idle(e)) {
            seg.remove_session(i);
            seg.free_entry(i);
            h.counters.expirations += 1;
            ++reclaimed;
        }
    }
    return reclaimed;
}

void SessionCache::count_oversized() {
    ShmMutexGuard guard(header_->mutex);
    header_->counters.oversized_refused += 1;
}

CacheStats SessionCache::stats() {
    SegmentHeader &h = *header_;
    ShmMutexGuard guard(h.mutex);
    CacheStats s;
    s.sessions = h.sessions;
    s.max_sessions = h.entry_count;
    s.payload_bytes = h.payload_bytes;
    s.arena_bytes = static_cast<std::uint64_t>(h.arena.chunk_count) * ChunkArena::kChunkBytes;
    s.arena_bytes_used = static_cast<std::uint64_t>(h.arena.chunk_count - h.arena.free_count) *
                         ChunkArena::kChunkBytes;
    s.segment_bytes = h.segment_bytes;
    const Counters &c = h.counters;
    s.hits = c.hits;
    s.misses = c.misses;
    s.saves = c.saves;
    s.deletions = c.deletions;
    s.evictions = c.evictions;
    s.expirations = c.expirations;
    s.lock_waits = c.lock_waits;
    s.lock_timeouts = c.lock_timeouts;
    s.locks_reclaimed = c.locks_reclaimed;
    s.oversized_refused = c.oversized_refused;
    s.no_space = c.no_space;
    return s;
}

}  // namespace rhythm
