// What became of the handovers a node asked lately (see handover_outcomes.h).
#include "rss_node/handover_outcomes.h"

namespace rhythm::node {

void HandoverOutcomes::answered(const wire::SessionKey &key, std::string_view server,
                                std::uint64_t version, std::uint64_t now_ms) {
    record(key, server, version, true, now_ms);
}

void HandoverOutcomes::unanswered(const wire::SessionKey &key, std::string_view server,
                                  std::uint64_t version, std::uint64_t now_ms) {
    const auto *noted = outcomes_.find(key, now_ms);
    if (noted != nullptr && noted->value.server == server && noted->value.version == version &&
        !noted->value.answered) {
        return;  // unanswered since the first time
    }
    record(key, server, version, false, now_ms);
}

void HandoverOutcomes::fetched_by(const wire::SessionKey &key, std::string_view server,
                                  std::uint64_t now_ms) {
    const auto *noted = outcomes_.find(key, now_ms);
    if (noted != nullptr && noted->value.server == server) {
        outcomes_.erase(key);
    }
}

HandoverOutcomes::Verdict HandoverOutcomes::verdict(const wire::SessionKey &key,
                                                    std::string_view server, std::uint64_t version,
                                                    std::uint64_t now_ms) const {
    const auto *noted = outcomes_.find(key, now_ms);
    if (noted == nullptr || noted->value.server != server || noted->value.version != version) {
        return Verdict::kAsk;
    }
    if (noted->value.answered) {
        return Verdict::kAnswered;
    }
    return now_ms - noted->at_ms >= kGiveUpMs ? Verdict::kGiveUp : Verdict::kAsk;
}

void HandoverOutcomes::record(const wire::SessionKey &key, std::string_view server,
                              std::uint64_t version, bool answered, std::uint64_t now_ms) {
    Outcome &outcome = outcomes_.note(key, now_ms);
    outcome.server.assign(server.data(), server.size());
    outcome.version = version;
    outcome.answered = answered;
}

}  // namespace rhythm::node
