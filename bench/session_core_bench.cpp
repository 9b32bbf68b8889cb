// Microbenchmark of the session core: one request's worth of work (acquire with copy-out, then
// save of a new version with release) on 1 KiB sessions, on one thread, against a 64M segment.
// Prints operations per second beside the target of 1 million.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include "core/session_cache.h"

namespace {

// A bump allocator reset per operation, like the request pool httpd hands the module.
struct Bump {
    std::vector<char> buffer = std::vector<char>(1 << 16);
    std::size_t used = 0;
};

void *bump_allocate(void *context, std::size_t bytes) {
    auto *b = static_cast<Bump *>(context);
    void *p = b->buffer.data() + b->used;
    b->used += (bytes + 15) & ~static_cast<std::size_t>(15);
    return p;
}

}  // namespace

int main(int argc, char **argv) {
    const std::size_t segment_bytes = 64u << 20;
    const std::uint32_t sessions = 20000;
    const std::uint64_t operations = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 3000000;
    void *base =
        mmap(nullptr, segment_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    std::string why;
    rhythm::SessionCache cache;
    if (base == MAP_FAILED || !rhythm::SessionCache::format(base, segment_bytes, 1024, &why) ||
        !rhythm::SessionCache::attach(base, segment_bytes, &cache, &why)) {
        std::fprintf(stderr, "cannot make the segment: %s\n", why.c_str());
        return 1;
    }
    const std::int64_t now = 1'700'000'000'000'000;
    std::vector<rhythm::SessionId> ids(sessions);
    std::string data(1024, 'v');
    for (auto &id : ids) {
        rhythm::generate_session_id(&id);
        std::uint64_t version;
        cache.insert(id, data.data(), data.size(), 0, now, &version);
    }
    std::mt19937 rng(42);
    std::uniform_int_distribution<std::uint32_t> pick(0, sessions - 1);
    std::vector<std::uint32_t> order(1 << 16);
    for (auto &o : order) {
        o = pick(rng);
    }
    Bump bump;
    const rhythm::ProcessIdentity me = rhythm::current_process();
    auto start = std::chrono::steady_clock::now();
    std::uint64_t failures = 0;
    for (std::uint64_t n = 0; n < operations; ++n) {
        bump.used = 0;
        rhythm::SessionCache::Handle h;
        rhythm::SessionCache::Loaded loaded;
        if (cache.acquire(ids[order[n & 0xFFFF]], me, now, 1000, &h, bump_allocate, &bump,
                          &loaded) != rhythm::SessionCache::Acquire::kLocked) {
            ++failures;
            continue;
        }
        loaded.data[0] = static_cast<char>('a' + n % 26);  // a changed session
        std::uint64_t version;
        cache.save_and_release(&h, loaded.data, loaded.size, 0, now, &version);
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double rate = static_cast<double>(operations) / seconds;
    std::printf("session core, get + put of a 1 KiB session, one thread, %u sessions in 64M:\n",
                sessions);
    std::printf("  %.0f operations/s (%.0f ns each)   target >= 1000000   %s\n", rate, 1e9 / rate,
                rate >= 1e6 ? "met" : "NOT met");
    if (failures) {
        std::printf("  %llu operations failed\n", static_cast<unsigned long long>(failures));
        return 1;
    }
    return 0;
}
