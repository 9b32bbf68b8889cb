// Benchmark harness for write-behind backup: a session segment with the real backup agent in a
// forked process (as httpd runs it), publishing to the rss_node(s) given on the command line.
//
//   backup_bench lag RATE WARMUP SECONDS NODE...
//                                           saves of 1 KiB sessions at RATE per second, from
//                                           idle, for WARMUP seconds and then SECONDS more;
//                                           prints the save-to-acknowledgement lag of each part
//   backup_bench fill COUNT NODE...         stores COUNT 1 KiB sessions, waits until the bank
//                                           acknowledged them all, prints "filled", then keeps the
//                                           agent running until standard input closes
// bench/backup.py drives it and prints the figures beside their targets.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <signal.h>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "backup/backup_agent.h"
#include "common/clock.h"
#include "core/backup_feed.h"
#include "core/session_cache.h"

namespace {

using Clock = std::chrono::steady_clock;

volatile int g_stop = 0;

void quiet_log(rhythm::AgentLogLevel level, const char *message) {
    if (level >= rhythm::AgentLogLevel::kWarn) {
        std::fprintf(stderr, "agent: %s\n", message);
    }
}

// A request's time, as httpd gives it (r->request_time): the wall clock in microseconds.
std::int64_t wall_us() {
    return rhythm::WallTime::now().us();
}

void *heap(void *, std::size_t n) {
    return std::malloc(n);
}

pid_t fork_agent(rhythm::SessionCache cache, const std::vector<std::string> &nodes) {
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGTERM, [](int) { g_stop = 1; });
        rhythm::AgentConfig config;
        config.server_id = "bench";
        config.nodes = nodes;
        {
            rhythm::BackupAgent agent(cache, config, quiet_log);
            agent.run(&g_stop);
        }
        _exit(0);
    }
    return pid;
}

template <typename Condition>
bool wait_until(Condition condition, int seconds) {
    auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < deadline) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: backup_bench lag RATE WARMUP SECONDS NODE... | fill COUNT NODE...\n");
        return 2;
    }
    std::string mode = argv[1];
    bool lag = mode == "lag";
    int first_node = lag ? 5 : 3;
    std::vector<std::string> nodes(argv + first_node, argv + argc);
    std::uint64_t count = std::strtoull(argv[2], nullptr, 10);

    const std::size_t bytes = 512u << 20;
    void *base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    std::string why;
    rhythm::SessionCache cache;
    if (base == MAP_FAILED || !rhythm::SessionCache::format(base, bytes, 64, &why) ||
        !rhythm::SessionCache::attach(base, bytes, &cache, &why)) {
        std::fprintf(stderr, "segment: %s\n", why.c_str());
        return 1;
    }
    cache.set_backup_enabled(true);
    rhythm::BackupFeed feed(cache);
    pid_t agent = fork_agent(cache, nodes);
    std::string data(1024, 'd');
    int status = 0;

    if (lag) {
        double warmup = std::strtod(argv[3], nullptr);
        double seconds = std::strtod(argv[4], nullptr);
        std::vector<rhythm::SessionId> ids(10000);
        for (auto &id : ids) {
            rhythm::generate_session_id(&id);
            std::uint64_t v;
            cache.insert(id, data.data(), data.size(), 0, wall_us(), &v);
        }
        wait_until([&] { return feed.stats().nodes_up > 0 && feed.stats().pending == 0; }, 20);
        wait_until([&] { return feed.stats().oldest_unacknowledged == rhythm::WallTime(); }, 20);
        auto interval = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / count));
        rhythm::ProcessIdentity me = rhythm::current_process();
        std::uint64_t next_id = 0;
        // Saves at RATE for `duration`; returns how many.
        auto save_at_rate = [&](double duration) {
            auto start = Clock::now();
            std::uint64_t saves = 0;
            while (Clock::now() - start < std::chrono::duration<double>(duration)) {
                auto due = start + interval * saves;
                if (Clock::now() < due) {
                    std::this_thread::sleep_until(due);
                }
                rhythm::SessionCache::Handle h;
                rhythm::SessionCache::Loaded l;
                const rhythm::SessionId &id = ids[next_id++ % ids.size()];
                if (cache.acquire(id, me, wall_us(), 1000, &h, heap, nullptr, &l) ==
                    rhythm::SessionCache::Acquire::kLocked) {
                    std::free(l.data);
                    std::uint64_t v;
                    cache.save_and_release(&h, data.data(), data.size(), 0, wall_us(), &v);
                }
                ++saves;
            }
            return saves;
        };
        // On a virtual machine the first tenths of a second after an idle spell are slower
        // (every process wakes late from its idle halts until the host adapts): the warm-up's
        // lag is reported apart from the steady rate's.
        feed.rotate_lag_window();
        feed.rotate_lag_window();
        save_at_rate(warmup);
        rhythm::BackupStats from_idle = feed.stats();
        feed.rotate_lag_window();
        feed.rotate_lag_window();
        auto start = Clock::now();
        std::uint64_t saves = save_at_rate(seconds);
        double took = std::chrono::duration<double>(Clock::now() - start).count();
        bool settled = wait_until(
            [&] { return feed.stats().oldest_unacknowledged == rhythm::WallTime(); }, 30);
        rhythm::BackupStats s = feed.stats();
        std::printf(
            "RESULT rate=%.0f saves=%llu acknowledged=%llu p50_us=%llu p99_us=%llu "
            "warmup_p99_us=%llu settled=%d\n",
            static_cast<double>(saves) / took, static_cast<unsigned long long>(saves),
            static_cast<unsigned long long>(s.lag_samples),
            static_cast<unsigned long long>(s.lag_p50_us),
            static_cast<unsigned long long>(s.lag_p99_us),
            static_cast<unsigned long long>(from_idle.lag_p99_us), settled ? 1 : 0);
        status = settled ? 0 : 1;
    } else {
        for (std::uint64_t n = 0; n < count; ++n) {
            rhythm::SessionId id;
            rhythm::generate_session_id(&id);
            std::uint64_t v;
            cache.insert(id, data.data(), data.size(), 0, wall_us(), &v);
        }
        bool acked = wait_until(
            [&] {
                rhythm::BackupStats s = feed.stats();
                return s.pending == 0 && s.oldest_unacknowledged == rhythm::WallTime() &&
                       s.nodes_up > 0;
            },
            300);
        std::printf("%s\n", acked ? "filled" : "not acknowledged");
        std::fflush(stdout);
        char buf[64];
        while (std::fgets(buf, sizeof buf, stdin)) {
        }
        status = acked ? 0 : 1;
    }
    kill(agent, SIGTERM);
    waitpid(agent, nullptr, 0);
    return status;
}
