// The session segment: index, LRU eviction, expiry, and the FIFO per-session lock, including
// across processes (fork) and with a holder that is killed.
#include "core/session_cache.h"

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstring>
#include <signal.h>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using rhythm::CacheStats;
using rhythm::SessionCache;
using rhythm::SessionId;

namespace {

constexpr std::int64_t kNow = 1'700'000'000'000'000;  // microseconds

// A cache in a shared anonymous mapping, so that forked children share it.
struct SharedCache {
    explicit SharedCache(std::size_t bytes, std::uint32_t waiters = 64) : bytes(bytes) {
        base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        BOOST_REQUIRE(base != MAP_FAILED);
        std::string why;
        BOOST_REQUIRE_MESSAGE(SessionCache::format(base, bytes, waiters, &why), why);
        BOOST_REQUIRE_MESSAGE(SessionCache::attach(base, bytes, &cache, &why), why);
    }
    ~SharedCache() { munmap(base, bytes); }
    std::size_t bytes;
    void *base;
    SessionCache cache;
};

void *heap_allocate(void *, std::size_t n) {
    return std::malloc(n);
}

SessionId make_id(std::uint32_t n) {
    SessionId id;
    // Spread over buckets like random IDs would, yet reproducible.
    std::uint64_t x = n * 0x9E3779B97F4A7C15ULL + 1;
    std::memcpy(id.bytes.data(), &x, 8);
    std::memcpy(id.bytes.data() + 8, &n, 4);
    return id;
}

std::uint64_t insert(SessionCache &c, const SessionId &id, const std::string &data,
                     std::int64_t expiry = 0) {
    std::uint64_t version = 0;
    BOOST_REQUIRE((c.insert(id, data.data(), data.size(), expiry, kNow, &version) ==
                   SessionCache::Save::kSaved));
    return version;
}

// Acquires, returns the data (or "<none>") and releases.
std::string peek(SessionCache &c, const SessionId &id, std::int64_t now = kNow) {
    SessionCache::Handle h;
    SessionCache::Loaded loaded;
    auto r =
        c.acquire(id, rhythm::current_process(), now, 1000, &h, heap_allocate, nullptr, &loaded);
    if (r != SessionCache::Acquire::kLocked) {
        return "<none>";
    }
    std::string out(loaded.data, loaded.size);
    std::free(loaded.data);
    c.release(&h);
    return out;
}

long elapsed_ms(std::chrono::steady_clock::time_point since) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - since)
                                 .count());
}

// Takes the session's lock, which must be free.
SessionCache::Handle lock(SessionCache &c, const SessionId &id) {
    SessionCache::Handle h;
    SessionCache::Loaded loaded;
    BOOST_REQUIRE((c.acquire(id, rhythm::current_process(), kNow, 100, &h, heap_allocate, nullptr,
                             &loaded) == SessionCache::Acquire::kLocked));
    std::free(loaded.data);
    return h;
}

// Forks a child that takes the session's lock and holds it until it is killed; returns once the
// child holds it.
pid_t fork_lock_holder(SessionCache &c, const SessionId &id) {
    int ready[2];
    BOOST_REQUIRE(pipe(ready) == 0);
    pid_t pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        SessionCache::Handle h;
        SessionCache::Loaded l;
        c.acquire(id, rhythm::current_process(), kNow, 1000, &h, heap_allocate, nullptr, &l);
        char x = 1;
        (void)!write(ready[1], &x, 1);
        pause();
        _exit(0);
    }
    char x;
    BOOST_REQUIRE(read(ready[0], &x, 1) == 1);
    close(ready[0]);
    close(ready[1]);
    return pid;
}

