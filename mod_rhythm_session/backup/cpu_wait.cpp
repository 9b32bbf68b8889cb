// Reading a thread's CPU wait from /proc/thread-self/schedstat (see cpu_wait.h).
#include "backup/cpu_wait.h"

#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

namespace rhythm {

CpuWait::CpuWait() : fd_(open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC)) {
    last_ns_ = total_ns();
}

CpuWait::~CpuWait() {
    if (fd_ >= 0) {
        close(fd_);
    }
}

std::uint64_t CpuWait::total_ns() {
    // "<ns on a CPU> <ns waiting for one> <time slices>\n"
    char text[96];
    ssize_t n = fd_ >= 0 ? pread(fd_, text, sizeof text - 1, 0) : -1;
    if (n <= 0) {
        return last_ns_;
    }
    text[n] = '\0';
    char *end;
    std::strtoull(text, &end, 10);
    return std::strtoull(end, nullptr, 10);
}

std::uint64_t CpuWait::since_last_us() {
    std::uint64_t now_ns = total_ns();
    std::uint64_t waited_ns = now_ns > last_ns_ ? now_ns - last_ns_ : 0;
    last_ns_ = now_ns;
    return waited_ns / 1000;
}

}  // namespace rhythm
