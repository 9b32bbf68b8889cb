// Robust process-shared mutex and raw futex calls. The futexes are deliberately not
// FUTEX_PRIVATE: waiter and waker are different processes mapping the same segment.
#include "shm_sync.h"

#include <cerrno>
#include <climits>
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

void futex_wait(std::atomic<std::uint32_t> *word, std::uint32_t expected,
                std::uint64_t timeout_us) {
    struct timespec ts;
    ts.tv_sec = static_cast<time_t>(timeout_us / 1000000);
    ts.tv_nsec = static_cast<long>((timeout_us % 1000000) * 1000);
    syscall(SYS_futex, reinterpret_cast<std::uint32_t *>(word), FUTEX_WAIT, expected, &ts, nullptr,
            0);
}

void futex_wake_all(std::atomic<std::uint32_t> *word) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t *>(word), FUTEX_WAKE, INT_MAX, nullptr,
            nullptr, 0);
}

bool process_is_gone(std::int32_t pid) {
    return kill(pid, 0) != 0 && errno == ESRCH;
}

}  // namespace rhythm
