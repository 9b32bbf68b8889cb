// The backup agent's view of the segment: the dirty list, acknowledgements, tombstones,
// re-sending, stale copies, fetched sessions and the lag figures.
#include "core/backup_feed.h"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <vector>

#include "common/clock.h"
#include "core/segment.h"

using rhythm::BackupFeed;
using rhythm::ChangeRecord;
using rhythm::SessionCache;
using rhythm::SessionId;
using rhythm::WallTime;

namespace {

constexpr std::int64_t kNow = 1'700'000'000'000'000;

struct Fixture {
    explicit Fixture(std::size_t bytes = 1 << 20) : bytes(bytes) {
        base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        BOOST_REQUIRE(base != MAP_FAILED);
        std::string why;
        BOOST_REQUIRE(SessionCache::format(base, bytes, 64, &why));
        BOOST_REQUIRE(SessionCache::attach(base, bytes, &cache, &why));
        cache.set_backup_enabled(true);
    }
    ~Fixture() { munmap(base, bytes); }

    SessionId add(std::uint32_t n, const std::string &data) {
        BOOST_REQUIRE((try_add(n, data) == SessionCache::Save::kSaved));
        return make_id(n);
    }

    SessionCache::Save try_add(std::uint32_t n, const std::string &data,
                               SessionCache::UnbackedLog *log = nullptr, std::int64_t now = kNow) {
        std::uint64_t v;
        return cache.insert(make_id(n), data.data(), data.size(), 0, now, &v, log);
    }

    // Publishes every change waiting, and the bank acknowledges them all.
    void ack_all() {
        for (auto changes = take(); !changes.empty(); changes = take()) {
            std::vector<rhythm::BackupFeed::Acknowledgement> acks;
            for (auto &c : changes) {
                acks.push_back({c.id, c.version, WallTime(kNow)});
            }
            feed.acknowledge(acks.data(), acks.size(), WallTime(kNow));
        }
    }

    bool holds(const SessionId &id) {
        SessionCache::Handle h;
        SessionCache::Loaded l;
        auto r = cache.acquire(id, rhythm::current_process(), kNow, 100, &h, allocate, nullptr, &l);
        if (r == SessionCache::Acquire::kLocked) {
            std::free(l.data);
            cache.release(&h);
        }
        return r == SessionCache::Acquire::kLocked;
    }

    static SessionId make_id(std::uint32_t n) {
        SessionId id;
        std::uint64_t x = n * 0x9E3779B97F4A7C15ULL + 7;
        std::memcpy(id.bytes.data(), &x, 8);
        std::memcpy(id.bytes.data() + 8, &n, 4);
        return id;
    }

    SessionCache::Handle lock(const SessionId &id) {
        SessionCache::Handle h;
        SessionCache::Loaded l;
        BOOST_REQUIRE((cache.acquire(id, rhythm::current_process(), kNow, 100, &h, allocate,
                                     nullptr, &l) == SessionCache::Acquire::kLocked));
        std::free(l.data);
        return h;
    }

    SessionCache::Save save(const SessionId &id, const std::string &data, std::int64_t now = kNow) {
        SessionCache::Handle h = lock(id);
        std::uint64_t v;
        return cache.save_and_release(&h, data.data(), data.size(), 0, now, &v);
    }

    // One acknowledgement, arriving at `now_us`.
    void ack(const SessionId &id, std::uint64_t version, std::int64_t saved_at_us,
             std::int64_t now_us) {
        rhythm::BackupFeed::Acknowledgement a{id, version, WallTime(saved_at_us)};
        feed.acknowledge(&a, 1, WallTime(now_us));
    }

    std::vector<ChangeRecord> take(std::size_t max = 100) {
        std::vector<ChangeRecord> out;
        feed.take_changes(&out, max, 1 << 20);
        return out;
    }

    static void *allocate(void *, std::size_t n) { return std::malloc(n); }