template <typename Condition>
bool eventually(Condition condition, int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return condition();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(session_cache)

BOOST_AUTO_TEST_CASE(attach_refuses_foreign_or_resized_segments) {
    SharedCache s(1 << 20);
    SessionCache other;
    std::string why;
    BOOST_TEST(!SessionCache::attach(s.base, (1 << 20) - 4096, &other, &why));
    BOOST_TEST(why.find("formatted for") != std::string::npos);
    std::vector<unsigned char> junk(1 << 16, 0xAB);
    BOOST_TEST(!SessionCache::attach(junk.data(), junk.size(), &other, &why));
    BOOST_TEST(why.find("does not hold") != std::string::npos);
    BOOST_TEST(!SessionCache::format(junk.data(), 1024, 64, &why));
    BOOST_TEST(why.find("too small") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(insert_acquire_save_release) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    SessionId id = make_id(1);
    BOOST_TEST(insert(c, id, "count=1") == 1u);

    SessionCache::Handle h;
    SessionCache::Loaded loaded;
    BOOST_REQUIRE((c.acquire(id, rhythm::current_process(), kNow, 100, &h, heap_allocate, nullptr,
                             &loaded) == SessionCache::Acquire::kLocked));
    BOOST_TEST(std::string(loaded.data) == "count=1");
    BOOST_TEST(loaded.version == 1u);
    std::free(loaded.data);
    std::string bigger(5000, 'z');
    std::uint64_t version = 0;
    BOOST_TEST((c.save_and_release(&h, bigger.data(), bigger.size(), 0, kNow, &version) ==
                SessionCache::Save::kSaved));
    BOOST_TEST(version == 2u);
    BOOST_TEST(!h.held());
    BOOST_TEST(peek(c, id) == bigger);

    CacheStats st = c.stats();
    BOOST_TEST(st.sessions == 1u);
    BOOST_TEST(st.payload_bytes == 5000u);
    BOOST_TEST(st.hits == 2u);
    BOOST_TEST(st.saves == 2u);
    BOOST_TEST(peek(c, make_id(2)) == "<none>");
    BOOST_TEST(c.stats().misses == 1u);
    BOOST_TEST((c.insert(id, "x", 1, 0, kNow, &version) == SessionCache::Save::kDuplicate));
}

BOOST_AUTO_TEST_CASE(erase_removes_and_frees) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    SessionId id = make_id(7);
    insert(c, id, std::string(1000, 'a'));
    SessionCache::Handle h = lock(c, id);
    c.erase_and_release(&h, kNow);
    BOOST_TEST(peek(c, id) == "<none>");
    CacheStats st = c.stats();
    BOOST_TEST(st.sessions == 0u);
    BOOST_TEST(st.arena_bytes_used == 0u);
    BOOST_TEST(st.deletions == 1u);
}

BOOST_AUTO_TEST_CASE(a_renewal_moves_the_session_to_its_new_id_and_deletes_the_old_one) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    c.set_backup_enabled(true);  // the old ID stays a tombstone, for the bank
    SessionId before = make_id(7);
    SessionId after = make_id(8);
    SessionId taken = make_id(9);
    insert(c, before, "count=3");
    insert(c, taken, "someone else's");
    SessionCache::Handle h = lock(c, before);
    // An ID in use is refused, and the session stays locked for another try.
    BOOST_TEST((c.renew_and_release(&h, taken, "count=4&user=alice", 18, 0, kNow) ==
                SessionCache::Save::kDuplicate));
    BOOST_TEST(h.held());
    BOOST_TEST(peek(c, taken) == "someone else's");
    BOOST_TEST((c.renew_and_release(&h, after, "count=4&user=alice", 18, 0, kNow) ==
                SessionCache::Save::kSaved));
    BOOST_TEST(!h.held());
    BOOST_TEST(peek(c, after) == "count=4&user=alice");
    SessionCache::Handle old;
    SessionCache::Loaded loaded;
    BOOST_TEST((c.acquire(before, rhythm::current_process(), kNow, 1000, &old, heap_allocate,
                          nullptr, &loaded) == SessionCache::Acquire::kDeleted));
    CacheStats st = c.stats();
    BOOST_TEST(st.renewals == 1u);
    BOOST_TEST(st.deletions == 1u);
}

BOOST_AUTO_TEST_CASE(full_cache_evicts_least_recently_used) {
    SharedCache s(256 << 10);
    SessionCache &c = s.cache;
    std::uint64_t room = c.stats().max_sessions;
    std::string data(100, 'd');
    std::uint32_t n = static_cast<std::uint32_t>(room) + 50;
    for (std::uint32_t i = 0; i < n; ++i) {
        insert(c, make_id(i), data);
        if (i + 1 == room) {
            // Session 0 becomes the most recent just before the cache is full: it must survive
            // while the sessions inserted after it, but used before it, are evicted.
            BOOST_TEST(peek(c, make_id(0)) == data);
        }
    }
    CacheStats st = c.stats();
    BOOST_TEST(st.sessions == room);
    BOOST_TEST(st.evictions == 50u);
    BOOST_TEST(peek(c, make_id(0)) == data);
    BOOST_TEST(peek(c, make_id(1)) == "<none>");
    BOOST_TEST(peek(c, make_id(n - 1)) == data);
}

BOOST_AUTO_TEST_CASE(with_backup_off_eviction_is_plain_lru_whatever_the_unbacked_policy) {
    SharedCache s(256 << 10);
    SessionCache &c = s.cache;
    c.set_evict_unbacked(false);  // concerns only sessions the bank lacks: none without backup
    std::uint64_t room = c.stats().max_sessions;
    for (std::uint32_t i = 0; i < room; ++i) {
        insert(c, make_id(i), "x");
    }
    BOOST_TEST(peek(c, make_id(0)) == "x");  // the most recently used now
    for (std::uint32_t i = 0; i < 3; ++i) {
        insert(c, make_id(1000 + i), "y");
    }
    BOOST_TEST(c.stats().evictions == 3u);
    BOOST_TEST(peek(c, make_id(0)) == "x");
    BOOST_TEST(peek(c, make_id(1)) == "<none>");
    BOOST_TEST(peek(c, make_id(3)) == "<none>");
    BOOST_TEST(peek(c, make_id(4)) == "x");
}

