// Robust process-shared mutex and raw futex calls. The futexes are deliberately not
// FUTEX_PRIVATE: waiter and waker are different processes mapping the same segment.
#include "shm_sync.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace rhythm {

bool ShmMutex::init() {
    pthread_mutexattr_t attr;
    if (pthread_mutexattr_init(&attr) != 0) {
        return false;
    }
    bool ok = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) == 0 &&
              pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) == 0 &&
              pthread_mutex_init(&mutex_, &attr) == 0;
    pthread_mutexattr_destroy(&attr);
    recovered_ = 0;
    return ok;
}

void ShmMutex::lock() {
    int rc = pthread_mutex_lock(&mutex_);
    if (rc == EOWNERDEAD) {
        // The holder died mid-section. Every section keeps the structures valid at each store
        // that another process could observe, so the state is usable as it is.
        pthread_mutex_consistent(&mutex_);
        ++recovered_;
    }
}

void ShmMutex::unlock() {
    pthread_mutex_unlock(&mutex_);
}

void futex_wait(SharedWord<std::uint32_t> *word, std::uint32_t expected, std::uint64_t timeout_us) {
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(timeout_us / 1000000);
    ts.tv_nsec = static_cast<long>((timeout_us % 1000000) * 1000);
    syscall(SYS_futex, &word->value, FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futex_wake_all(SharedWord<std::uint32_t> *word) {
    syscall(SYS_futex, &word->value, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

namespace {

// Reads the state letter and the start time (fields 3 and 22) of /proc/PID/stat.
bool read_process_stat(std::int32_t pid, char *state, std::uint64_t *start_ticks) {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    std::FILE *f = std::fopen(path, "re");
    if (!f) {
        return false;
    }
    char buf[1024];
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    const char *p = std::strrchr(buf, ')');
    if (!p || p[1] != ' ') {
        return false;
    }
    p += 2;
    *state = *p;
    for (int field = 3; field < 22; ++field) {
        p = std::strchr(p, ' ');
        if (!p) {
            return false;
        }
        ++p;
    }
    *start_ticks = std::strtoull(p, nullptr, 10);
    return true;
}

}  // namespace

ProcessIdentity current_process() {
    ProcessIdentity me;
    me.pid = static_cast<std::int32_t>(getpid());
    char state;
    read_process_stat(me.pid, &state, &me.start_ticks);
    return me;
}

bool process_is_gone(const ProcessIdentity &process) {
    char state;
    std::uint64_t start_ticks;
    if (!read_process_stat(process.pid, &state, &start_ticks)) {
        // No /proc entry: gone, unless /proc itself is missing and the PID still answers.
        return kill(process.pid, 0) != 0 && errno == ESRCH;
    }
    return state == 'Z' || start_ticks != process.start_ticks;
}

}  // namespace rhythm
