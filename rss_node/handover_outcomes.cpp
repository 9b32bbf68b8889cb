// What became of the handovers a node asked lately (see handover_outcomes.h).
#include "rss_node/handover_outcomes.h"

namespace rhythm::node {

void HandoverOutcomes::answered(const wire::SessionKey &key, Asked asked, std::uint64_t version,
                                std::uint64_t now_ms) {
    record(key, asked, version, true, now_ms);
}

void HandoverOutcomes::unanswered(const wire::SessionKey &key, Asked asked, std::uint64_t version,
                                  std::uint64_t now_ms) {
    const auto *noted = outcomes_.find(key, now_ms);
    const Outcome *outcome = noted != nullptr ? of(noted->value, asked.server) : nullptr;
    if (outcome != nullptr && outcome->agent == asked.agent && outcome->version == version &&
        !outcome->answered) {
        return;  // unanswered since the first time
    }
    record(key, asked, version, false, now_ms);
}

void HandoverOutcomes::fetched_by(const wire::SessionKey &key, std::string_view server,
                                  std::uint64_t now_ms) {
    const auto *noted = outcomes_.find(key, now_ms);
    if (noted == nullptr || of(noted->value, server) == nullptr) {
        return;
    }
    Outcomes &outcomes = outcomes_.note(key, now_ms);
    bool others = false;
    for (Outcome &outcome : outcomes) {
        if (outcome.server == server) {
            outcome = Outcome{};
        }
        others = others || !outcome.server.empty();
    }
    if (!others) {
        outcomes_.erase(key);
    }
}

HandoverOutcomes::Verdict HandoverOutcomes::verdict(const wire::SessionKey &key, Asked asked,
                                                    std::uint64_t version,
                                                    std::uint64_t now_ms) const {
    const auto *noted = outcomes_.find(key, now_ms);
    const Outcome *outcome = noted != nullptr ? of(noted->value, asked.server) : nullptr;
    if (outcome == nullptr || outcome->agent != asked.agent || outcome->version != version) {
        return Verdict::kAsk;
    }
    if (outcome->answered) {
        return Verdict::kAnswered;
    }
    return now_ms - outcome->since_ms >= kGiveUpMs ? Verdict::kGiveUp : Verdict::kAsk;
}

const HandoverOutcomes::Outcome *HandoverOutcomes::of(const Outcomes &outcomes,
                                                      std::string_view server) {
    for (const Outcome &outcome : outcomes) {
        if (!outcome.server.empty() && outcome.server == server) {
            return &outcome;
        }
    }
    return nullptr;
}

void HandoverOutcomes::record(const wire::SessionKey &key, Asked asked, std::uint64_t version,
                              bool answered, std::uint64_t now_ms) {
    Outcomes &outcomes = outcomes_.note(key, now_ms);
    // That server's slot, else a free one, else the one noted first.
    Outcome *slot = &outcomes[0];
    for (Outcome &outcome : outcomes) {
        if (outcome.server == asked.server) {
            slot = &outcome;
            break;
        }
        if (!slot->server.empty() &&
            (outcome.server.empty() || outcome.since_ms < slot->since_ms)) {
            slot = &outcome;
        }
    }
    slot->server.assign(asked.server.data(), asked.server.size());
    slot->agent.assign(asked.agent.data(), asked.agent.size());
    slot->version = version;
    slot->answered = answered;
    slot->since_ms = now_ms;
}

}  // namespace rhythm::node
