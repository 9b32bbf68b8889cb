// The record block allocator: size classes, reuse of freed blocks, large blocks, alignment.
#include "rss_node/block_allocator.h"

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

using rhythm::node::BlockAllocator;

BOOST_AUTO_TEST_SUITE(block_allocator)

BOOST_AUTO_TEST_CASE(sizes_round_to_sixteen) {
    BOOST_TEST(BlockAllocator::rounded(1) == 16u);
    BOOST_TEST(BlockAllocator::rounded(16) == 16u);
    BOOST_TEST(BlockAllocator::rounded(1068) == 1072u);
}

BOOST_AUTO_TEST_CASE(blocks_are_distinct_aligned_and_reused_by_size_class) {
    BlockAllocator a;
    std::vector<void *> blocks;
    std::set<void *> distinct;
    for (int i = 0; i < 5000; ++i) {
        std::size_t size = 40 + static_cast<std::size_t>(i % 300) * 7;
        void *p = a.allocate(size);
        BOOST_TEST_REQUIRE(reinterpret_cast<std::uintptr_t>(p) % 16 == 0u);
        std::memset(p, 0xab, size);
        blocks.push_back(p);
        distinct.insert(p);
    }
    BOOST_TEST(distinct.size() == blocks.size());
    void *freed = blocks[10];
    std::size_t freed_size = 40 + 10 * 7;
    a.release(freed, freed_size);
    BOOST_TEST(a.allocate(BlockAllocator::rounded(freed_size)) == freed);
    BOOST_TEST(a.chunk_bytes() >= BlockAllocator::kChunkBytes);
}

BOOST_AUTO_TEST_CASE(large_blocks_come_from_malloc) {
    BlockAllocator a;
    std::size_t before = a.chunk_bytes();
    void *p = a.allocate(BlockAllocator::kMaxChunkedBlock + 1);
    std::memset(p, 1, BlockAllocator::kMaxChunkedBlock + 1);
    BOOST_TEST(a.chunk_bytes() == before);
    a.release(p, BlockAllocator::kMaxChunkedBlock + 1);
}

BOOST_AUTO_TEST_CASE(chunks_fill_up_and_roll_over) {
    BlockAllocator a;
    // 3 chunks' worth of 64 KiB blocks: each chunk's tail goes to a free list, nothing overlaps.
    std::vector<char *> blocks;
    for (std::size_t i = 0; i < 3 * BlockAllocator::kChunkBytes / (60 * 1024); ++i) {
        auto *p = static_cast<char *>(a.allocate(60 * 1024));
        std::memset(p, static_cast<int>(i), 60 * 1024);
        blocks.push_back(p);
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
        BOOST_TEST_REQUIRE(blocks[i][0] == static_cast<char>(i));
        BOOST_TEST_REQUIRE(blocks[i][60 * 1024 - 1] == static_cast<char>(i));
    }
    BOOST_TEST(a.chunk_bytes() >= 3 * BlockAllocator::kChunkBytes);
}

BOOST_AUTO_TEST_SUITE_END()
