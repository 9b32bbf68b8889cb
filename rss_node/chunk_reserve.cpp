// Chunks mapped with MADV_HUGEPAGE and faulted in by a helper thread, handed out ready.
#include "rss_node/chunk_reserve.h"

#include <cstdint>
#include <new>
#include <sys/mman.h>
#include <unistd.h>

namespace rhythm::node {

ChunkReserve::ChunkReserve(std::size_t depth) : depth_(depth) {
    if (depth_ > 0) {
        helper_ = std::thread([this] { refill(); });
    }
}

ChunkReserve::~ChunkReserve() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wanted_.notify_one();
    if (helper_.joinable()) {
        helper_.join();
    }
    for (void *chunk : ready_) {
        munmap(chunk, kChunkBytes);
    }
}

void *ChunkReserve::map_chunk() {
    // Map twice the size and trim, so the chunk is 2 MiB-aligned: a huge page can back it.
    std::size_t span = 2 * kChunkBytes;
    void *raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        return nullptr;
    }
    auto start = reinterpret_cast<std::uintptr_t>(raw);
    std::uintptr_t aligned = (start + kChunkBytes - 1) & ~(std::uintptr_t{kChunkBytes} - 1);
    if (aligned > start) {
        munmap(raw, aligned - start);
    }
    std::uintptr_t end = aligned + kChunkBytes;
    if (start + span > end) {
        munmap(reinterpret_cast<void *>(end), start + span - end);
    }
    void *chunk = reinterpret_cast<void *>(aligned);
    madvise(chunk, kChunkBytes, MADV_HUGEPAGE);  // advice only: fine where THP is off
    return chunk;
}

void *ChunkReserve::take() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        started_ = true;
        if (!ready_.empty()) {
            void *chunk = ready_.back();
            ready_.pop_back();
            wanted_.notify_one();
            return chunk;
        }
    }
    wanted_.notify_one();
    void *chunk = map_chunk();
    if (chunk == nullptr) {
        throw std::bad_alloc();
    }
    return chunk;
}

std::size_t ChunkReserve::ready() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ready_.size();
}

void ChunkReserve::refill() {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        wanted_.wait(lock, [this] { return stopping_ || (started_ && ready_.size() < depth_); });
        if (stopping_) {
            return;
        }
        lock.unlock();
        char *chunk = static_cast<char *>(map_chunk());
        if (chunk != nullptr) {
            // A write per page faults it in (the whole huge page at once where THP backs it).
            for (std::size_t at = 0; at < kChunkBytes; at += page) {
                static_cast<volatile char *>(chunk)[at] = 0;
            }
        }
        lock.lock();
        if (chunk == nullptr) {
            // The kernel refused: take() maps (and reports) on its own until a chunk is
            // taken again.
            started_ = false;
            continue;
        }
        ready_.push_back(chunk);
    }
}

}  // namespace rhythm::node
