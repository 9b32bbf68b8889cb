// Size-class free lists over huge-page chunks, for session record blocks.
#include "rss_node/block_allocator.h"

#include <cstdint>
#include <cstdlib>
#include <new>
#include <sys/mman.h>

namespace rhythm::node {

BlockAllocator::~BlockAllocator() {
    for (void *chunk : chunks_) {
        munmap(chunk, kChunkBytes);
    }
}

void BlockAllocator::new_chunk() {
    // Map twice the size and trim, so the chunk is 2 MiB-aligned: a huge page can back it.
    std::size_t span = 2 * kChunkBytes;
    void *raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        throw std::bad_alloc();
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
    chunks_.push_back(chunk);
    bump_ = static_cast<char *>(chunk);
    bump_end_ = bump_ + kChunkBytes;
}

void *BlockAllocator::allocate(std::size_t size) {
    std::size_t bytes = rounded(size);
    if (bytes > kMaxChunkedBlock) {
        void *p = std::malloc(bytes);
        if (p == nullptr) {
            throw std::bad_alloc();
        }
        return p;
    }
    void *&head = free_heads_[bytes / kGranule];
    if (head != nullptr) {
        void *p = head;
        head = *static_cast<void **>(p);
        return p;
    }
    if (static_cast<std::size_t>(bump_end_ - bump_) < bytes) {
        // The tail of the old chunk (less than 64 KiB) goes to its size class's free list.
        std::size_t tail = static_cast<std::size_t>(bump_end_ - bump_) & ~(kGranule - 1);
        if (tail >= kGranule) {
            release(bump_, tail);
        }
        new_chunk();
    }
    void *p = bump_;
    bump_ += bytes;
    return p;
}

void BlockAllocator::release(void *block, std::size_t size) {
    std::size_t bytes = rounded(size);
    if (bytes > kMaxChunkedBlock) {
        std::free(block);
        return;
    }
    void *&head = free_heads_[bytes / kGranule];
    *static_cast<void **>(block) = head;
    head = block;
}

}  // namespace rhythm::node
