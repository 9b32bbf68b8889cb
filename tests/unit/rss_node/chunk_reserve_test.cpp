// The chunk reserve: nothing mapped ahead until a chunk is taken, then kept full by its helper;
// every chunk aligned, zeroed and distinct; without a helper take() maps by itself.
#include "rss_node/chunk_reserve.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdint>
#include <set>
#include <sys/mman.h>
#include <thread>

using rhythm::node::ChunkReserve;

namespace {

// The reserve's ready count once it reaches `want`, or what it is after 10 s.
std::size_t wait_ready(const ChunkReserve &reserve, std::size_t want) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (reserve.ready() < want && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return reserve.ready();
}

void check_chunk(void *chunk) {
    BOOST_TEST_REQUIRE(reinterpret_cast<std::uintptr_t>(chunk) % ChunkReserve::kChunkBytes == 0u);
    const auto *bytes = static_cast<const unsigned char *>(chunk);
    for (std::size_t at = 0; at < ChunkReserve::kChunkBytes; at += 4096) {
        BOOST_TEST_REQUIRE(bytes[at] == 0);
    }
    static_cast<unsigned char *>(chunk)[ChunkReserve::kChunkBytes - 1] = 1;  // writable
}

}  // namespace

BOOST_AUTO_TEST_SUITE(chunk_reserve)

BOOST_AUTO_TEST_CASE(the_reserve_fills_after_the_first_take_and_hands_out_ready_chunks) {
    std::set<void *> taken;
    {
        ChunkReserve reserve(3);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        BOOST_TEST(reserve.ready() == 0u);  // an idle node holds nothing extra
        void *first = reserve.take();
        check_chunk(first);
        taken.insert(first);
        BOOST_TEST(wait_ready(reserve, 3) == 3u);
        for (int i = 0; i < 10; ++i) {
            void *chunk = reserve.take();
            check_chunk(chunk);
            BOOST_TEST_REQUIRE(taken.insert(chunk).second);
        }
        BOOST_TEST(wait_ready(reserve, 3) == 3u);
    }  // the destructor stops the helper and unmaps the ready chunks
    for (void *chunk : taken) {
        munmap(chunk, ChunkReserve::kChunkBytes);
    }
}

BOOST_AUTO_TEST_CASE(without_a_helper_take_maps_each_chunk_itself) {
    ChunkReserve reserve(0);
    void *a = reserve.take();
    void *b = reserve.take();
    check_chunk(a);
    check_chunk(b);
    BOOST_TEST(a != b);
    BOOST_TEST(reserve.ready() == 0u);
    munmap(a, ChunkReserve::kChunkBytes);
    munmap(b, ChunkReserve::kChunkBytes);
}

BOOST_AUTO_TEST_SUITE_END()
