#include "rss_node/handover_waits.h"

#include <utility>

namespace rhythm::node {

HandoverWaits::Held HandoverWaits::hold(const wire::SessionKey &key,
                                        const std::vector<std::string> &to_ask, HeldFetch fetch,
                                        std::uint64_t now_ms, std::uint64_t *handover_id) {
    auto it = waits_.find(key);
    if (it != waits_.end()) {
        if (it->second.fetches.size() >= kMaxFetchesPerWait) {
            return Held::kFull;
        }
        it->second.fetches.push_back(std::move(fetch));
        return Held::kJoined;
    }
    if (waits_.size() >= kMaxWaits || to_ask.empty() || to_ask.size() > kMaxAskedPerWait) {
        return Held::kFull;
    }
    Wait &wait = waits_[key];
    wait.key = key;
    wait.unanswered = to_ask;
    wait.handover_id = next_handover_id_++;
    wait.deadline_ms = now_ms + wait_ms_;
    wait.fetches.push_back(std::move(fetch));
    *handover_id = wait.handover_id;
    return Held::kAsk;
}

namespace {

// Takes `routing_id` off `unanswered`; false when it was not there.
bool take_off(std::vector<std::string> *unanswered, const std::string &routing_id) {
    for (auto it = unanswered->begin(); it != unanswered->end(); ++it) {
        if (*it == routing_id) {
            unanswered->erase(it);
            return true;
        }
    }
    return false;
}

}  // namespace

HandoverWaits::Answer HandoverWaits::answered(const std::string &routing_id,
                                              std::uint64_t handover_id, wire::SessionKey *key,
                                              Wait *ended) {
    // Few waits at a time (most fetches are of sessions their asker made): a walk is cheap.
    for (auto it = waits_.begin(); it != waits_.end(); ++it) {
        if (it->second.handover_id != handover_id ||
            !take_off(&it->second.unanswered, routing_id)) {
            continue;
        }
        *key = it->first;
        if (!it->second.unanswered.empty()) {
            return Answer::kMore;
        }
        *ended = std::move(it->second);
        waits_.erase(it);
        return Answer::kEnded;
    }
    return Answer::kNotAsked;
}

void HandoverWaits::expire(std::uint64_t now_ms, std::vector<Wait> *expired) {
    for (auto it = waits_.begin(); it != waits_.end();) {
        if (it->second.deadline_ms <= now_ms) {
            expired_[it->second.handover_id] = {it->first, it->second.unanswered};
            if (expired_.size() > kMaxWaits) {
                expired_.erase(expired_.begin());
            }
            expired->push_back(std::move(it->second));
            it = waits_.erase(it);
        } else {
            ++it;
        }
    }
}

bool HandoverWaits::answered_late(const std::string &routing_id, std::uint64_t handover_id,
                                  wire::SessionKey *key) {
    auto it = expired_.find(handover_id);
    if (it == expired_.end() || !take_off(&it->second.unanswered, routing_id)) {
        return false;
    }
    *key = it->second.key;
    if (it->second.unanswered.empty()) {
        expired_.erase(it);
    }
    return true;
}

std::uint64_t HandoverWaits::next_deadline_ms() const {
    std::uint64_t next = 0;
    for (const auto &entry : waits_) {
        if (next == 0 || entry.second.deadline_ms < next) {
            next = entry.second.deadline_ms;
        }
    }
    return next;
}

}  // namespace rhythm::node
