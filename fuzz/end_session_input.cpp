// Drives an operator's end of sessions from fuzz input; see end_session_input.h.
#include "fuzz/end_session_input.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "rss_node/session_ending.h"
#include "wire/messages.h"
#include "wire/session_key.h"

namespace rhythm::node {
namespace {

constexpr std::uint64_t kNowMs = 1800000000000ULL;
constexpr std::uint64_t kHourMs = 3600 * 1000;
constexpr std::uint64_t kHeldSessions = 64;
// The highest version a web server makes of a session it fetched at `held`: the next term.
constexpr std::uint64_t kTermShift = 32;

[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "fuzz_end_session_input: %s\n", what);
    std::abort();
}

wire::SessionKey held_key(std::uint64_t n) {
    wire::SessionKey k;
    for (int i = 0; i < 16; ++i) {
        k.bytes[i] = static_cast<std::uint8_t>((n * 0x9e3779b97f4a7c15ULL) >> (4 * (i % 16)));
    }
    k.bytes[0] = static_cast<std::uint8_t>(n);
    return k;
}

void check_argument(std::string_view text) {
    wire::EndSession request;
    if (!parse_end_session_target(text, &request)) {
        return;
    }
    std::string id = wire::format_session_key(request.key);
    if (text.substr(0, text.find('.')) != id) {
        fail("a session argument parsed to a key that does not format back to it");
    }
}

bool check_request(std::uint8_t owned_bits, std::vector<std::string_view> frames) {
    wire::Message message;
    if (!wire::decode_message(frames, &message).ok()) {
        return false;
    }
    auto *request = std::get_if<wire::EndSession>(&message);
    if (request == nullptr) {
        return false;
    }
    wire::ShardSet owned;
    for (std::uint32_t shard = 0; shard < wire::kShardCount; ++shard) {
        if (owned_bits & (1u << (shard % 8))) {
            owned.add(shard);
        }
    }
    SessionStore store(0);
    std::vector<wire::SessionKey> keys;
    std::string data = "count=1";
    for (std::uint64_t n = 0; n < kHeldSessions; ++n) {
        wire::SessionRecord r;
        r.key = held_key(n);
        r.version = ((n % 5) << kTermShift) + n + 1;
        r.expires_at_ms = kNowMs + kHourMs;
        r.origin = "web-a";
        r.data = data;
        r.tombstone = n % 7 == 0;
        store.apply(r, kNowMs);
        keys.push_back(r.key);
    }
    if (request->scope == wire::EndScope::kOne) {
        keys.push_back(request->key);
    }
    std::vector<std::uint64_t> before(keys.size(), 0);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        wire::SessionRecord held;
        if (store.find(keys[i], kNowMs, &held)) {
            before[i] = held.version;
        }
    }
    EndedSessions ended = end_sessions(*request, owned, kNowMs, kHourMs, &store);
    if (ended.outcome == wire::EndSessionOutcome::kRefused) {
        fail("an unlimited store refused a tombstone");
    }
    std::uint64_t changed = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        wire::SessionRecord held;
        bool holds = store.find(keys[i], kNowMs, &held);
        bool targeted = request->scope == wire::EndScope::kAll || keys[i] == request->key;
        bool owns = owned.contains(wire::shard_of(keys[i]));
        if (!holds || held.version == before[i]) {
            if (targeted && owns && (!holds || !held.tombstone)) {
                fail("a session of an owned shard was not ended");
            }
            continue;
        }
        ++changed;
        if (!targeted || !owns) {
            fail("a session not asked for, or of a shard not owned, was changed");
        }
        // Above what a server continuing the held copy makes: the next term, from 1 up.
        std::uint64_t next_term_continued = (((before[i] >> kTermShift) + 1) << kTermShift) + 1;
        if (!held.tombstone || held.version <= next_term_continued) {
            fail("an ended session was not left a tombstone above every version still to come");
        }
    }
    // Ending all counts the live sessions it ended; one session counts 1 (held or not).
    if (changed < ended.count || (request->scope == wire::EndScope::kOne && ended.count > 1)) {
        fail("the reply counts more sessions than were ended");
    }
    return true;
}

}  // namespace

bool fuzz_end_session_input(const std::uint8_t *data, std::size_t size) {
    if (size == 0) {
        return false;
    }
    if ((data[0] & 1) == 0) {
        check_argument(std::string_view(reinterpret_cast<const char *>(data + 1), size - 1));
        return false;
    }
    if (size < 2) {
        return false;
    }
    std::uint8_t owned_bits = data[1];
    std::vector<std::string_view> frames;
    std::size_t pos = 2;
    while (pos < size && frames.size() < 2) {
        std::size_t len = data[pos];
        if (pos + 1 < size) {
            len = (len << 8) | data[pos + 1];
        }
        pos = std::min(pos + 2, size);
        len = std::min(len, size - pos);
        frames.emplace_back(reinterpret_cast<const char *>(data + pos), len);
        pos += len;
    }
    return check_request(owned_bits, frames);
}

}  // namespace rhythm::node
