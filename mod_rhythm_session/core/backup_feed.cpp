// The backup agent's side of the segment. Every function takes the segment mutex for a bounded
// section: the agent is not on the request path, but requests wait for the mutex too.
#include "backup_feed.h"

#include <algorithm>
#include <cstring>

#include "segment.h"

namespace rhythm {

using namespace detail;

namespace {

// How many entries take_changes() looks at, at most, per call (it skips locked ones).
constexpr std::size_t kScanLimit = 4096;

std::size_t lag_bucket(std::uint64_t us) {
    if (us < 4) {
        return static_cast<std::size_t>(us);
    }
    int msb = 63 - __builtin_clzll(us);
    std::size_t sub = (us >> (msb - 2)) & 3;
    return std::min<std::size_t>(4 * static_cast<std::size_t>(msb - 1) + sub, kLagBuckets - 1);
}

// The largest lag a bucket holds.
std::uint64_t lag_bucket_top(std::size_t b) {
    if (b < 4) {
        return b;
    }
    int msb = static_cast<int>(b / 4) + 1;
    std::uint64_t sub = b % 4;
    return ((5 + sub) << (msb - 2)) - 1;
}

std::uint64_t percentile(const std::uint64_t *counts, std::uint64_t total, double p) {
    if (total == 0) {
        return 0;
    }
    std::uint64_t rank = static_cast<std::uint64_t>(p * static_cast<double>(total - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kLagBuckets; ++b) {
        seen += counts[b];
        if (seen >= rank) {
            return lag_bucket_top(b);
        }
    }
    return lag_bucket_top(kLagBuckets - 1);
}

// A session's entry as the bank receives it: its bytes, or a tombstone, with their version.
void copy_entry(Segment &seg, const Entry &e, ChangeRecord *r) {
    r->id = e.id;
    r->version = e.version;
    r->expiry_us = e.expiry_us;
    r->tombstone = e.state == kTombstone;
    r->saved_at_us = e.dirty_since_us;
    r->data.resize(e.size);
    seg.arena().load(e.first_chunk, r->data.data(), e.size);
}

}  // namespace

SegmentHeader &BackupFeed::header() const {
    return cache_.segment().h();
}

void BackupFeed::start_agent(std::int32_t pid, std::uint8_t agent_id[16], std::uint64_t *epoch) {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    std::uint8_t fresh[16];
    SessionId random;
    generate_session_id(&random);  // 16 bytes from the kernel, made before taking the mutex
    std::memcpy(fresh, random.bytes.data(), sizeof fresh);
    ShmMutexGuard guard(h.mutex);
    static const std::uint8_t kZero[16] = {};
    if (std::memcmp(h.backup.agent_id, kZero, sizeof kZero) == 0) {
        std::memcpy(h.backup.agent_id, fresh, sizeof fresh);
    }
    std::memcpy(agent_id, h.backup.agent_id, 16);
    h.backup.agent_epoch += 1;
    *epoch = h.backup.agent_epoch;
    h.backup.agent_pid = pid;
    h.backup.agent_starts += 1;
    h.backup.oldest_in_flight_us = 0;
    h.backup.stop_is_restart.store(0, std::memory_order_relaxed);
}

void BackupFeed::take_changes(std::vector<ChangeRecord> *out, std::size_t max_records,
                              std::size_t max_bytes) {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    std::size_t bytes = 0;
    std::size_t looked = 0;
    std::uint32_t i = h.dirty_head;
    while (i != kNoIndex && out->size() < max_records && bytes < max_bytes &&
           looked++ < kScanLimit) {
        Entry &e = seg.entry(i);
        std::uint32_t next = e.dirty_next;
        if (seg.idle(e)) {
            copy_entry(seg, e, &out->emplace_back());
            bytes += e.size;
            seg.dirty_unlink(i);
            e.taken_in_epoch = static_cast<std::uint32_t>(h.backup.agent_epoch);
        }
        i = next;
    }
    // Counted published under the same hold of the mutex: a status read between the two saw no
    // change pending and the batch nowhere, so fewer unacknowledged than the bank lacked.
    h.backup.published += out->size();
    // Taken off the list, not yet acknowledged: still unacknowledged for server-status, at once.
    if (!out->empty() && h.backup.oldest_in_flight_us == 0) {
        h.backup.oldest_in_flight_us = out->front().saved_at_us;
    }
}

void BackupFeed::acknowledge(const Acknowledgement *acks, std::size_t count, WallTime now) {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    for (const Acknowledgement *a = acks; a != acks + count; ++a) {
        h.backup.acknowledged += 1;
        if (a->saved_at > WallTime() && now >= a->saved_at) {
            h.backup.lag[h.backup.lag_current].counts[lag_bucket((now - a->saved_at).count())] += 1;
        }
        std::uint32_t i = seg.find(a->id);
        if (i == kNoIndex) {
            continue;
        }
        Entry &e = seg.entry(i);
        e.backed_version = std::max(e.backed_version, std::min(a->version, e.version));
        if (e.state == kTombstone && e.backed_version >= e.version && seg.idle(e)) {
            seg.remove_session(i);  // the bank has the deletion: the tombstone's work is done
            seg.free_entry(i);
        } else if (e.lru_list == kUnbacked && seg.backed(e)) {
            seg.lru_file(i);  // evictable before any session the bank lacks
        }
    }
}

bool BackupFeed::requeue_scan(std::uint32_t *cursor, std::uint32_t *scanned, std::uint32_t budget,
                              Selector wanted, void *context, WallTime now) {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    for (std::uint32_t n = 0; n < budget && *scanned < h.entry_count; ++n, ++*scanned) {
        std::uint32_t i = *cursor;
        *cursor = i + 1 < h.entry_count ? i + 1 : 0;
        Entry &e = seg.entry(i);
        if (e.state != kLive && e.state != kTombstone) {
            continue;
        }
        // Unacknowledged and not in this agent's window: an earlier agent's, lost with it.
        bool selected =
            wanted ? wanted(context, e.id)
                   : e.version > e.backed_version &&
                         e.taken_in_epoch != static_cast<std::uint32_t>(h.backup.agent_epoch);
        if (selected) {
            seg.dirty_link(i, e.dirty_since_us ? e.dirty_since_us : now.us());
        }
    }
    return *scanned >= h.entry_count;
}

bool BackupFeed::drop_if_older(const SessionId &id, std::uint64_t version) {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    std::uint32_t i = seg.find(id);
    if (i == kNoIndex) {
        return false;
    }
    Entry &e = seg.entry(i);
    if (e.version > version) {
        return false;
    }
    // That very version, fetched from the bank (or handed over) and not changed here since, is the
    // node's own record: the refusal was meant for the older copy this server held before it took
    // the session back (each owner tells it, and the second word can come after the take-over).
    // Dropped, the copy a request was about to hold was gone: a new session, a login lost (the
    // fault campaign under ASan: count 1 after 1658). It is checked before it is served instead.
    if (!seg.idle(e) || (e.version == version && e.continues_fetched)) {
        e.checked_generation = h.stall_generation - 1;
        return false;
    }
    seg.remove_session(i);
    seg.free_entry(i);
    h.backup.stale_dropped += 1;
    return true;
}

bool BackupFeed::hand_over(const SessionId &id, std::uint64_t version, ChangeRecord *newer) {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    std::uint32_t i = seg.find(id);
    if (i == kNoIndex) {
        return false;
    }
    Entry &e = seg.entry(i);
    e.checked_generation = h.stall_generation - 1;
    // Another server is taking the session over from this version, and continues it in a term of
    // its own that this server may not see in the bank for a while (that server hung before it
    // published: the fault campaign, seed 60): if the user comes back here first, this server
    // continues in a new term too, so that the other's late change cannot overwrite these.
    e.continues_fetched = 1;
    h.backup.handed_over += 1;
    if (e.version <= version) {
        return false;
    }
    copy_entry(seg, e, newer);
    return true;
}

void BackupFeed::check_before_serving(const SessionId &id) {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    std::uint32_t i = seg.find(id);
    if (i != kNoIndex) {
        seg.entry(i).checked_generation = h.stall_generation - 1;
    }
}

bool BackupFeed::handed_over_or_fetched(const SessionId &id) {
    Segment seg = cache_.segment();
    ShmMutexGuard guard(seg.h().mutex);
    std::uint32_t i = seg.find(id);
    return i != kNoIndex && seg.entry(i).continues_fetched != 0;
}

MonotonicTime BackupFeed::last_stall() {
    ShmMutexGuard guard(header().mutex);
    return MonotonicTime(header().stalled_at_us);
}

SessionCache::Save BackupFeed::insert_fetched(const SessionId &id, const void *data,
                                              std::size_t size, std::int64_t expiry_us,
                                              std::uint64_t version) {
    Segment seg = cache_.segment();
    ShmMutexGuard guard(seg.h().mutex);
    std::uint32_t i;
    SessionCache::Save saved = seg.add_session(id, data, size, expiry_us, version, true, &i);
    // Counted as refused (RhythmBackupSavesRefusedUnbacked); the httpd parent logs it (RS0106).
    return saved == SessionCache::Save::kUnbackedOnly ? SessionCache::Save::kNoSpace : saved;
}

BackupFeed::Reconciled BackupFeed::reconcile(const SessionId &id, const BankCopy &bank) {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    std::uint32_t i = seg.find(id);
    if (i == kNoIndex || !seg.entry(i).check_pending || seg.entry(i).state != kLive) {
        return Reconciled::kNotWaiting;  // it gave up waiting: its copy stays as it was
    }
    Entry &e = seg.entry(i);
    if (!bank.found || bank.version <= e.version) {
        return Reconciled::kCurrent;
    }
    std::uint32_t first;
    // The request waiting holds the lock: nobody else reads these chunks until it has the answer.
    bool stored =
        !bank.deleted && !bank.too_large &&
        seg.make_room(ChunkArena::chunks_for(bank.data.size()), false, i) == Segment::Room::kMade &&
        seg.arena().store(bank.data.data(), bank.data.size(), &first);
    if (!stored) {
        seg.remove_session(i);  // the holder finds it gone (SessionCache::finish_check)
        return bank.deleted     ? Reconciled::kDeleted
               : bank.too_large ? Reconciled::kTooLarge
                                : Reconciled::kNoSpace;
    }
    seg.arena().release(e.first_chunk);
    h.payload_bytes = h.payload_bytes - e.size + bank.data.size();
    e.first_chunk = first;
    e.size = static_cast<std::uint32_t>(bank.data.size());
    e.expiry_us = bank.expiry_us;
    e.version = e.backed_version = bank.version;
    e.continues_fetched = 1;
    seg.dirty_unlink(i);  // what this server changed since is superseded
    seg.lru_file(i);
    return Reconciled::kReplaced;
}

std::int64_t BackupFeed::agent_turn(MonotonicTime now) {
    header().backup.agent_turn_us.store(now.us(), std::memory_order_relaxed);
    return note_alive(now);
}

MonotonicTime BackupFeed::last_agent_turn() const {
    return MonotonicTime(header().backup.agent_turn_us.load(std::memory_order_relaxed));
}

std::int64_t BackupFeed::parent_alive(MonotonicTime now) {
    return note_alive(now);
}

// Without the mutex in the usual case: a turn every millisecond must not contend with requests,
// and the parent's watch must still judge (and kill) an agent that hangs holding the mutex.
// Only a stall, once, takes it.
std::int64_t BackupFeed::note_alive(MonotonicTime now) {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    std::int64_t before = h.alive_us.load(std::memory_order_relaxed);
    if (before != 0 && now.us() - before <= kStallUs) {
        h.alive_us.store(now.us(), std::memory_order_relaxed);
        return 0;
    }
    ShmMutexGuard guard(h.mutex);
    return seg.note_alive(now);
}

void BackupFeed::cut_off_from_bank() {
    ShmMutexGuard guard(header().mutex);
    header().stall_generation += 1;
    header().backup.stalls += 1;
}

void BackupFeed::node_back() {
    ShmMutexGuard guard(header().mutex);
    header().stall_generation += 1;
}

bool BackupFeed::agent_replaced() {
    ShmMutexGuard guard(header().mutex);
    if (header().backup.agent_starts == 0) {
        return false;
    }
    header().stall_generation += 1;
    return true;
}

void BackupFeed::agent_stopped_by_parent(bool restart) {
    header().backup.stop_is_restart.store(restart ? 1 : 0, std::memory_order_release);
}

bool BackupFeed::stop_is_restart() {
    return header().backup.stop_is_restart.load(std::memory_order_acquire) != 0;
}

std::uint64_t BackupFeed::unacknowledged() {
    ShmMutexGuard guard(header().mutex);
    return header().lru_length[kUnbacked];
}

void BackupFeed::all_sessions_ended() {
    ShmMutexGuard guard(header().mutex);
    header().stall_generation += 1;
}

void BackupFeed::count_check(bool replaced) {
    ShmMutexGuard guard(header().mutex);
    header().backup.stall_checks += 1;
    header().backup.stall_replaced += replaced ? 1 : 0;
}

void BackupFeed::count_refused(std::uint64_t n) {
    if (n == 0) {
        return;
    }
    ShmMutexGuard guard(header().mutex);
    header().backup.refused_by_nodes += n;
}

void BackupFeed::count_fetch(FetchCount what) {
    ShmMutexGuard guard(header().mutex);
    BackupState &b = header().backup;
    std::uint64_t *counters[] = {&b.fetched_found, &b.fetched_missing,   &b.fetch_timeouts,
                                 &b.fetches_shed,  &b.fetches_too_large, &b.fetches_no_space};
    *counters[static_cast<int>(what)] += 1;
}

int BackupFeed::take_fetch_slot(MonotonicTime now, MonotonicTime until) {
    return rhythm::take_fetch_slot(&header().backup.fetch_slots, now.us(), until.us());
}

void BackupFeed::give_back_fetch_slot(int slot) {
    rhythm::give_back_fetch_slot(&header().backup.fetch_slots, slot);
}

void BackupFeed::set_nodes(std::uint32_t total, std::uint32_t up) {
    ShmMutexGuard guard(header().mutex);
    header().backup.nodes_total = total;
    header().backup.nodes_up = up;
}

void BackupFeed::set_node_reports(const NodeReport *reports, std::size_t count) {
    ShmMutexGuard guard(header().mutex);
    std::copy(reports, reports + std::min(count, kReportedNodes), header().backup.node_reports);
}

void BackupFeed::set_oldest_in_flight(WallTime saved_at) {
    ShmMutexGuard guard(header().mutex);
    header().backup.oldest_in_flight_us = saved_at.us();
}

void BackupFeed::rotate_lag_window() {
    ShmMutexGuard guard(header().mutex);
    BackupState &b = header().backup;
    b.lag_current ^= 1;
    std::memset(&b.lag[b.lag_current], 0, sizeof(LagHistogram));
}

BackupStats BackupFeed::stats() {
    Segment seg = cache_.segment();
    SegmentHeader &h = seg.h();
    ShmMutexGuard guard(h.mutex);
    const BackupState &b = h.backup;
    BackupStats s;
    s.enabled = h.backup_enabled != 0;
    s.agent_pid = b.agent_pid;
    s.pending = h.dirty_count;
    s.unbacked_sessions = h.lru_length[kUnbacked];
#define RHYTHM_COPY(field, key, label) s.field = b.field;
    RHYTHM_BACKUP_COUNTERS(RHYTHM_COPY)
#undef RHYTHM_COPY
    s.agent_turn = MonotonicTime(b.agent_turn_us.load(std::memory_order_relaxed));
    s.nodes_total = b.nodes_total;
    s.nodes_up = b.nodes_up;
    s.node_reports.assign(b.node_reports,
                          b.node_reports + std::min<std::size_t>(b.nodes_total, kReportedNodes));
    std::uint64_t merged[kLagBuckets];
    for (std::size_t k = 0; k < kLagBuckets; ++k) {
        merged[k] = b.lag[0].counts[k] + b.lag[1].counts[k];
        s.lag_samples += merged[k];
    }
    s.lag_p50_us = percentile(merged, s.lag_samples, 0.50);
    s.lag_p99_us = percentile(merged, s.lag_samples, 0.99);
    std::int64_t oldest = b.oldest_in_flight_us;
    if (h.dirty_head != kNoIndex) {
        std::int64_t waiting = seg.entry(h.dirty_head).dirty_since_us;
        oldest = oldest == 0 ? waiting : std::min(oldest, waiting);
    }
    s.oldest_unacknowledged = WallTime(oldest);
    return s;
}

}  // namespace rhythm