    std::size_t bytes;
    void *base;
    SessionCache cache;
    BackupFeed feed{cache};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(backup_feed)

BOOST_AUTO_TEST_CASE(nothing_is_recorded_with_backup_off) {
    Fixture f;
    f.cache.set_backup_enabled(false);
    SessionId id = f.add(1, "a=1");
    f.save(id, "a=2");
    BOOST_TEST(f.take().empty());
    BOOST_TEST(f.feed.stats().pending == 0u);
}

BOOST_AUTO_TEST_CASE(changes_are_taken_once_with_the_latest_version) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    SessionId b = f.add(2, "b=1");
    f.save(a, "a=2");
    f.save(a, "a=3");
    BOOST_TEST(f.feed.stats().pending == 2u);
    auto changes = f.take();
    BOOST_REQUIRE(changes.size() == 2u);
    BOOST_TEST((changes[0].id == a));  // oldest change first
    BOOST_TEST(changes[0].version == 3u);
    BOOST_TEST(changes[0].data == "a=3");
    BOOST_TEST(changes[0].saved_at_us == kNow);
    BOOST_TEST((changes[1].id == b));
    BOOST_TEST(!changes[1].tombstone);
    BOOST_TEST(f.take().empty());
    f.save(b, "b=2");
    changes = f.take();
    BOOST_REQUIRE(changes.size() == 1u);
    BOOST_TEST(changes[0].version == 2u);
}

// A server-status read between the take and a count made afterwards saw nothing pending and the
// batch counted nowhere: published - acknowledged fell below the sessions the bank lacked (a
// full-node test read 2 unacknowledged with 11 sessions refused).
BOOST_AUTO_TEST_CASE(a_change_taken_counts_as_published_at_once) {
    Fixture f;
    f.add(1, "a=1");
    f.add(2, "b=1");
    f.add(3, "c=1");
    BOOST_TEST(f.take(2).size() == 2u);
    BOOST_TEST(f.take().size() == 1u);
    rhythm::BackupStats s = f.feed.stats();
    BOOST_TEST(s.pending == 0u);
    BOOST_TEST(s.published == 3u);
    BOOST_TEST(s.published - s.acknowledged >= s.unbacked_sessions);
}

BOOST_AUTO_TEST_CASE(a_session_in_use_is_published_after_its_last_request) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    f.take();
    f.save(a, "a=2");
    SessionCache::Handle h = f.lock(a);  // a request holds it again
    BOOST_TEST(f.take().empty());
    std::uint64_t v;
    f.cache.save_and_release(&h, "a=3", 3, 0, kNow, &v);
    auto changes = f.take();
    BOOST_REQUIRE(changes.size() == 1u);
    BOOST_TEST(changes[0].version == 3u);
}

BOOST_AUTO_TEST_CASE(a_deletion_stays_a_tombstone_until_acknowledged) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    f.take();
    SessionCache::Handle h = f.lock(a);
    f.cache.erase_and_release(&h, kNow);
    BOOST_TEST(f.cache.stats().sessions == 0u);
    SessionCache::Loaded l;
    BOOST_TEST((f.cache.acquire(a, rhythm::current_process(), kNow, 100, &h, Fixture::allocate,
                                nullptr, &l) == SessionCache::Acquire::kDeleted));
    auto changes = f.take();
    BOOST_REQUIRE(changes.size() == 1u);
    BOOST_TEST(changes[0].tombstone);
    BOOST_TEST(changes[0].version == 2u);
    BOOST_TEST(changes[0].data.empty());
    f.ack(a, 2, kNow, kNow + 1000);
    BOOST_TEST((f.cache.acquire(a, rhythm::current_process(), kNow, 100, &h, Fixture::allocate,
                                nullptr, &l) == SessionCache::Acquire::kNotFound));
}

// Scans for unacknowledged sessions to the end, as an agent does after it starts.
void scan_unacknowledged(Fixture &f) {
    std::uint32_t cursor = 0;
    std::uint32_t scanned = 0;
    while (!f.feed.requeue_scan(&cursor, &scanned, 7, nullptr, nullptr, WallTime(kNow))) {
    }
}

BOOST_AUTO_TEST_CASE(scan_requeues_what_the_bank_has_not_acknowledged) {
    Fixture f;
    std::uint8_t agent_id[16];
    std::uint64_t epoch;
    f.feed.start_agent(100, agent_id, &epoch);
    SessionId a = f.add(1, "a=1");
    SessionId b = f.add(2, "b=1");
    auto changes = f.take();
    BOOST_REQUIRE(changes.size() == 2u);
    f.ack(a, 1, kNow, kNow);
    // b was published but never acknowledged: an agent that starts again finds it.
    f.feed.start_agent(101, agent_id, &epoch);
    scan_unacknowledged(f);
    changes = f.take();
    BOOST_REQUIRE(changes.size() == 1u);
    BOOST_TEST((changes[0].id == b));
}

BOOST_AUTO_TEST_CASE(an_agents_scan_leaves_what_it_published_itself_to_its_window) {
    // The agent's scan at its start runs for many turns while it publishes new changes: those
    // are in its window until acknowledged, and published again they would be counted twice.
    Fixture f;
    std::uint8_t agent_id[16];
    std::uint64_t epoch;
    f.feed.start_agent(100, agent_id, &epoch);
    f.add(1, "a=1");
    BOOST_REQUIRE(f.take().size() == 1u);  // published, not yet acknowledged
    scan_unacknowledged(f);
    BOOST_TEST(f.take().empty());
}

