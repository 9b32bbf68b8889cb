// Size-class free lists over huge-page chunks, for session record blocks.
#include "rss_node/block_allocator.h"

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
    void *chunk = reserve_.take();
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
