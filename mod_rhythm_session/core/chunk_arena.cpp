// Chunk arena: a free list threaded through the same `next` links that chain a session's data.
#include "chunk_arena.h"

#include <algorithm>
#include <cstring>

namespace rhythm {

ChunkArena::ChunkArena(ChunkArenaState *state, unsigned char *storage)
    : state_(state),
      next_(reinterpret_cast<std::uint32_t *>(storage)),
      data_(storage + static_cast<std::size_t>(state->chunk_count) * sizeof(std::uint32_t)) {}

void ChunkArena::format(std::uint32_t chunk_count) {
    // The constructor placed data_ using chunk_count; format must not change it.
    state_->chunk_count = chunk_count;
    for (std::uint32_t i = 0; i < chunk_count; ++i) {
        next_[i] = i + 1 < chunk_count ? i + 1 : kNoIndex;
    }
    state_->free_head = chunk_count > 0 ? 0 : kNoIndex;
    state_->free_count = chunk_count;
}

bool ChunkArena::store(const void *data, std::size_t bytes, std::uint32_t *first) {
    std::uint32_t needed = chunks_for(bytes);
    if (needed > state_->free_count) {
        return false;
    }
    *first = needed > 0 ? state_->free_head : kNoIndex;
    const unsigned char *src = static_cast<const unsigned char *>(data);
    std::uint32_t last = kNoIndex;
    std::uint32_t i = state_->free_head;
    for (std::uint32_t taken = 0; taken < needed; ++taken) {
        std::size_t n = std::min(bytes, kChunkBytes);
        std::memcpy(chunk(i), src, n);
        src += n;
        bytes -= n;
        last = i;
        i = next_[i];
    }
    if (last != kNoIndex) {
        state_->free_head = i;
        next_[last] = kNoIndex;
        state_->free_count -= needed;
    }
    return true;
}

void ChunkArena::load(std::uint32_t first, void *out, std::size_t bytes) const {
    unsigned char *dst = static_cast<unsigned char *>(out);
    for (std::uint32_t i = first; bytes > 0 && i != kNoIndex; i = next_[i]) {
        std::size_t n = std::min(bytes, kChunkBytes);
        std::memcpy(dst, chunk(i), n);
        dst += n;
        bytes -= n;
    }
}

void ChunkArena::release(std::uint32_t first) {
    if (first == kNoIndex) {
        return;
    }
    std::uint32_t last = first;
    std::uint32_t count = 1;
    while (next_[last] != kNoIndex) {
        last = next_[last];
        ++count;
    }
    next_[last] = state_->free_head;
    state_->free_head = first;
    state_->free_count += count;
}

}  // namespace rhythm