BOOST_AUTO_TEST_CASE(scan_with_a_selector_requeues_acknowledged_sessions_too) {
    Fixture f;
    for (std::uint32_t n = 0; n < 10; ++n) {
        f.add(n, "x");
    }
    // Acknowledged in one batch.
    std::vector<rhythm::BackupFeed::Acknowledgement> acks;
    for (auto &c : f.take()) {
        acks.push_back({c.id, c.version, WallTime(kNow)});
    }
    f.feed.acknowledge(acks.data(), acks.size(), WallTime(kNow + 1000));
    BOOST_TEST(f.feed.stats().acknowledged == 10u);
    // A scan for unacknowledged sessions finds none: the bank has every one of them.
    std::uint32_t from = 0;
    std::uint32_t looked = 0;
    while (!f.feed.requeue_scan(&from, &looked, 1000, nullptr, nullptr, WallTime(kNow))) {
    }
    BOOST_TEST(f.take().empty());
    auto even = [](void *, const SessionId &id) { return (id.bytes[8] & 1) == 0; };
    std::uint32_t cursor = 3;
    std::uint32_t scanned = 0;
    while (!f.feed.requeue_scan(&cursor, &scanned, 1000, even, nullptr, WallTime(kNow))) {
    }
    BOOST_TEST(f.take().size() == 5u);
}

BOOST_AUTO_TEST_CASE(a_version_elsewhere_that_wins_drops_the_local_copy) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    f.save(a, "a=2");                         // version 2
    f.save(a, "a=3");                         // version 3
    BOOST_TEST(!f.feed.drop_if_older(a, 2));  // ours is newer
    SessionCache::Handle h = f.lock(a);
    BOOST_TEST(!f.feed.drop_if_older(a, 5));  // a request holds it
    f.cache.release(&h);
    // Kept for that request, it is checked against the bank before it is served again.
    SessionCache::Loaded l;
    BOOST_REQUIRE((f.cache.acquire(a, rhythm::current_process(), kNow, 100, &h, Fixture::allocate,
                                   nullptr, &l) == SessionCache::Acquire::kLocked));
    BOOST_TEST(l.unchecked);
    std::free(l.data);
    f.cache.release(&h);
    BOOST_TEST(f.feed.drop_if_older(a, 5));
    BOOST_TEST((f.cache.acquire(a, rhythm::current_process(), kNow, 100, &h, Fixture::allocate,
                                nullptr, &l) == SessionCache::Acquire::kNotFound));
    BOOST_TEST(f.feed.stats().stale_dropped == 1u);
    // The same version from another server that won the tie: ours goes too.
    SessionId b = f.add(2, "b=1");
    BOOST_TEST(f.feed.drop_if_older(b, 1));
    // That very version fetched from the bank is the node's own record, not a loser of a tie:
    // kept, and checked before it is served (the refusal was for the copy held before the
    // take-over; dropped, the request about to hold it started a new session).
    SessionId c = Fixture::make_id(7);
    BOOST_REQUIRE((f.feed.insert_fetched(c, "c=1658", 6, 0, 41) == SessionCache::Save::kSaved));
    BOOST_TEST(!f.feed.drop_if_older(c, 41));
    BOOST_REQUIRE((f.cache.acquire(c, rhythm::current_process(), kNow, 100, &h, Fixture::allocate,
                                   nullptr, &l) == SessionCache::Acquire::kLocked));
    BOOST_TEST(l.unchecked);
    std::free(l.data);
    f.cache.release(&h);
    // A newer version still drops it.
    BOOST_TEST(f.feed.drop_if_older(c, 42));
}

BOOST_AUTO_TEST_CASE(a_fetched_session_continues_in_a_new_term_of_versions) {
    Fixture f;
    SessionId a = Fixture::make_id(9);
    BOOST_TEST((f.feed.insert_fetched(a, "n=41", 4, 0, 41) == SessionCache::Save::kSaved));
    BOOST_TEST(f.take().empty());  // the bank has it already
    // Above anything the server that had it before makes from version 41, however many saves.
    const std::uint64_t term_one = std::uint64_t{1} << 32;
    SessionCache::Handle h = f.lock(a);
    std::uint64_t v;
    f.cache.save_and_release(&h, "n=42", 4, 0, kNow, &v);
    BOOST_TEST(v == term_one + 1);
    h = f.lock(a);
    f.cache.save_and_release(&h, "n=43", 4, 0, kNow, &v);
    BOOST_TEST(v == term_one + 2);
    BOOST_TEST((f.feed.insert_fetched(a, "n=41", 4, 0, 41) == SessionCache::Save::kDuplicate));
    // Taken over again from term 1: term 2; a deletion is a change like any other.
    SessionId b = Fixture::make_id(10);
    f.feed.insert_fetched(b, "n=1", 3, 0, term_one + 7);
    h = f.lock(b);
    f.cache.erase_and_release(&h, kNow);
    auto changes = f.take();
    BOOST_TEST_REQUIRE(changes.size() == 2u);  // a, once, and b's deletion
    BOOST_TEST(changes[1].tombstone);
    BOOST_TEST(changes[1].version == 2 * term_one + 1);
}

