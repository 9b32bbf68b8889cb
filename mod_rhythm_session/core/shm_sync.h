// Synchronisation primitives that live inside a shared-memory segment and work across processes:
// a robust mutex (a holder that dies does not wedge it) and futex waits on a 32-bit word.
#pragma once

#include <atomic>
#include <cstdint>
#include <pthread.h>

namespace rhythm {

// A process-shared, robust pthread mutex. Held only for short, bounded critical sections.
class ShmMutex {
  public:
    // Initialises the mutex in place; call once, when the segment is formatted.
    bool init();
    // Takes the mutex. If the previous holder died inside its critical section, the mutex is
    // made consistent again and `recovered()` counts it.
    void lock();
    void unlock();
    std::uint64_t recovered() const { return recovered_; }

  private:
    pthread_mutex_t mutex_;
    std::uint64_t recovered_;
};

class ShmMutexGuard {
  public:
    explicit ShmMutexGuard(ShmMutex &mutex) : mutex_(mutex) { mutex_.lock(); }
    ~ShmMutexGuard() { mutex_.unlock(); }
    ShmMutexGuard(const ShmMutexGuard &) = delete;
    ShmMutexGuard &operator=(const ShmMutexGuard &) = delete;

  private:
    ShmMutex &mutex_;
};

// A word of shared memory that several processes read and write at once: a plain integer, so
// that the structures holding it stay trivially copyable (segment.h asserts they are), read and
// written through the compiler's atomic builtins as std::atomic would.
template <typename T>
struct SharedWord {
    T value;

    T load(std::memory_order order) const { return __atomic_load_n(&value, int(order)); }
    void store(T v, std::memory_order order) { __atomic_store_n(&value, v, int(order)); }
    T exchange(T v, std::memory_order order) { return __atomic_exchange_n(&value, v, int(order)); }
    // Sets `desired` if the word still holds `expected`; else `expected` gets what it holds.
    bool compare_exchange(T &expected, T desired) {
        return __atomic_compare_exchange_n(&value, &expected, desired, false, __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE);
    }
};

// Sleeps while `*word == expected`, at most `timeout_us`. Spurious wake-ups are possible: the
// caller re-checks its condition.
void futex_wait(SharedWord<std::uint32_t> *word, std::uint32_t expected, std::uint64_t timeout_us);

// Wakes every process sleeping on `word`.
void futex_wake_all(SharedWord<std::uint32_t> *word);

// A process, told apart from a later one that reuses its PID by its start time.
struct ProcessIdentity {
    std::int32_t pid = 0;  // 0: nobody
    std::uint64_t start_ticks = 0;
};

// The calling process. Reads /proc: call it once at start-up, not per request.
ProcessIdentity current_process();

// True when that process has ended: its PID is free, belongs to a newer process, or is a zombie.
bool process_is_gone(const ProcessIdentity &process);

}  // namespace rhythm