BOOST_AUTO_TEST_CASE(switching_backup_on_or_off_files_every_session_again) {
    SharedCache s(256 << 10);
    SessionCache &c = s.cache;
    std::uint64_t room = c.stats().max_sessions;
    for (std::uint32_t i = 0; i < room; ++i) {
        insert(c, make_id(i), "x");
    }
    // Backup on: no session was ever acknowledged by a bank, so none may be evicted.
    c.set_backup_enabled(true);
    std::uint64_t v = 0;
    BOOST_TEST((c.insert(make_id(5000), "n", 1, 0, kNow, &v) == SessionCache::Save::kUnbackedOnly));
    BOOST_TEST(c.stats().evictions == 0u);
    BOOST_TEST(c.stats().no_space == 0u);  // a refusal of its own, not "full of sessions in use"
    BOOST_TEST(peek(c, make_id(0)) == "x");
    // Backup off again: every session is evictable, least recently used first.
    c.set_backup_enabled(false);
    insert(c, make_id(5000), "n");
    BOOST_TEST(c.stats().evictions == 1u);
    BOOST_TEST(peek(c, make_id(1)) == "<none>");
    BOOST_TEST(peek(c, make_id(0)) == "x");
}

BOOST_AUTO_TEST_CASE(locked_sessions_are_not_evicted_and_old_version_survives_no_space) {
    SharedCache s(256 << 10);
    SessionCache &c = s.cache;
    CacheStats st = c.stats();
    std::size_t arena = st.arena_bytes;
    SessionId big = make_id(1);
    insert(c, big, std::string(arena / 2, 'o'));
    SessionCache::Handle h = lock(c, big);
    // Others fill the rest; the locked one stays.
    for (std::uint32_t i = 2; i < 200; ++i) {
        std::uint64_t v;
        c.insert(make_id(i), std::string(2000, 'f').data(), 2000, 0, kNow, &v);
    }
    // Saving something larger than what can ever be free keeps the old version.
    std::string huge(arena / 2 + 4096, 'n');
    std::uint64_t version = 0;
    BOOST_TEST((c.save_and_release(&h, huge.data(), huge.size(), 0, kNow, &version) ==
                SessionCache::Save::kNoSpace));
    BOOST_TEST(peek(c, big) == std::string(arena / 2, 'o'));
    BOOST_TEST(c.stats().no_space == 1u);
}

BOOST_AUTO_TEST_CASE(expired_sessions_are_never_served_and_are_reclaimed) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    insert(c, make_id(1), "a=1", kNow + 1000);
    insert(c, make_id(2), "b=2", kNow + 1000);
    insert(c, make_id(3), "c=3", 0);
    BOOST_TEST(peek(c, make_id(1), kNow) == "a=1");
    // Found expired on lookup.
    BOOST_TEST(peek(c, make_id(1), kNow + 2000) == "<none>");
    BOOST_TEST(c.stats().expirations == 1u);
    // Reclaimed by the sweep without anyone asking.
    BOOST_TEST(c.sweep_expired(kNow + 2000, 1u << 20) == 1u);
    CacheStats st = c.stats();
    BOOST_TEST(st.sessions == 1u);
    BOOST_TEST(st.expirations == 2u);
    BOOST_TEST(peek(c, make_id(3), kNow + 1'000'000'000) == "c=3");
}

BOOST_AUTO_TEST_CASE(a_waiter_times_out_and_changes_nothing) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    SessionId id = make_id(1);
    insert(c, id, "v=1");
    SessionCache::Handle holder = lock(c, id);
    SessionCache::Handle waiter;
    SessionCache::Loaded loaded;
    auto start = std::chrono::steady_clock::now();
    BOOST_TEST((c.acquire(id, rhythm::current_process(), kNow, 200, &waiter, heap_allocate, nullptr,
                          &loaded) == SessionCache::Acquire::kTimedOut));
    long waited = elapsed_ms(start);
    BOOST_TEST(waited >= 200);
    BOOST_TEST(waited < 1500);
    BOOST_TEST(!waiter.held());
    CacheStats st = c.stats();
    BOOST_TEST(st.lock_waits == 1u);
    BOOST_TEST(st.lock_timeouts == 1u);
    c.release(&holder);
    BOOST_TEST(peek(c, id) == "v=1");
}