BOOST_AUTO_TEST_CASE(each_fetch_outcome_has_its_own_count) {
    Fixture f;
    using Count = BackupFeed::FetchCount;
    const Count counts[] = {Count::kFound,    Count::kMissing,  Count::kMissing,
                            Count::kTimedOut, Count::kShed,     Count::kTooLarge,
                            Count::kNoSpace,  Count::kTooLarge, Count::kTooLarge};
    for (Count c : counts) {
        f.feed.count_fetch(c);
    }
    rhythm::BackupStats s = f.feed.stats();
    BOOST_TEST(s.fetched_found == 1u);
    BOOST_TEST(s.fetched_missing == 2u);
    BOOST_TEST(s.fetch_timeouts == 1u);
    BOOST_TEST(s.fetches_shed == 1u);
    BOOST_TEST(s.fetches_too_large == 3u);
    BOOST_TEST(s.fetches_no_space == 1u);
}

BOOST_AUTO_TEST_CASE(lag_and_oldest_unacknowledged_change) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    f.add(2, "b=1");
    rhythm::BackupStats s = f.feed.stats();
    BOOST_TEST(s.oldest_unacknowledged.us() == kNow);
    auto changes = f.take(2);
    // Taken, not acknowledged: still the oldest unacknowledged change.
    BOOST_TEST(f.feed.stats().oldest_unacknowledged.us() == kNow);
    BOOST_TEST(f.feed.stats().pending == 0u);
    for (int n = 0; n < 98; ++n) {
        f.ack(a, 1, kNow, kNow + 2000);  // 2 ms
    }
    f.ack(a, 1, kNow, kNow + 40000);  // 40 ms
    f.ack(a, 1, kNow, kNow + 40000);
    s = f.feed.stats();
    BOOST_TEST(s.lag_samples == 100u);
    BOOST_TEST(s.lag_p50_us >= 2000u);
    BOOST_TEST(s.lag_p50_us < 2600u);
    BOOST_TEST(s.lag_p99_us >= 40000u);
    BOOST_TEST(s.lag_p99_us < 50000u);
    f.feed.rotate_lag_window();
    BOOST_TEST(f.feed.stats().lag_samples == 100u);  // the previous window still counts
    f.feed.rotate_lag_window();
    BOOST_TEST(f.feed.stats().lag_samples == 0u);
}

BOOST_AUTO_TEST_CASE(sessions_the_bank_holds_are_evicted_first_even_when_newer) {
    Fixture f(256 << 10);
    std::uint64_t room = f.cache.stats().max_sessions;
    SessionId oldest = f.add(0, "unbacked");
    f.take();  // published, never acknowledged
    for (std::uint32_t n = 1; n < room; ++n) {
        f.add(n, "backed");
    }
    f.ack_all();
    BOOST_TEST(f.feed.stats().unbacked_sessions == 1u);
    for (std::uint32_t n = 0; n < 5; ++n) {
        f.add(1000 + n, "new");
    }
    rhythm::BackupStats st = f.feed.stats();
    BOOST_TEST(f.cache.stats().evictions == 5u);
    BOOST_TEST(st.evicted_unbacked == 0u);
    BOOST_TEST(st.unbacked_sessions == 6u);
    BOOST_TEST(f.holds(oldest));
    for (std::uint32_t n = 1; n <= 5; ++n) {
        BOOST_TEST(!f.holds(Fixture::make_id(n)));  // the least recently used backed ones
    }
    BOOST_TEST(f.holds(Fixture::make_id(6)));
}

BOOST_AUTO_TEST_CASE(by_default_a_save_that_only_unbacked_sessions_could_make_room_for_is_refused) {
    Fixture f(256 << 10);
    std::uint64_t room = f.cache.stats().max_sessions;
    for (std::uint32_t n = 0; n < room; ++n) {
        f.add(n, "x");
    }
    BOOST_TEST((f.try_add(room, "x") == SessionCache::Save::kUnbackedOnly));
    rhythm::CacheStats cs = f.cache.stats();
    BOOST_TEST(cs.evictions == 0u);
    BOOST_TEST(cs.sessions == room);
    BOOST_TEST(cs.no_space == 0u);
    BOOST_TEST(f.feed.stats().saves_refused_unbacked == 1u);
    BOOST_TEST(f.feed.stats().evicted_unbacked == 0u);
    BOOST_TEST(f.holds(Fixture::make_id(0)));
}

BOOST_AUTO_TEST_CASE(a_growing_save_is_refused_and_keeps_its_previous_version) {
    Fixture f(256 << 10);
    std::size_t arena = f.cache.stats().arena_bytes;
    std::string quarter(arena / 4 - 256, 'q');
    for (std::uint32_t n = 0; n < 4; ++n) {
        f.add(n, quarter);
    }
    SessionId first = Fixture::make_id(0);
    BOOST_TEST(
        (f.save(first, quarter + std::string(1024, '+')) == SessionCache::Save::kUnbackedOnly));
    SessionCache::Handle h = f.lock(first);
    f.cache.release(&h);
    BOOST_TEST(f.cache.stats().evictions == 0u);
    BOOST_TEST(f.feed.stats().saves_refused_unbacked == 1u);
    // The change kept is the first version, still waiting to be published.
    auto changes = f.take();
    BOOST_REQUIRE(changes.size() == 4u);
    BOOST_TEST(changes[0].version == 1u);
    BOOST_TEST(changes[0].data == quarter);
}

