// The chunk arena: chains, exhaustion and reuse.
#include "core/chunk_arena.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

using rhythm::ChunkArena;
using rhythm::ChunkArenaState;

namespace {

struct Arena {
    explicit Arena(std::uint32_t chunks) : storage(ChunkArena::bytes_for(chunks)) {
        state.chunk_count = chunks;
        arena = std::make_unique<ChunkArena>(&state, storage.data());
        arena->format(chunks);
    }
    ChunkArenaState state{};
    std::vector<unsigned char> storage;
    std::unique_ptr<ChunkArena> arena;
};

std::string pattern(std::size_t n, char seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>(seed + i % 31);
    }
    return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(chunk_arena)

BOOST_AUTO_TEST_CASE(store_and_load_various_sizes) {
    Arena a(64);
    for (std::size_t n : {0, 1, 127, 128, 129, 1000, 4096}) {
        std::string data = pattern(n, 'a');
        std::uint32_t first;
        BOOST_REQUIRE(a.arena->store(data.data(), n, &first));
        BOOST_TEST(a.arena->free_chunks() == 64u - ChunkArena::chunks_for(n));
        std::string out(n, '?');
        a.arena->load(first, out.data(), n);
        BOOST_TEST(out == data);
        a.arena->release(first);
        BOOST_TEST(a.arena->free_chunks() == 64u);
    }
}

BOOST_AUTO_TEST_CASE(exhaustion_takes_nothing) {
    Arena a(4);
    std::string data = pattern(3 * 128, 'x');
    std::uint32_t first;
    BOOST_REQUIRE(a.arena->store(data.data(), data.size(), &first));
    std::uint32_t other;
    BOOST_TEST(!a.arena->store(data.data(), data.size(), &other));
    BOOST_TEST(a.arena->free_chunks() == 1u);
    std::string out(data.size(), '?');
    a.arena->load(first, out.data(), out.size());
    BOOST_TEST(out == data);
}

BOOST_AUTO_TEST_CASE(interleaved_release_keeps_chains_apart) {
    Arena a(32);
    std::vector<std::pair<std::uint32_t, std::string>> held;
    for (int i = 0; i < 8; ++i) {
        std::string d = pattern(200 + i * 50, static_cast<char>('A' + i));
        std::uint32_t first;
        BOOST_REQUIRE(a.arena->store(d.data(), d.size(), &first));
        held.emplace_back(first, d);
        if (i % 3 == 2) {
            a.arena->release(held.front().first);
            held.erase(held.begin());
        }
    }
    for (auto &[first, d] : held) {
        std::string out(d.size(), '?');
        a.arena->load(first, out.data(), out.size());
        BOOST_TEST(out == d);
    }
}

BOOST_AUTO_TEST_SUITE_END()
