// What a node noted lately of each session, bounded: at most MaxEntries sessions, each kept
// KeepMs after it was last noted; past either the oldest go. A peer's fetches and answers fill
// it, so it must not grow with what the peer sends. Socket-free, the time passed in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>

#include "wire/messages.h"

namespace rhythm::node {

template <typename Value, std::size_t MaxEntries, std::uint64_t KeepMs>
class RecentByKey {
  public:
    struct Noted {
        Value value;
        std::uint64_t at_ms = 0;  // when it was last noted
    };

    // The entry of `key`, noted now (its value as it was, for the caller to set).
    Value &note(const wire::SessionKey &key, std::uint64_t now_ms) {
        while (!order_.empty() && now_ms - order_.front().at_ms > KeepMs) {
            forget_oldest();
        }
        Entry &entry = by_key_[key];
        entry.noted.at_ms = now_ms;
        entry.note = ++notes_;
        order_.push_back({key, entry.note, now_ms});
        while (by_key_.size() > MaxEntries || order_.size() > 2 * MaxEntries) {
            forget_oldest();
        }
        return entry.noted.value;
    }

    // The entry of `key` noted within KeepMs, or null.
    const Noted *find(const wire::SessionKey &key, std::uint64_t now_ms) const {
        auto it = by_key_.find(key);
        if (it == by_key_.end() || now_ms - it->second.noted.at_ms > KeepMs) {
            return nullptr;
        }
        return &it->second.noted;
    }

    // Its notes are skipped when they come up in order.
    void erase(const wire::SessionKey &key) { by_key_.erase(key); }

    std::size_t size() const { return by_key_.size(); }

  private:
    struct KeyLess {
        bool operator()(const wire::SessionKey &a, const wire::SessionKey &b) const {
            return a.bytes < b.bytes;
        }
    };
    struct Entry {
        Noted noted;
        std::uint64_t note = 0;  // which note made it
    };
    struct Note {
        wire::SessionKey key;
        std::uint64_t note = 0;
        std::uint64_t at_ms = 0;
    };

    void forget_oldest() {
        auto it = by_key_.find(order_.front().key);
        if (it != by_key_.end() && it->second.note == order_.front().note) {
            by_key_.erase(it);
        }
        order_.pop_front();
    }

    std::map<wire::SessionKey, Entry, KeyLess> by_key_;
    // Every note in order, to forget the oldest; a note of a key noted again since is skipped.
    std::deque<Note> order_;
    std::uint64_t notes_ = 0;
};

}  // namespace rhythm::node
