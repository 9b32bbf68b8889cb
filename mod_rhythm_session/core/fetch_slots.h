// At most kFetchSlots failover fetches wait for the bank at once, counted by the workers
// themselves in the session segment, so that the bound holds whatever the backup agent is doing:
// the agent sheds past its own 32 too, but hung it would hold every worker that asked for its
// whole SessionBackupTimeout. A slot holds the monotonic time until which it is taken, so one
// taken by a worker that died while waiting is free again after that time. Taken and given back
// with atomic operations: no lock, no system call.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/shm_sync.h"

namespace rhythm {

constexpr std::size_t kFetchSlots = 32;

// In the segment: plain data (zero: free).
struct FetchSlots {
    SharedWord<std::int64_t> taken_until_us[kFetchSlots];
};

// Takes a slot that is free at `now_us` until `until_us`; -1 when every one is taken.
inline int take_fetch_slot(FetchSlots *slots, std::int64_t now_us, std::int64_t until_us) {
    for (std::size_t i = 0; i < kFetchSlots; ++i) {
        std::int64_t until = slots->taken_until_us[i].load(std::memory_order_relaxed);
        if (until <= now_us && slots->taken_until_us[i].compare_exchange(until, until_us)) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

inline void give_back_fetch_slot(FetchSlots *slots, int slot) {
    slots->taken_until_us[slot].store(0, std::memory_order_release);
}

}  // namespace rhythm
