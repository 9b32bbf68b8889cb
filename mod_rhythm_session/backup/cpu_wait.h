// How long the calling thread has waited for a CPU: runnable, but another task ran. The kernel
// keeps it per thread (/proc/thread-self/schedstat, its second field); a thread that waits for a
// CPU at a lower priority than httpd's means the CPUs are busy with requests.
#pragma once

#include <cstdint>

namespace rhythm {

class CpuWait {
  public:
    // Opens the calling thread's schedstat: construct it on the thread to measure.
    CpuWait();
    ~CpuWait();
    CpuWait(const CpuWait &) = delete;
    CpuWait &operator=(const CpuWait &) = delete;

    // Microseconds waited since the previous call (since construction, the first time). 0 where
    // the kernel does not keep the figure.
    std::uint64_t since_last_us();

  private:
    std::uint64_t total_ns();

    int fd_ = -1;
    std::uint64_t last_ns_ = 0;
};

}  // namespace rhythm