BOOST_AUTO_TEST_CASE(nothing_is_evicted_for_a_save_that_is_refused_anyway) {
    Fixture f(256 << 10);
    std::size_t arena = f.cache.stats().arena_bytes;
    SessionId small = f.add(0, std::string(8192, 's'));
    f.ack_all();
    std::string big(arena / 4 + 4096, 'b');
    for (std::uint32_t n = 1; n < 4; ++n) {
        f.add(n, big);
    }
    // Free: a quarter less 20 KiB. Evicting the backed session is not enough: the save is
    // refused and it stays.
    BOOST_TEST((f.try_add(9, big) == SessionCache::Save::kUnbackedOnly));
    BOOST_TEST(f.cache.stats().evictions == 0u);
    BOOST_TEST(f.holds(small));
    // A save it does make room for evicts it.
    BOOST_TEST((f.try_add(10, std::string(arena / 4 - 16384, 't')) == SessionCache::Save::kSaved));
    BOOST_TEST(f.cache.stats().evictions == 1u);
    BOOST_TEST(!f.holds(small));
}

BOOST_AUTO_TEST_CASE(an_acknowledged_session_becomes_evictable) {
    Fixture f(256 << 10);
    std::uint64_t room = f.cache.stats().max_sessions;
    for (std::uint32_t n = 0; n < room; ++n) {
        f.add(n, "x");
    }
    auto changes = f.take();
    BOOST_TEST((f.try_add(room, "x") == SessionCache::Save::kUnbackedOnly));
    SessionId acked = Fixture::make_id(7);
    f.ack(acked, 1, kNow, kNow);
    BOOST_TEST(f.feed.stats().unbacked_sessions == room - 1);
    BOOST_TEST((f.try_add(room, "x") == SessionCache::Save::kSaved));
    BOOST_TEST(!f.holds(acked));
    BOOST_TEST(f.cache.stats().evictions == 1u);
    BOOST_TEST(f.feed.stats().evicted_unbacked == 0u);
    // A new version is unbacked again until acknowledged.
    SessionId again = Fixture::make_id(8);
    f.ack(again, 1, kNow, kNow);
    f.save(again, "x=2");
    BOOST_TEST((f.try_add(room + 1, "x") == SessionCache::Save::kUnbackedOnly));
    BOOST_TEST(f.holds(again));
}

BOOST_AUTO_TEST_CASE(a_deletion_the_bank_has_not_heard_of_is_never_evicted_by_default) {
    Fixture f(256 << 10);
    std::uint64_t room = f.cache.stats().max_sessions;
    SessionId gone = f.add(0, "logged-in");
    SessionCache::Handle h = f.lock(gone);
    f.cache.erase_and_release(&h, kNow);  // a tombstone, the oldest entry of all
    for (std::uint32_t n = 1; n < room; ++n) {
        f.add(n, "x");
    }
    BOOST_TEST((f.try_add(room, "x") == SessionCache::Save::kUnbackedOnly));
    SessionCache::Loaded l;
    BOOST_TEST((f.cache.acquire(gone, rhythm::current_process(), kNow, 100, &h, Fixture::allocate,
                                nullptr, &l) == SessionCache::Acquire::kDeleted));
    BOOST_TEST(f.feed.stats().unbacked_sessions == room);
    // Allowed to evict unbacked entries, the cache drops the oldest: the deletion is lost.
    f.cache.set_evict_unbacked(true);
    BOOST_TEST((f.try_add(room, "x") == SessionCache::Save::kSaved));
    BOOST_TEST((f.cache.acquire(gone, rhythm::current_process(), kNow, 100, &h, Fixture::allocate,
                                nullptr, &l) == SessionCache::Acquire::kNotFound));
    BOOST_TEST(f.feed.stats().evicted_unbacked == 1u);
}

BOOST_AUTO_TEST_CASE(when_allowed_the_least_recently_used_unbacked_session_is_evicted_and_counted) {
    Fixture f(256 << 10);
    f.cache.set_evict_unbacked(true);
    std::uint64_t room = f.cache.stats().max_sessions;
    for (std::uint32_t n = 0; n < room; ++n) {
        f.add(n, "x");
    }
    BOOST_TEST(f.holds(Fixture::make_id(0)));  // used: the most recent now
    for (std::uint32_t n = 0; n < 5; ++n) {
        f.add(room + n, "x");
    }
    rhythm::BackupStats st = f.feed.stats();
    BOOST_TEST(st.evicted_unbacked == 5u);
    BOOST_TEST(st.saves_refused_unbacked == 0u);
    BOOST_TEST(st.pending == room);
    BOOST_TEST(f.holds(Fixture::make_id(0)));
    for (std::uint32_t n = 1; n <= 5; ++n) {
        BOOST_TEST(!f.holds(Fixture::make_id(n)));
    }
    BOOST_TEST(f.holds(Fixture::make_id(6)));
}

