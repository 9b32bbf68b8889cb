// Memory for the session store's record blocks. Blocks up to 64 KiB are carved from 2 MiB chunks
// (huge pages where the kernel has them, faulted in ahead by a ChunkReserve) and recycled
// through one free list per 16-byte size class; larger ones come from malloc. Why not malloc for
// all: a node that ingests new sessions spends most of its time in page faults and malloc's
// arena lock (shared with ZeroMQ's I/O thread), and huge pages cut the faults by 512. The cost:
// memory of freed blocks is kept for blocks of the same size class rather than given back to the
// kernel.
#pragma once

#include <cstddef>
#include <vector>

#include "rss_node/chunk_reserve.h"

namespace rhythm::node {

class BlockAllocator {
  public:
    static constexpr std::size_t kGranule = 16;
    static constexpr std::size_t kMaxChunkedBlock = 64 * 1024;
    static constexpr std::size_t kChunkBytes = ChunkReserve::kChunkBytes;
    // Chunks kept faulted in ahead: 8 MiB, about 20 ms of the fastest ingest measured.
    static constexpr std::size_t kReserveDepth = 4;

    BlockAllocator() : reserve_(kReserveDepth) {}
    ~BlockAllocator();
    BlockAllocator(const BlockAllocator &) = delete;
    BlockAllocator &operator=(const BlockAllocator &) = delete;

    // The bytes a block of `size` really takes.
    static std::size_t rounded(std::size_t size) { return (size + kGranule - 1) & ~(kGranule - 1); }

    // Throws std::bad_alloc when the kernel refuses memory.
    void *allocate(std::size_t size);
    // `size` must be the size given to allocate().
    void release(void *block, std::size_t size);

    // Memory mapped for chunks (resident once touched), for status and tests.
    std::size_t chunk_bytes() const { return chunks_.size() * kChunkBytes; }

  private:
    void new_chunk();

    ChunkReserve reserve_;
    std::vector<void *> free_heads_ = std::vector<void *>(kMaxChunkedBlock / kGranule + 1);
    std::vector<void *> chunks_;
    char *bump_ = nullptr;
    char *bump_end_ = nullptr;
};

}  // namespace rhythm::node
