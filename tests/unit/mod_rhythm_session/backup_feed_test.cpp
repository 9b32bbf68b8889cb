// The backup agent's view of the segment: the dirty list, acknowledgements, tombstones,
// re-sending, stale copies, fetched sessions and the lag figures.
#include "core/backup_feed.h"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <vector>

using rhythm::BackupFeed;
using rhythm::ChangeRecord;
using rhythm::SessionCache;
using rhythm::SessionId;

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
        SessionId id = make_id(n);
        std::uint64_t v;
        BOOST_REQUIRE((cache.insert(id, data.data(), data.size(), 0, kNow, &v) ==
                       SessionCache::Save::kSaved));
        return id;
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

    void save(const SessionId &id, const std::string &data, std::int64_t now = kNow) {
        SessionCache::Handle h = lock(id);
        std::uint64_t v;
        cache.save_and_release(&h, data.data(), data.size(), 0, now, &v);
    }

    // One acknowledgement, arriving at `now_us`.
    void ack(const SessionId &id, std::uint64_t version, std::int64_t saved_at_us,
             std::int64_t now_us) {
        rhythm::BackupFeed::Acknowledgement a{id, version, saved_at_us};
        feed.acknowledge(&a, 1, now_us);
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

BOOST_AUTO_TEST_CASE(scan_requeues_what_the_bank_has_not_acknowledged) {
    Fixture f;
    SessionId a = f.add(1, "a=1");
    SessionId b = f.add(2, "b=1");
    auto changes = f.take();
    BOOST_REQUIRE(changes.size() == 2u);
    f.ack(a, 1, kNow, kNow);
    // b was published but never acknowledged: an agent that starts again finds it.
    std::uint32_t cursor = 0;
    std::uint32_t scanned = 0;
    while (!f.feed.requeue_scan(&cursor, &scanned, 7, nullptr, nullptr, kNow)) {
    }
    changes = f.take();
    BOOST_REQUIRE(changes.size() == 1u);
    BOOST_TEST((changes[0].id == b));
}

BOOST_AUTO_TEST_CASE(scan_with_a_selector_requeues_acknowledged_sessions_too) {
    Fixture f;
    for (std::uint32_t n = 0; n < 10; ++n) {
        f.add(n, "x");
    }
    // Acknowledged in one batch.
    std::vector<rhythm::BackupFeed::Acknowledgement> acks;
    for (auto &c : f.take()) {
        acks.push_back({c.id, c.version, kNow});
    }
    f.feed.acknowledge(acks.data(), acks.size(), kNow + 1000);
    BOOST_TEST(f.feed.stats().acknowledged == 10u);
    // A scan for unacknowledged sessions finds none: the bank has every one of them.
    std::uint32_t from = 0;
    std::uint32_t looked = 0;
    while (!f.feed.requeue_scan(&from, &looked, 1000, nullptr, nullptr, kNow)) {
    }
    BOOST_TEST(f.take().empty());
    auto even = [](void *, const SessionId &id) { return (id.bytes[8] & 1) == 0; };
    std::uint32_t cursor = 3;
    std::uint32_t scanned = 0;
    while (!f.feed.requeue_scan(&cursor, &scanned, 1000, even, nullptr, kNow)) {
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
    BOOST_TEST(f.feed.drop_if_older(a, 5));
    SessionCache::Loaded l;
    BOOST_TEST((f.cache.acquire(a, rhythm::current_process(), kNow, 100, &h, Fixture::allocate,
                                nullptr, &l) == SessionCache::Acquire::kNotFound));
    BOOST_TEST(f.feed.stats().stale_dropped == 1u);
    // The same version from another server that won the tie: ours goes too.
    SessionId b = f.add(2, "b=1");
    BOOST_TEST(f.feed.drop_if_older(b, 1));
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
    BOOST_TEST(s.oldest_unacknowledged_us == kNow);
    auto changes = f.take(2);
    // Taken, not acknowledged: still the oldest unacknowledged change.
    BOOST_TEST(f.feed.stats().oldest_unacknowledged_us == kNow);
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

BOOST_AUTO_TEST_CASE(evicting_a_change_the_bank_never_had_is_counted) {
    Fixture f(256 << 10);
    std::uint64_t room = f.cache.stats().max_sessions;
    for (std::uint32_t n = 0; n < room + 5; ++n) {
        f.add(n, "x");
    }
    BOOST_TEST(f.feed.stats().evicted_unbacked == 5u);
    BOOST_TEST(f.feed.stats().pending == room);
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