BOOST_AUTO_TEST_CASE(refusals_and_losses_are_logged_once_per_interval_with_their_count) {
    Fixture f(256 << 10);
    std::uint64_t room = f.cache.stats().max_sessions;
    for (std::uint32_t n = 0; n < room; ++n) {
        f.add(n, "x");
    }
    SessionCache::UnbackedLog log;
    BOOST_TEST((f.try_add(room, "x", &log) == SessionCache::Save::kUnbackedOnly));
    BOOST_TEST(log.refused.count == 1u);  // the first at once
    BOOST_TEST(log.evicted.count == 0u);
    for (int n = 0; n < 3; ++n) {
        SessionCache::UnbackedLog quiet;
        f.try_add(room, "x", &quiet, kNow + 1000 * n);
        BOOST_TEST(quiet.refused.count == 0u);
    }
    SessionCache::UnbackedLog later;
    f.cache.take_unbacked_log(kNow + 5'000'000, &later);
    BOOST_TEST(later.refused.count == 0u);
    f.cache.take_unbacked_log(kNow + rhythm::kLogIntervalUs, &later);
    BOOST_TEST(later.refused.count == 3u);
    BOOST_TEST(later.refused.total == 4u);
    BOOST_TEST(later.refused.previous_line_us == kNow);
    // Losses have a line of their own.
    f.cache.set_evict_unbacked(true);
    SessionCache::UnbackedLog lost;
    BOOST_TEST(
        (f.try_add(room, "x", &lost, kNow + rhythm::kLogIntervalUs) == SessionCache::Save::kSaved));
    BOOST_TEST(lost.evicted.count == 1u);
    BOOST_TEST(lost.evicted.total == 1u);
    BOOST_TEST(lost.refused.count == 0u);
}

BOOST_AUTO_TEST_CASE(a_fetched_session_that_needs_unbacked_room_is_not_stored_by_default) {
    Fixture f(256 << 10);
    std::uint64_t room = f.cache.stats().max_sessions;
    for (std::uint32_t n = 0; n < room; ++n) {
        f.add(n, "x");
    }
    BOOST_TEST((f.feed.insert_fetched(Fixture::make_id(room), "n=41", 4, 0, 41) ==
                SessionCache::Save::kNoSpace));
    BOOST_TEST(f.feed.stats().saves_refused_unbacked == 1u);
    BOOST_TEST(f.cache.stats().evictions == 0u);
}

