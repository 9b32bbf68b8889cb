// The compact session store: record blocks behind per-shard linear-probing tables.
#include "rss_node/session_store.h"

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

namespace rhythm::node {

// One session: this header, then origin_len bytes of origin, then data_len bytes of data.
struct SessionStore::Block {
    std::uint8_t key[wire::kSessionKeyBytes];
    std::uint64_t version;
    std::uint64_t expires_at_ms;
    std::uint32_t data_len;
    std::uint8_t origin_len;
    std::uint8_t tombstone;

    char *origin() { return reinterpret_cast<char *>(this + 1); }
    const char *origin() const { return reinterpret_cast<const char *>(this + 1); }
    const char *data() const { return origin() + origin_len; }
    std::size_t size() const { return sizeof(Block) + origin_len + data_len; }
    bool expired(std::uint64_t now_wall_ms) const {
        return expires_at_ms != 0 && expires_at_ms <= now_wall_ms;
    }

    static std::size_t size_for(const wire::SessionRecord &r) {
        return sizeof(Block) + r.origin.size() + r.data.size();
    }

    bool same_key(const wire::SessionKey &k) const {
        return std::memcmp(key, k.bytes.data(), sizeof key) == 0;
    }

    wire::SessionRecord view() const {
        wire::SessionRecord r;
        std::memcpy(r.key.bytes.data(), key, sizeof key);
        r.version = version;
        r.expires_at_ms = expires_at_ms;
        r.tombstone = tombstone != 0;
        r.origin = std::string_view(origin(), origin_len);
        r.data = std::string_view(data(), data_len);
        return r;
    }
};

namespace {

constexpr std::size_t kMinCapacity = 8;

constexpr int kTagShift = 48;
constexpr std::uint64_t kAddressMask = (std::uint64_t{1} << kTagShift) - 1;

std::uint64_t make_slot(SessionStore::Block *b, std::uint64_t hash) {
    auto address = reinterpret_cast<std::uintptr_t>(b);
    // User-space addresses on the 64-bit targets we build for (x86-64, arm64) fit in 48 bits.
    assert((address & ~kAddressMask) == 0);
    return address | (hash & ~kAddressMask);
}

SessionStore::Block *block_of(std::uint64_t slot) {
    return reinterpret_cast<SessionStore::Block *>(slot & kAddressMask);
}

bool same_tag(std::uint64_t slot, std::uint64_t hash) {
    return ((slot ^ hash) & ~kAddressMask) == 0;
}

// Where a hash's probe starts in a table of `capacity` slots (a power of 2): its top bits. Up to
// 2^16 slots these are all in the tag, so a table grows, and a deletion shifts entries, without
// reading a block.
std::size_t home_of(std::uint64_t hash, std::size_t capacity) {
    return static_cast<std::size_t>(hash >> (64 - __builtin_ctzll(capacity)));
}

constexpr std::size_t kHomeInTag = std::size_t{1} << (64 - kTagShift);

SessionStore::Block *make_block(const wire::SessionRecord &r, void *memory) {
    auto *b = static_cast<SessionStore::Block *>(memory);
    std::memcpy(b->key, r.key.bytes.data(), sizeof b->key);
    b->version = r.version;
    b->expires_at_ms = r.expires_at_ms;
    b->data_len = static_cast<std::uint32_t>(r.data.size());
    b->origin_len = static_cast<std::uint8_t>(r.origin.size());
    b->tombstone = r.tombstone ? 1 : 0;
    std::memcpy(b->origin(), r.origin.data(), r.origin.size());
    if (!r.data.empty()) {
        std::memcpy(b->origin() + r.origin.size(), r.data.data(), r.data.size());
    }
    return b;
}

}  // namespace

SessionStore::SessionStore(std::uint64_t max_memory, std::uint64_t max_lifetime_ms)
    : shards_(wire::kShardCount), max_memory_(max_memory), max_lifetime_ms_(max_lifetime_ms) {
    // A per-process seed: session IDs come from clients, so table positions must not be
    // predictable from them (a flood of colliding IDs would make every probe linear).
    std::random_device rd;
    seed_[0] = (std::uint64_t{rd()} << 32) | rd();
    seed_[1] = (std::uint64_t{rd()} << 32) | rd();
}

SessionStore::~SessionStore() {
    for (auto &t : shards_) {
        for (Slot slot : t.slots) {
            if (slot != 0) {
                blocks_.release(block_of(slot), block_of(slot)->size());
            }
        }
    }
}

std::uint64_t SessionStore::slot_hash(const wire::SessionKey &key) const {
    std::uint64_t lo;
    std::uint64_t hi;
    std::memcpy(&lo, key.bytes.data(), 8);
    std::memcpy(&hi, key.bytes.data() + 8, 8);
    return wire::mix64(wire::mix64(lo ^ seed_[0]) ^ (hi + seed_[1]));
}

std::uint64_t SessionStore::home_hash(Slot slot, std::size_t capacity) const {
    if (capacity <= kHomeInTag) {
        return slot & ~kAddressMask;  // enough of the hash for home_of()
    }
    wire::SessionKey k;
    std::memcpy(k.bytes.data(), block_of(slot)->key, sizeof k.bytes);
    return slot_hash(k);
}

long SessionStore::find_slot(const ShardTable &t, const wire::SessionKey &key,
                             std::uint64_t hash) const {
    if (t.slots.empty()) {
        return -1;
    }
    std::size_t mask = t.slots.size() - 1;
    std::size_t i = home_of(hash, t.slots.size());
    while (t.slots[i] != 0 &&
           !(same_tag(t.slots[i], hash) && block_of(t.slots[i])->same_key(key))) {
        i = (i + 1) & mask;
    }
    return static_cast<long>(i);
}

void SessionStore::grow(ShardTable *t, std::size_t capacity) {
    std::vector<Slot> old;
    old.swap(t->slots);
    bytes_ -= old.size() * sizeof(Slot);
    t->slots.assign(capacity, 0);
    bytes_ += capacity * sizeof(Slot);
    std::size_t mask = capacity - 1;
    for (Slot slot : old) {
        if (slot == 0) {
            continue;
        }
        std::size_t i = home_of(home_hash(slot, capacity), capacity);
        while (t->slots[i] != 0) {
            i = (i + 1) & mask;
        }
        t->slots[i] = slot;
    }
}

// Backward-shift deletion: keeps every probe chain unbroken without tombstone markers.
void SessionStore::erase_at(ShardTable *t, std::size_t slot) {
    Block *erased = block_of(t->slots[slot]);
    account(erased, -1);
    blocks_.release(erased, erased->size());
    t->slots[slot] = 0;
    t->used--;
    std::size_t mask = t->slots.size() - 1;
    std::size_t hole = slot;
    std::size_t i = (slot + 1) & mask;
    while (t->slots[i] != 0) {
        std::size_t home = home_of(home_hash(t->slots[i], t->slots.size()), t->slots.size());
        // Move the entry back when its home is not cyclically within (hole, i].
        bool stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
        if (!stays) {
            t->slots[hole] = t->slots[i];
            t->slots[i] = 0;
            hole = i;
        }
        i = (i + 1) & mask;
    }
}

void SessionStore::account(const Block *b, int sign) {
    std::uint64_t size = BlockAllocator::rounded(b->size());
    if (sign > 0) {
        bytes_ += size;
        payload_bytes_ += b->data_len;
        (b->tombstone ? tombstones_ : live_)++;
    } else {
        bytes_ -= size;
        payload_bytes_ -= b->data_len;
        (b->tombstone ? tombstones_ : live_)--;
    }
}

bool SessionStore::fits(std::uint64_t more) const {
    return max_memory_ == 0 || bytes_ + more <= max_memory_;
}

ApplyOutcome SessionStore::apply(const wire::SessionRecord &r, std::uint64_t now_wall_ms,
                                 const char **implausible) {
    ApplyOutcome out;
    if (r.expires_at_ms != 0 && r.expires_at_ms <= now_wall_ms) {
        out.result = ApplyResult::kExpired;
        return out;
    }
    ShardTable &t = shards_[wire::shard_of(r.key)];
    std::uint64_t hash = slot_hash(r.key);
    long slot = find_slot(t, r.key, hash);
    Block *held = slot >= 0 ? block_of(t.slots[static_cast<std::size_t>(slot)]) : nullptr;
    const char *why = nullptr;
    std::uint64_t term = wire::version_term(r.version);
    if (max_lifetime_ms_ != 0 && r.expires_at_ms > now_wall_ms + max_lifetime_ms_) {
        why = "its expiry is further ahead than --max-session-lifetime";
    } else if (term > kMaxTerm) {
        why = "its version's term is over 2^20";
    } else if (held != nullptr && term > wire::version_term(held->version) + kMaxTermStep) {
        why = "its version's term is over 1024 terms above the version held";
    }
    if (why != nullptr) {
        if (implausible != nullptr) {
            *implausible = why;
        }
        out.result = ApplyResult::kImplausible;
        return out;
    }
    std::size_t size = Block::size_for(r);
    if (held != nullptr && !held->expired(now_wall_ms)) {
        out.held_version = held->version;
        std::string_view held_origin(held->origin(), held->origin_len);
        if (r.version == held->version && r.origin == held_origin) {
            out.result = ApplyResult::kDuplicate;
            return out;
        }
        out.conflict = r.version == held->version;
        if (!wire::supersedes(r.version, r.origin, held->version, held_origin)) {
            out.result = ApplyResult::kStale;
            out.newer_from_other_origin = held_origin != r.origin;
            return out;
        }
    }
    if (held != nullptr) {
        // Replace in place when the size is unchanged (the usual case: a counter, a token).
        std::size_t new_bytes = BlockAllocator::rounded(size);
        std::size_t old_bytes = BlockAllocator::rounded(held->size());
        if (new_bytes > old_bytes && !fits(new_bytes - old_bytes)) {
            out.result = ApplyResult::kNoMemory;
            return out;
        }
        std::string_view held_origin(held->origin(), held->origin_len);
        if (!held->expired(now_wall_ms) && held_origin != r.origin) {
            out.replaced_origin.assign(held_origin);
        }
        account(held, -1);
        void *memory = held;
        if (new_bytes != old_bytes) {
            memory = blocks_.allocate(size);
            blocks_.release(held, held->size());
        }
        Block *b = make_block(r, memory);
        t.slots[static_cast<std::size_t>(slot)] = make_slot(b, hash);
        account(b, +1);
        out.result = ApplyResult::kApplied;
        out.held_version = r.version;
        return out;
    }
    // A new session: room for its block and for the table doubling it may cause.
    std::size_t capacity = t.slots.size();
    bool must_grow = capacity == 0 || (t.used + 1) * 4 > capacity * 3;
    std::size_t new_capacity = capacity == 0 ? kMinCapacity : capacity * 2;
    std::uint64_t more =
        BlockAllocator::rounded(size) + (must_grow ? (new_capacity - capacity) * sizeof(Slot) : 0);
    if (!fits(more)) {
        out.result = ApplyResult::kNoMemory;
        return out;
    }
    void *memory = blocks_.allocate(size);
    if (must_grow) {
        grow(&t, new_capacity);
    }
    Block *b = make_block(r, memory);
    if (must_grow) {
        slot = find_slot(t, r.key, hash);
    }
    t.slots[static_cast<std::size_t>(slot)] = make_slot(b, hash);
    t.used++;
    account(b, +1);
    out.result = ApplyResult::kApplied;
    out.held_version = r.version;
    return out;
}

bool SessionStore::find(const wire::SessionKey &key, std::uint64_t now_wall_ms,
                        wire::SessionRecord *out) const {
    const ShardTable &t = shards_[wire::shard_of(key)];
    long slot = find_slot(t, key, slot_hash(key));
    if (slot < 0) {
        return false;
    }
    const Block *b = block_of(t.slots[static_cast<std::size_t>(slot)]);
    if (b == nullptr || b->expired(now_wall_ms)) {
        return false;
    }
    *out = b->view();
    return true;
}

std::size_t SessionStore::sweep_shard(std::uint32_t shard, std::uint64_t now_wall_ms) {
    ShardTable &t = shards_[shard];
    std::vector<wire::SessionKey> expired;
    for (Slot slot : t.slots) {
        const Block *b = block_of(slot);
        if (b != nullptr && b->expired(now_wall_ms)) {
            wire::SessionKey k;
            std::memcpy(k.bytes.data(), b->key, sizeof k.bytes);
            expired.push_back(k);
        }
    }
    for (const auto &k : expired) {
        erase_at(&t, static_cast<std::size_t>(find_slot(t, k, slot_hash(k))));
    }
    // Give memory back when a shard has emptied out.
    std::size_t capacity = t.slots.size();
    if (t.used == 0 && capacity > 0) {
        bytes_ -= capacity * sizeof(Slot);
        std::vector<Slot>().swap(t.slots);
    } else if (capacity > kMinCapacity && t.used * 8 < capacity) {
        grow(&t, capacity / 2);
    }
    return expired.size();
}

std::size_t SessionStore::drop_shard(std::uint32_t shard) {
    ShardTable &t = shards_[shard];
    std::size_t dropped = t.used;
    for (Slot slot : t.slots) {
        if (slot != 0) {
            account(block_of(slot), -1);
            blocks_.release(block_of(slot), block_of(slot)->size());
        }
    }
    bytes_ -= t.slots.size() * sizeof(Slot);
    std::vector<Slot>().swap(t.slots);
    t.used = 0;
    return dropped;
}

void SessionStore::for_each_in_shard(
    std::uint32_t shard, std::uint64_t now_wall_ms,
    const std::function<void(const wire::SessionRecord &)> &fn) const {
    for (Slot slot : shards_[shard].slots) {
        const Block *b = block_of(slot);
        if (b != nullptr && !b->expired(now_wall_ms)) {
            fn(b->view());
        }
    }
}

}  // namespace rhythm::node
