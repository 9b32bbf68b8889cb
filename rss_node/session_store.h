// The node's sessions, in memory, compactly: one block per session (a 40-byte header, the origin
// name and the data, from BlockAllocator) found through one open-addressing table of pointers
// per shard. That is about 70 bytes of overhead per session beside its data, where a
// std::unordered_map of std::string would spend about 150, and a shard's sessions can be listed
// or dropped together (snapshots to peers, shard hand-over).
//
// Rules: the highest version of a session wins and an older one is refused (of two equal versions
// from different servers, the one wire::supersedes names wins); a tombstone is a
// record like any other and is kept until its expiry (when the session would have expired), so
// a late update cannot bring a deleted session back; an expired record counts as absent and the
// sweep frees it; past the memory limit a new session is refused rather than the store growing.
// Expiry is the wall clock's: a record's expires_at_ms (Unix milliseconds, as on the wire) against
// the `now_wall_ms` the node's loop gives, a plain integer on the path of every update.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rss_node/block_allocator.h"
#include "wire/messages.h"

namespace rhythm::node {

enum class ApplyResult {
    kApplied,      // stored: new session, a higher version, or the winner of a conflict
    kDuplicate,    // the same version from the same server is already held (a replay or re-send)
    kStale,        // a version that wins over it is held: refused
    kExpired,      // the record had expired on arrival: ignored
    kNoMemory,     // storing it would pass the memory limit: refused
    kImplausible,  // a version or an expiry no web server makes (see apply): refused
};

struct ApplyOutcome {
    ApplyResult result = ApplyResult::kApplied;
    std::uint64_t held_version = 0;  // the version held after the call (0: none)
    // For kStale: the held version was made by another server than the refused one.
    bool newer_from_other_origin = false;
    // Two servers made the same version (kApplied: the held one lost; kStale: this one lost).
    bool conflict = false;
    // For kApplied: the server that made the version just replaced, when it is another one than
    // the new version's (a failover): that server must drop its copy. Empty otherwise.
    std::string replaced_origin;
};

class SessionStore {
  public:
    // max_memory: limit of bytes() in bytes, 0 for none. max_lifetime_ms: how far ahead an
    // expiry may be, 0 for any.
    explicit SessionStore(std::uint64_t max_memory, std::uint64_t max_lifetime_ms = 0);
    ~SessionStore();
    SessionStore(const SessionStore &) = delete;
    SessionStore &operator=(const SessionStore &) = delete;

    // A record from the future is refused (kImplausible), or it could never be replaced or
    // expire: an expiry more than max_lifetime_ms ahead, a version whose term (its high 32 bits,
    // docs/protocol.md "Versions") is over kMaxTerm, or over the held version's by more than
    // kMaxTermStep. `*implausible` (when given) then says which.
    ApplyOutcome apply(const wire::SessionRecord &record, std::uint64_t now_wall_ms,
                       const char **implausible = nullptr);

    // A term is one server taking the session over: a million of them is no session's life.
    static constexpr std::uint64_t kMaxTerm = 1u << 20;
    static constexpr std::uint64_t kMaxTermStep = 1024;

    // The held record of `key`, live or tombstone; false when absent or expired. The views in
    // `out` stay valid until the next apply or sweep.
    bool find(const wire::SessionKey &key, std::uint64_t now_wall_ms,
              wire::SessionRecord *out) const;

    // Frees the expired records of one shard; returns how many.
    std::size_t sweep_shard(std::uint32_t shard, std::uint64_t now_wall_ms);

    // Frees every record of one shard (a shard this node no longer owns); returns how many.
    std::size_t drop_shard(std::uint32_t shard);

    // Calls `fn` for each unexpired record of `shard` (views valid during the call).
    void for_each_in_shard(std::uint32_t shard, std::uint64_t now_wall_ms,
                           const std::function<void(const wire::SessionRecord &)> &fn) const;

    std::uint64_t live_sessions() const { return live_; }
    std::uint64_t tombstones() const { return tombstones_; }
    // What the store holds: record blocks (rounded to their size class) plus index tables.
    std::uint64_t bytes() const { return bytes_; }
    // Session data alone.
    std::uint64_t payload_bytes() const { return payload_bytes_; }
    std::uint64_t max_memory() const { return max_memory_; }

    // One stored session (defined in session_store.cpp).
    struct Block;

  private:
    // A table slot: 0 when empty, else a block's address in the low 48 bits and the top 16 bits
    // of its key's hash (the tag) above them. A probe reads a block (a cache miss) only when
    // the tags match, so a new session's probe touches a cache line or two of the table alone;
    // and as a key's home is the top bits of its hash, a table of up to 2^16 slots is rehashed
    // from the tags, without reading a block.
    using Slot = std::uint64_t;

    struct ShardTable {
        std::vector<Slot> slots;  // capacity a power of 2, or empty
        std::uint32_t used = 0;
    };

    std::uint64_t slot_hash(const wire::SessionKey &key) const;
    // The hash of a slot's key, as much of it as its home in a table of `capacity` slots needs.
    std::uint64_t home_hash(Slot slot, std::size_t capacity) const;
    // The slot holding `key` (whose slot_hash is `hash`), or the empty slot where it would go;
    // -1 for an empty table.
    long find_slot(const ShardTable &table, const wire::SessionKey &key, std::uint64_t hash) const;
    void grow(ShardTable *table, std::size_t capacity);
    void erase_at(ShardTable *table, std::size_t slot);
    void account(const Block *block, int sign);
    bool fits(std::uint64_t more) const;

    BlockAllocator blocks_;
    std::vector<ShardTable> shards_;
    std::uint64_t max_memory_;
    std::uint64_t max_lifetime_ms_;
    std::uint64_t seed_[2];
    std::uint64_t live_ = 0;
    std::uint64_t tombstones_ = 0;
    std::uint64_t bytes_ = 0;
    std::uint64_t payload_bytes_ = 0;
};

}  // namespace rhythm::node