BOOST_AUTO_TEST_CASE(an_agent_keeps_its_identity_and_gets_a_new_epoch) {
    Fixture f;
    std::uint8_t first[16];
    std::uint8_t second[16];
    std::uint64_t e1 = 0;
    std::uint64_t e2 = 0;
    f.feed.start_agent(100, first, &e1);
    f.feed.start_agent(101, second, &e2);
    BOOST_TEST(std::memcmp(first, second, 16) == 0);
    BOOST_TEST(e2 == e1 + 1);
    BOOST_TEST(f.feed.stats().agent_pid == 101);
    BOOST_TEST(f.feed.stats().agent_starts == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(stall)

// Acquires `id` as a request would; the lock stays held.
SessionCache::Acquire acquire(Fixture &f, const SessionId &id, SessionCache::Handle *h,
                              SessionCache::Loaded *l) {
    return f.cache.acquire(id, rhythm::current_process(), kNow, 100, h, Fixture::allocate, nullptr,
                           l);
}

// The server's last sign of life was `ago_us` before now.
void last_alive(Fixture &f, std::int64_t ago_us) {
    f.feed.agent_turn(rhythm::MonotonicTime::coarse_now() - rhythm::Duration(ago_us));
}

// Whether a request that locks `id` is to check it against the bank before serving it (it is
// released again); not a stall.
bool to_be_checked(Fixture &f, const SessionId &id) {
    SessionCache::Handle h;
    SessionCache::Loaded l;
    BOOST_REQUIRE((acquire(f, id, &h, &l) == SessionCache::Acquire::kLocked));
    BOOST_TEST(l.stalled_us == 0);
    std::free(l.data);
    f.cache.release(&h);
    return l.unchecked;
}

// A request after the stall locks `id` and asks the bank about it; the lock stays held.
SessionCache::Handle begin_check(Fixture &f, const SessionId &id) {
    SessionCache::Handle h;
    SessionCache::Loaded l;
    BOOST_REQUIRE((acquire(f, id, &h, &l) == SessionCache::Acquire::kLocked));
    BOOST_TEST(l.unchecked);
    std::free(l.data);
    f.cache.begin_check(h);
    return h;
}

// The bank's answer to a check: it holds `data` (a literal: the copy only points at it) at
// `version`.
BackupFeed::BankCopy bank_copy(std::uint64_t version, std::string_view data) {
    BackupFeed::BankCopy bank;
    bank.found = true;
    bank.version = version;
    bank.data = data;
    return bank;
}

BOOST_AUTO_TEST_CASE(a_server_that_stalled_checks_a_session_and_takes_the_banks_newer_copy) {
    Fixture f;
    SessionId a = f.add(1, "count=10");
    last_alive(f, 3000000);
    SessionCache::Handle h;
    SessionCache::Loaded l;
    BOOST_REQUIRE((acquire(f, a, &h, &l) == SessionCache::Acquire::kLocked));
    BOOST_TEST(l.stalled_us >= 3000000);
    BOOST_TEST(l.unchecked);
    BOOST_TEST(f.feed.stats().stalls == 1u);
    std::free(l.data);
    // Another server continued it in the bank meanwhile.
    f.cache.begin_check(h);
    BackupFeed::BankCopy bank = bank_copy((std::uint64_t{1} << 32) | 10, "count=20");
    BOOST_TEST((f.feed.reconcile(a, bank) == BackupFeed::Reconciled::kReplaced));
    BOOST_REQUIRE((f.cache.finish_check(&h, Fixture::allocate, nullptr, &l) ==
                   SessionCache::Acquire::kLocked));
    BOOST_TEST(std::string(l.data, l.size) == "count=20");
    BOOST_TEST(l.version == bank.version);
    BOOST_TEST(!l.unchecked);
    std::free(l.data);
    std::uint64_t v;
    f.cache.save_and_release(&h, "count=21", 8, 0, kNow, &v);
    BOOST_TEST(v == (std::uint64_t{2} << 32) + 1);  // continued in a new term, like a failover
    // Checked once: the next request does not ask again.
    BOOST_REQUIRE((acquire(f, a, &h, &l) == SessionCache::Acquire::kLocked));
    BOOST_TEST(!l.unchecked);
    BOOST_TEST(l.stalled_us == 0);
    std::free(l.data);
    f.cache.release(&h);
}

BOOST_AUTO_TEST_CASE(a_check_keeps_a_current_copy_and_removes_one_deleted_in_the_bank) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    SessionId b = f.add(2, "b=1");
    f.save(a, "a=2");  // version 2, not in the bank yet
    last_alive(f, 2000000);
    SessionCache::Handle h = begin_check(f, a);
    BOOST_TEST((f.feed.reconcile(a, bank_copy(1, "a=1")) == BackupFeed::Reconciled::kCurrent));
    SessionCache::Loaded l;
    BOOST_REQUIRE((f.cache.finish_check(&h, Fixture::allocate, nullptr, &l) ==
                   SessionCache::Acquire::kLocked));
    BOOST_TEST(std::string(l.data, l.size) == "a=2");
    std::free(l.data);
    f.cache.release(&h);

    h = begin_check(f, b);
    BackupFeed::BankCopy deleted = bank_copy(5, "");
    deleted.deleted = true;
    BOOST_TEST((f.feed.reconcile(b, deleted) == BackupFeed::Reconciled::kDeleted));
    BOOST_TEST((f.cache.finish_check(&h, Fixture::allocate, nullptr, &l) ==
                SessionCache::Acquire::kNotFound));
    BOOST_TEST(!h.held());
    BOOST_TEST((acquire(f, b, &h, &l) == SessionCache::Acquire::kNotFound));
}

BOOST_AUTO_TEST_CASE(an_answer_after_the_request_gave_up_changes_nothing) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    last_alive(f, 2000000);
    SessionCache::Handle h = begin_check(f, a);
    SessionCache::Loaded l;
    BOOST_REQUIRE((f.cache.finish_check(&h, Fixture::allocate, nullptr, &l) ==
                   SessionCache::Acquire::kLocked));  // no answer in time: served as it is
    BOOST_TEST((f.feed.reconcile(a, bank_copy(9, "a=9")) == BackupFeed::Reconciled::kNotWaiting));
    BOOST_TEST(std::string(l.data, l.size) == "a=1");
    std::free(l.data);
    f.cache.release(&h);
}

BOOST_AUTO_TEST_CASE(a_check_without_an_answer_leaves_the_session_to_be_checked_again) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    last_alive(f, 2000000);
    SessionCache::Handle h = begin_check(f, a);
    f.cache.abandon_check(&h);
    BOOST_TEST(!h.held());
    SessionCache::Loaded l;
    BOOST_REQUIRE((acquire(f, a, &h, &l) == SessionCache::Acquire::kLocked));  // released
    BOOST_TEST(l.unchecked);  // and still to be checked
    std::free(l.data);
    f.cache.release(&h);
}

