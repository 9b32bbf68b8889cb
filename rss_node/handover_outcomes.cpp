// What became of the handovers a node asked lately (see handover_outcomes.h).
#include "rss_node/handover_outcomes.h"

namespace rhythm::node {

void HandoverOutcomes::answered(const wire::SessionKey &key, std::string_view server,
                                std::uint64_t version, std::uint64_t now_ms) {
    record(key, server, version, true, now_ms);
}

void HandoverOutcomes::unanswered(const wire::SessionKey &key, std::string_view server,
                                  std::uint64_t version, std::uint64_t now_ms) {
    auto it = by_key_.find(key);
    if (it != by_key_.end() && it->second.server == server && it->second.version == version &&
        !it->second.answered && now_ms - it->second.since_ms <= kKeepMs) {
        return;  // unanswered since the first time
    }
    record(key, server, version, false, now_ms);
}

void HandoverOutcomes::fetched_by(const wire::SessionKey &key, std::string_view server) {
    auto it = by_key_.find(key);
    if (it != by_key_.end() && it->second.server == server) {
        by_key_.erase(it);  // its notes are skipped when they come up in order_
    }
}

HandoverOutcomes::Verdict HandoverOutcomes::verdict(const wire::SessionKey &key,
                                                    std::string_view server,
                                                    std::uint64_t version,
                                                    std::uint64_t now_ms) const {
    auto it = by_key_.find(key);
    if (it == by_key_.end() || it->second.server != server || it->second.version != version ||
        now_ms - it->second.since_ms > kKeepMs) {
        return Verdict::kAsk;
    }
    if (it->second.answered) {
        return Verdict::kAnswered;
    }
    return now_ms - it->second.since_ms >= kGiveUpMs ? Verdict::kGiveUp : Verdict::kAsk;
}

void HandoverOutcomes::record(const wire::SessionKey &key, std::string_view server,
                              std::uint64_t version, bool answered, std::uint64_t now_ms) {
    while (!order_.empty() && now_ms - order_.front().at_ms > kKeepMs) {
        forget_oldest();
    }
    Outcome &outcome = by_key_[key];
    outcome.server.assign(server.data(), server.size());
    outcome.version = version;
    outcome.answered = answered;
    outcome.since_ms = now_ms;
    outcome.note = ++notes_;
    order_.push_back({key, outcome.note, now_ms});
    while (by_key_.size() > kMaxEntries || order_.size() > 2 * kMaxEntries) {
        forget_oldest();
    }
}

void HandoverOutcomes::forget_oldest() {
    auto it = by_key_.find(order_.front().key);
    if (it != by_key_.end() && it->second.note == order_.front().note) {
        by_key_.erase(it);
    }
    order_.pop_front();
}

}  // namespace rhythm::node