BOOST_AUTO_TEST_CASE(threads_increment_without_losing_updates) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    SessionId id = make_id(1);
    insert(c, id, "0");
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 500; ++i) {
                SessionCache::Handle h;
                SessionCache::Loaded loaded;
                BOOST_REQUIRE(
                    (c.acquire(id, rhythm::current_process(), kNow, 10000, &h, heap_allocate,
                               nullptr, &loaded) == SessionCache::Acquire::kLocked));
                std::string next = std::to_string(std::stoi(loaded.data) + 1);
                std::free(loaded.data);
                std::uint64_t v;
                c.save_and_release(&h, next.data(), next.size(), 0, kNow, &v);
            }
        });
    }
    for (auto &t : threads) {
        t.join();
    }
    BOOST_TEST(peek(c, id) == "4000");
}

// Children queue on one session in a known order; each appends its number to a shared log
// when it gets the lock. The log must come out in arrival order.
BOOST_AUTO_TEST_CASE(lock_is_granted_in_arrival_order_across_processes) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    SessionId id = make_id(42);
    insert(c, id, "");
    auto *log = static_cast<std::atomic<int> *>(
        mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    BOOST_REQUIRE(log != MAP_FAILED);
    new (&log[0]) std::atomic<int>(0);

    SessionCache::Handle holder = lock(c, id);

    constexpr int kChildren = 6;
    std::vector<pid_t> children;
    for (int n = 0; n < kChildren; ++n) {
        pid_t pid = fork();
        BOOST_REQUIRE(pid >= 0);
        if (pid == 0) {
            SessionCache::Handle h;
            SessionCache::Loaded l;
            if (c.acquire(id, rhythm::current_process(), kNow, 20000, &h, heap_allocate, nullptr,
                          &l) != SessionCache::Acquire::kLocked) {
                _exit(2);
            }
            int slot = log[0].fetch_add(1) + 1;
            new (&log[slot]) std::atomic<int>(n);
            c.release(&h);
            _exit(0);
        }
        children.push_back(pid);
        // The next child forks only once this one is in the queue.
        BOOST_REQUIRE(eventually([&] { return c.stats().lock_waits == std::uint64_t(n + 1); }));
    }
    c.release(&holder);
    for (pid_t pid : children) {
        int status = 0;
        waitpid(pid, &status, 0);
        BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    }
    BOOST_REQUIRE(log[0].load() == kChildren);
    for (int n = 0; n < kChildren; ++n) {
        BOOST_TEST(log[n + 1].load() == n);
    }
    munmap(log, 4096);
}

BOOST_AUTO_TEST_CASE(lock_of_a_killed_holder_is_reclaimed) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    SessionId id = make_id(9);
    insert(c, id, "v=1");
    pid_t pid = fork_lock_holder(c, id);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    auto start = std::chrono::steady_clock::now();
    BOOST_TEST(peek(c, id) == "v=1");
    BOOST_TEST(elapsed_ms(start) < 500);
    BOOST_TEST(c.stats().locks_reclaimed == 1u);
}

BOOST_AUTO_TEST_CASE(a_queued_waiter_takes_over_when_the_holder_is_killed) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    SessionId id = make_id(10);
    insert(c, id, "v=1");
    pid_t pid = fork_lock_holder(c, id);
    std::thread killer([&] {
        // Kill once this process is queued behind the child.
        eventually([&] { return c.stats().lock_waits == 1u; });
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
    });
    SessionCache::Handle h;
    SessionCache::Loaded l;
    auto start = std::chrono::steady_clock::now();
    BOOST_TEST((c.acquire(id, rhythm::current_process(), kNow, 5000, &h, heap_allocate, nullptr,
                          &l) == SessionCache::Acquire::kLocked));
    BOOST_TEST(elapsed_ms(start) < 2000);
    killer.join();
    std::free(l.data);
    c.release(&h);
    BOOST_TEST(c.stats().locks_reclaimed == 1u);
}

BOOST_AUTO_TEST_CASE(waiters_of_a_deleted_session_get_not_found) {
    SharedCache s(1 << 20);
    SessionCache &c = s.cache;
    SessionId id = make_id(11);
    insert(c, id, "v=1");
    SessionCache::Handle holder = lock(c, id);
    std::atomic<int> result{-1};
    std::thread waiter([&] {
        SessionCache::Handle h;
        SessionCache::Loaded l;
        result = static_cast<int>(
            c.acquire(id, rhythm::current_process(), kNow, 5000, &h, heap_allocate, nullptr, &l));
    });
    BOOST_REQUIRE(eventually([&] { return c.stats().lock_waits == 1u; }));
    c.erase_and_release(&holder, kNow);
    waiter.join();
    BOOST_TEST(result.load() == static_cast<int>(SessionCache::Acquire::kNotFound));
    // The entry went back to the free list: the cache is empty and reusable.
    BOOST_TEST(c.stats().sessions == 0u);
    insert(c, id, "v=2");
    BOOST_TEST(peek(c, id) == "v=2");
}

BOOST_AUTO_TEST_SUITE_END()