BOOST_AUTO_TEST_CASE(the_parents_sign_of_life_does_not_wait_for_a_mutex_the_agent_holds) {
    // The parent's watch gives signs of life, then judges the agent: an agent stopped while it
    // holds the segment's mutex must still be judged, and killed, not wait for ever.
    Fixture f;
    last_alive(f, 0);
    auto &mutex = f.cache.segment().h().mutex;
    mutex.lock();  // as a hung agent would
    auto alive = std::async(std::launch::async, [&] {
        return f.feed.parent_alive(rhythm::MonotonicTime::coarse_now());
    });
    bool returned = alive.wait_for(std::chrono::seconds(2)) == std::future_status::ready;
    mutex.unlock();
    BOOST_TEST(returned);
    BOOST_TEST(alive.get() == 0);
}

BOOST_AUTO_TEST_CASE(a_handover_gives_the_bank_a_newer_copy_and_checks_this_one_before_use) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    f.save(a, "a=2");  // version 2, which the bank has not received
    BOOST_TEST(!to_be_checked(f, a));
    ChangeRecord newer;
    BOOST_TEST_REQUIRE(f.feed.hand_over(a, 1, &newer));
    BOOST_TEST(newer.version == 2u);
    BOOST_TEST(newer.data == "a=2");
    BOOST_TEST(!newer.tombstone);
    BOOST_TEST(to_be_checked(f, a));
    // The bank has this version already (continued here in a new term: below): nothing to
    // give, but still checked before use.
    f.save(a, "a=3");
    BOOST_TEST(!f.feed.hand_over(a, (std::uint64_t{1} << 32) + 1, &newer));
    BOOST_TEST(to_be_checked(f, a));
    BOOST_TEST(f.feed.stats().handed_over == 2u);
    // Not held here: nothing.
    BOOST_TEST(!f.feed.hand_over(Fixture::make_id(7), 1, &newer));
}

// The server that takes the session over continues it in a new term; if it hangs before the bank
// has its change and the user comes back here, this server's changes must not lose to that
// change when it arrives late: they are in a new term too, and the later ones are higher.
BOOST_AUTO_TEST_CASE(a_session_handed_over_continues_here_in_a_new_term) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    ChangeRecord newer;
    BOOST_TEST(!f.feed.hand_over(a, 1, &newer));  // the bank has version 1 already
    const std::uint64_t term_one = std::uint64_t{1} << 32;
    SessionCache::Handle h = f.lock(a);
    std::uint64_t v;
    f.cache.save_and_release(&h, "a=2", 3, 0, kNow, &v);
    BOOST_TEST(v == term_one + 1);
    h = f.lock(a);
    f.cache.save_and_release(&h, "a=3", 3, 0, kNow, &v);
    BOOST_TEST(v == term_one + 2);  // above the other server's first change of term 1
}

BOOST_AUTO_TEST_CASE(a_deletion_the_bank_has_not_heard_of_is_handed_over_as_a_tombstone) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    SessionCache::Handle h = f.lock(a);
    f.cache.erase_and_release(&h, kNow);  // version 2, a tombstone
    ChangeRecord newer;
    BOOST_TEST_REQUIRE(f.feed.hand_over(a, 1, &newer));
    BOOST_TEST(newer.tombstone);
    BOOST_TEST(newer.version == 2u);
    BOOST_TEST(newer.data.empty());
}

BOOST_AUTO_TEST_CASE(after_an_operator_ended_every_session_each_is_checked_before_it_is_served) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    SessionId b = f.add(2, "b=1");
    BOOST_TEST(!to_be_checked(f, a));
    f.feed.all_sessions_ended();
    BOOST_TEST(to_be_checked(f, a));
    BOOST_TEST(to_be_checked(f, b));
    BOOST_TEST(f.feed.stats().stalls == 0u);  // not a stall
}

BOOST_AUTO_TEST_CASE(a_server_that_kept_running_or_has_no_backup_serves_without_a_check) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    last_alive(f, 200000);  // a sign of life 0.2 s ago: no stall
    SessionCache::Handle h;
    SessionCache::Loaded l;
    BOOST_REQUIRE((acquire(f, a, &h, &l) == SessionCache::Acquire::kLocked));
    BOOST_TEST(!l.unchecked);
    std::free(l.data);
    f.cache.release(&h);
    f.cache.set_backup_enabled(false);
    last_alive(f, 5000000);
    BOOST_REQUIRE((acquire(f, a, &h, &l) == SessionCache::Acquire::kLocked));
    BOOST_TEST(!l.unchecked);
    BOOST_TEST(l.stalled_us == 0);
    std::free(l.data);
    f.cache.release(&h);
}

BOOST_AUTO_TEST_SUITE_END()
