// The arena that holds session data: fixed-size chunks chained by index. A session of n bytes
// takes ceil(n / kChunkBytes) chunks, so allocation and release cost O(n), never O(cache), and
// the arena cannot fragment: any free chunk serves any session. Everything is an index into
// arrays placed in the shared segment; nothing is a pointer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rhythm {

inline constexpr std::uint32_t kNoIndex = 0xFFFFFFFFu;

// Lives in the segment header.
struct ChunkArenaState {
    std::uint32_t chunk_count;
    std::uint32_t free_head;
    std::uint32_t free_count;
};

class ChunkArena {
  public:
    static constexpr std::size_t kChunkBytes = 128;

    // Segment bytes needed for `chunks` chunks (their data plus their chain links).
    static constexpr std::size_t bytes_for(std::uint32_t chunks) {
        return static_cast<std::size_t>(chunks) * (kChunkBytes + sizeof(std::uint32_t));
    }
    static constexpr std::uint32_t chunks_for(std::size_t bytes) {
        return static_cast<std::uint32_t>((bytes + kChunkBytes - 1) / kChunkBytes);
    }

    // `storage` must hold bytes_for(state->chunk_count) bytes.
    ChunkArena(ChunkArenaState *state, unsigned char *storage);

    // Puts every chunk on the free list.
    void format(std::uint32_t chunk_count);

    std::uint32_t free_chunks() const { return state_->free_count; }
    std::uint32_t chunk_count() const { return state_->chunk_count; }

    // Takes chunks_for(bytes) chunks and copies `data` into them. Returns the first chunk (or
    // kNoIndex for zero bytes); false, with nothing taken, when there are too few free chunks.
    bool store(const void *data, std::size_t bytes, std::uint32_t *first);

    // Copies `bytes` bytes of the chain that starts at `first` into `out`.
    void load(std::uint32_t first, void *out, std::size_t bytes) const;

    // Returns the chain that starts at `first` to the free list.
    void release(std::uint32_t first);

  private:
    unsigned char *chunk(std::uint32_t i) const { return data_ + i * kChunkBytes; }

    ChunkArenaState *state_;
    std::uint32_t *next_;
    unsigned char *data_;
};

}  // namespace rhythm
