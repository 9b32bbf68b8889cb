// Memory chunks for BlockAllocator, mapped and faulted in ahead of need by a helper thread. A
// node that takes in new sessions (a refill, a new server's sessions) otherwise spends half of
// its main thread in the kernel clearing each fresh page on first touch; the helper does that
// clearing while the main thread goes on storing. The reserve starts at the first chunk taken,
// so an idle node holds nothing extra, and then keeps up to `depth` chunks ready: at most
// depth * kChunkBytes of resident memory beyond what the store accounts for.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace rhythm::node {

class ChunkReserve {
  public:
    static constexpr std::size_t kChunkBytes = 2 * 1024 * 1024;

    // depth 0: no helper thread, every chunk is mapped by take() itself.
    explicit ChunkReserve(std::size_t depth);
    ~ChunkReserve();
    ChunkReserve(const ChunkReserve &) = delete;
    ChunkReserve &operator=(const ChunkReserve &) = delete;

    // A zeroed, kChunkBytes-aligned chunk of kChunkBytes, the caller's to munmap. A ready one
    // when there is one; else mapped here. Throws std::bad_alloc when the kernel refuses.
    void *take();

    // Chunks ready now (for tests).
    std::size_t ready() const;

  private:
    static void *map_chunk();  // nullptr when the kernel refuses
    void refill();

    const std::size_t depth_;
    mutable std::mutex mutex_;
    std::condition_variable wanted_;
    std::vector<void *> ready_;
    bool started_ = false;  // a chunk has been taken: keep the reserve full from now on
    bool stopping_ = false;
    std::thread helper_;
};

}  // namespace rhythm::node
