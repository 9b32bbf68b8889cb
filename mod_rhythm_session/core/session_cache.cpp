// The session segment: layout, index, LRU, FIFO locks and expiry. Every function that changes
// shared state runs under the segment mutex except the data copy-out in acquire(), which is safe
// because a locked entry's chunks are never touched by another process.
#include "session_cache.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include "common/clock.h"
#include "segment.h"
#include "shm_sync.h"

namespace rhythm {

using namespace detail;

namespace {

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
    for (int l = 0; l < 2; ++l) {
        h->lru_head[l] = h->lru_tail[l] = kNoIndex;
    }
    h->dirty_head = h->dirty_tail = kNoIndex;

    std::uint32_t *buckets = reinterpret_cast<std::uint32_t *>(b + l.off_buckets);
    std::fill(buckets, buckets + l.bucket_count, kNoIndex);
    Entry *entries = reinterpret_cast<Entry *>(b + l.off_entries);
    for (std::uint32_t i = 0; i < l.entry_count; ++i) {
        Entry *e = new (&entries[i]) Entry();
        e->state = kFree;
        e->first_chunk = kNoIndex;
        e->holder_waiter = e->queue_head = e->queue_tail = kNoIndex;
        e->lru_prev = e->lru_next = kNoIndex;
        e->dirty_prev = e->dirty_next = kNoIndex;
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

Segment SessionCache::segment() const {
    return Segment(header_, base_);
}

SessionCache::SessionCache(void *base)
    : header_(static_cast<SegmentHeader *>(base)), base_(static_cast<unsigned char *>(base)) {}

SessionCache::Acquire SessionCache::acquire(const SessionId &id, const ProcessIdentity &owner,
                                            std::int64_t now_wall_us, std::uint64_t timeout_ms,
                                            Handle *handle, Allocator allocate, void *context,
                                            Loaded *loaded) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    std::uint32_t i;
    std::uint32_t w;
    {
        ShmMutexGuard guard(h.mutex);
        if (h.backup_enabled) {
            loaded->stalled_us = seg.note_alive(MonotonicTime::coarse_now());
        }
        i = seg.find(id);
        if (i == kNoIndex) {
            h.counters.misses += 1;
            return Acquire::kNotFound;
        }
        Entry &e = seg.entry(i);
        if (Segment::expired(e, now_wall_us) && seg.idle(e)) {
            seg.remove_session(i);
            seg.free_entry(i);
            h.counters.expirations += 1;
            h.counters.misses += 1;
            return Acquire::kNotFound;
        }
        if (e.state == kTombstone) {
            h.counters.misses += 1;
            return Acquire::kDeleted;
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
        MonotonicTime deadline = MonotonicTime::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            if (slot.granted.load(std::memory_order_acquire)) {
                break;
            }
            MonotonicTime now = MonotonicTime::now();
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
            futex_wait(
                &slot.granted, 0,
                std::min(static_cast<std::uint64_t>((deadline - now).count()), kHolderCheckUs));
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
        if (e.state == kLive && Segment::expired(e, now_wall_us)) {
            seg.remove_session(i);
            h.counters.expirations += 1;
        }
        if (e.state != kLive) {
            // Deleted or expired while we waited: the caller starts a new session.
            bool tombstone = e.state == kTombstone;
            h.counters.misses += 1;
            seg.hand_on(i);
            return tombstone ? Acquire::kDeleted : Acquire::kNotFound;
        }
        seg.touch(i);
        h.counters.hits += 1;
        handle->entry = i;
        handle->generation = e.generation;
        loaded->size = e.size;
        loaded->version = e.version;
        loaded->expiry_us = e.expiry_us;
        loaded->unchecked = h.backup_enabled && e.checked_generation != h.stall_generation;
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
                                                  std::int64_t now_wall_us, std::uint64_t *version,
                                                  UnbackedLog *log) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    Save result = Save::kSaved;
    if (seg.handle_valid(*handle)) {
        std::uint32_t i = handle->entry;
        Entry &e = seg.entry(i);
        std::uint32_t first;
        Segment::Room room = e.state == kLive
                                 ? seg.make_room(ChunkArena::chunks_for(size), false, i)
                                 : Segment::Room::kNone;
        // The new copy is written before the old one is released, so a failure leaves it intact.
        if (room == Segment::Room::kMade && seg.arena().store(data, size, &first)) {
            seg.arena().release(e.first_chunk);
            h.payload_bytes = h.payload_bytes - e.size + size;
            e.first_chunk = first;
            e.size = static_cast<std::uint32_t>(size);
            e.expiry_us = expiry_us;
            e.version = next_version(e);
            e.continues_fetched = 0;
            *version = e.version;
            seg.lru_file(i);
            seg.dirty_link(i, now_wall_us);
            h.counters.saves += 1;
        } else if (room == Segment::Room::kUnbackedOnly) {
            seg.count_refused_unbacked();
            result = Save::kUnbackedOnly;
        } else {
            h.counters.no_space += 1;
            result = Save::kNoSpace;
        }
        seg.hand_on(i);
    } else {
        result = Save::kNoSpace;
    }
    handle->entry = kNoIndex;
    if (log) {
        seg.take_log_lines(now_wall_us, log);
    }
    return result;
}

namespace {

// Deletes the live session at `i`, whose lock the caller holds: with backup on a tombstone
// stays until the bank acknowledges the deletion. Under the mutex.
void erase_locked(Segment &seg, std::uint32_t i, std::int64_t now_wall_us) {
    SegmentHeader &h = seg.h();
    if (seg.entry(i).state != kLive) {
        return;
    }
    if (h.backup_enabled) {
        seg.make_tombstone(i, now_wall_us);
    } else {
        seg.remove_session(i);
    }
    h.counters.deletions += 1;
}

}  // namespace

void SessionCache::erase_and_release(Handle *handle, std::int64_t now_wall_us) {
    Segment seg(header_, base_);
    ShmMutexGuard guard(seg.h().mutex);
    if (seg.handle_valid(*handle)) {
        erase_locked(seg, handle->entry, now_wall_us);
        seg.hand_on(handle->entry);
    }
    handle->entry = kNoIndex;
}

SessionCache::Save SessionCache::renew_and_release(Handle *handle, const SessionId &new_id,
                                                   const void *data, std::size_t size,
                                                   std::int64_t expiry_us, std::int64_t now_wall_us,
                                                   UnbackedLog *log) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    Save result = Save::kNoSpace;
    if (seg.handle_valid(*handle)) {
        std::uint32_t renewed;
        result = seg.add_session(new_id, data, size, expiry_us, 1, false, &renewed);
        if (result == Save::kDuplicate) {
            return result;
        }
        if (result == Save::kSaved) {
            seg.dirty_link(renewed, now_wall_us);
            erase_locked(seg, handle->entry, now_wall_us);
            h.counters.renewals += 1;
        }
        seg.hand_on(handle->entry);
    }
    handle->entry = kNoIndex;
    if (log) {
        seg.take_log_lines(now_wall_us, log);
    }
    return result;
}

void SessionCache::release(Handle *handle) {
    Segment seg(header_, base_);
    ShmMutexGuard guard(seg.h().mutex);
    if (seg.handle_valid(*handle)) {
        seg.hand_on(handle->entry);
    }
    handle->entry = kNoIndex;
}

void SessionCache::begin_check(const Handle &handle) {
    Segment seg(header_, base_);
    ShmMutexGuard guard(seg.h().mutex);
    if (seg.handle_valid(handle)) {
        seg.entry(handle.entry).check_pending = 1;
    }
}

SessionCache::Acquire SessionCache::finish_check(Handle *handle, Allocator allocate, void *context,
                                                 Loaded *loaded) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    std::uint32_t first_chunk;
    {
        ShmMutexGuard guard(h.mutex);
        if (!seg.handle_valid(*handle)) {
            handle->entry = kNoIndex;
            return Acquire::kNotFound;
        }
        std::uint32_t i = handle->entry;
        Entry &e = seg.entry(i);
        e.check_pending = 0;
        e.checked_generation = h.stall_generation;
        if (e.state != kLive) {
            // The bank deleted it, or held a newer copy this server had no room for.
            seg.hand_on(i);
            handle->entry = kNoIndex;
            return Acquire::kNotFound;
        }
        loaded->unchecked = false;
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

void SessionCache::abandon_check(Handle *handle) {
    Segment seg(header_, base_);
    ShmMutexGuard guard(seg.h().mutex);
    if (seg.handle_valid(*handle)) {
        seg.entry(handle->entry).check_pending = 0;
        seg.hand_on(handle->entry);
    }
    handle->entry = kNoIndex;
}

SessionCache::Save SessionCache::insert(const SessionId &id, const void *data, std::size_t size,
                                        std::int64_t expiry_us, std::int64_t now_wall_us,
                                        std::uint64_t *version, UnbackedLog *log) {
    Segment seg(header_, base_);
    ShmMutexGuard guard(seg.h().mutex);
    std::uint32_t i;
    Save result = seg.add_session(id, data, size, expiry_us, 1, false, &i);
    if (result == Save::kSaved) {
        seg.dirty_link(i, now_wall_us);
        *version = 1;
    }
    if (log) {
        seg.take_log_lines(now_wall_us, log);
    }
    return result;
}

void SessionCache::set_backup_enabled(bool enabled) {
    Segment seg(header_, base_);
    ShmMutexGuard guard(header_->mutex);
    std::uint8_t flag = enabled ? 1 : 0;
    if (header_->backup_enabled != flag) {
        header_->backup_enabled = flag;
        seg.lru_refile_all();
    }
}

void SessionCache::set_evict_unbacked(bool evict) {
    ShmMutexGuard guard(header_->mutex);
    header_->evict_unbacked = evict ? 1 : 0;
}

void SessionCache::take_unbacked_log(std::int64_t now_wall_us, UnbackedLog *log) {
    Segment seg(header_, base_);
    ShmMutexGuard guard(header_->mutex);
    seg.take_log_lines(now_wall_us, log);
}

std::size_t SessionCache::sweep_expired(std::int64_t now_wall_us, std::uint32_t budget) {
    Segment seg(header_, base_);
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    std::size_t reclaimed = 0;
    budget = std::min(budget, h.entry_count);
    for (std::uint32_t n = 0; n < budget; ++n) {
        std::uint32_t i = h.sweep_cursor;
        h.sweep_cursor = i + 1 < h.entry_count ? i + 1 : 0;
        Entry &e = seg.entry(i);
        if ((e.state == kLive || e.state == kTombstone) && Segment::expired(e, now_wall_us) &&
            seg.idle(e)) {
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

void SessionCache::count_id_refused() {
    ShmMutexGuard guard(header_->mutex);
    header_->counters.ids_refused += 1;
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
#define RHYTHM_COPY(field, key, label) s.field = h.counters.field;
    RHYTHM_CACHE_COUNTERS(RHYTHM_COPY)
#undef RHYTHM_COPY
    return s;
}

}  // namespace rhythm
