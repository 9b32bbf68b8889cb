// The agent's side of the fetch channel (see fetch_service.h).
#include "backup/fetch_service.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

#include "backup/fetch_channel.h"
#include "wire/session_key.h"

namespace rhythm {
namespace {

// At most one RS0323 line (a fetched session too large to keep) per this interval.
constexpr std::uint64_t kTooLargeLogEveryMs = 10000;

}  // namespace

struct FetchService::Pending {
    int fd = -1;
    SessionId id;
    std::uint64_t request_id = 0;
    MonotonicTime deadline;
    std::size_t asked = 0;
    std::size_t answered = 0;
    bool owners_only = false;  // the rest of the bank is still to be asked
    bool check = false;        // a check of a copy held here, not a take-over
    // By node. No node is asked twice, but one whose connection closed before it answered: the
    // request, or its answer, was lost with it.
    enum class Asked : unsigned char { kNo, kYes, kLost, kAnswered };
    std::vector<Asked> asked_node;
    // By node, what it answered: for RS0335, which says what the outcome was decided on.
    struct Answer {
        wire::FetchStatus status = wire::FetchStatus::kNotFound;
        std::uint64_t version = 0;
        bool owner = false;
        bool provisional = false;
    };
    std::vector<Answer> answers;
    // A node that owns the session's shard (by its own word) answered; one that vouches for its
    // answer (not provisional) has it.
    bool owner_answered = false;
    bool owner_found = false;
    bool owner_vouched = false;  // ... whether it has the session or not
    bool asked_again = false;    // after this server answered a handover of it (on_handed_over)
    // The best version answered so far (0: none), and its record.
    std::uint64_t best_version = 0;
    std::string best_origin;
    bool best_deleted = false;
    std::string best_data;
    std::int64_t best_expiry_us = 0;
};

FetchService::FetchService(BackupFeed &feed, const Settings &settings, AgentLog log, Bank &bank)
    : feed_(feed), settings_(settings), log_(log), bank_(bank) {}

FetchService::~FetchService() {
    for (int fd : accepted_) {
        close(fd);
    }
    for (auto &entry : pending_) {
        close(entry.second->fd);
    }
}

void FetchService::accept_all() {
    for (;;) {
        int fd = accept4(settings_.listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        accepted_.push_back(fd);
    }
}

void FetchService::on_request(int fd, MonotonicTime now) {
    unsigned char buf[kFetchRequestBytes + 1];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    FetchRequest request;
    if (n <= 0 || !decode_fetch_request(buf, static_cast<std::size_t>(n), &request)) {
        close(fd);
        return;
    }
    accepted_.erase(std::find(accepted_.begin(), accepted_.end(), fd));
    auto fetch = std::make_unique<Pending>();
    fetch->fd = fd;
    fetch->id = request.id;
    fetch->check = request.check;
    fetch->deadline = now + std::chrono::milliseconds(request.timeout_ms);
    if (pending_.size() >= settings_.max_pending) {
        if (fetch->check) {
            finish_check(*fetch, true);  // unchecked: the worker serves its copy
        } else {
            answer(*fetch, FetchOutcome::kShed);
        }
        return;
    }
    fetch->request_id = next_request_id_++;
    fetch->asked_node.assign(bank_.node_count(), Pending::Asked::kNo);
    fetch->answers.resize(bank_.node_count());
    if (ask_bank(*fetch) == 0 && every_node_silent()) {
        // Every node silent. A copy held here is the best there is (but see below). A take-over
        // finds nothing: once the bank has been silent SessionBackupOutageGrace it counts as
        // down, and a new session starts (the site serves on without it); before that the user
        // is answered 503 and asks again: the nodes may be back in a moment, with the session
        // (the fault campaign's seeds 67 and 68: 8 s of packet loss, or every node cut off or
        // stopped at once, started new sessions for 76 users whose sessions the bank held). Not
        // so where a node is up and only the send failed: its connection is being made again
        // (after this server was stopped, the nodes closed theirs), and the fetch waits for it.
        if (fetch->check) {
            // Unless it was handed over to another server (or fetched) and not changed here
            // since: that server may be continuing it, and this copy is not served until the
            // bank can tell or counts as down (the fault campaign, seed 80 in CI: web-1 handed a
            // session over, was cut off from the bank, and served its copy to the user sent
            // back: count 510 after 510). So too after the whole server stalled: the bank's
            // silence now says nothing of the stall, when another server may have taken the
            // session over (seed 90: web-1, paused 8 s, found every node silent under packet
            // loss 1.5 s after it resumed and served a copy 64 changes old).
            bool elsewhere =
                !bank_down(now) && (feed_.handed_over_or_fetched(fetch->id) || stalled_lately(now));
            reply(*fetch, elsewhere ? FetchOutcome::kBankSilent : FetchOutcome::kUnreachable);
        } else {
            answer(*fetch, bank_down(now) ? FetchOutcome::kUnreachable : FetchOutcome::kBankSilent);
        }
        return;
    }
    // Asked, or waiting (until its deadline) for the first node to answer: a server just
    // started, or whose agent just restarted, must not start new sessions for the users that
    // fail over to it only because its connections to the bank are still being made.
    std::uint64_t request_id = fetch->request_id;
    pending_[request_id] = std::move(fetch);
}

// Asks the session's owners, or when none can be asked the rest of the bank.
std::size_t FetchService::ask_bank(Pending &fetch) {
    fetch.owners_only = true;
    std::size_t asked = ask(fetch);
    if (asked == 0) {
        fetch.owners_only = false;
        asked = ask(fetch);
    }
    return asked;
}

bool FetchService::bank_down(MonotonicTime now) const {
    return now - bank_.last_answer() >= std::chrono::milliseconds(settings_.outage_grace_ms);
}

bool FetchService::stalled_lately(MonotonicTime now) {
    MonotonicTime stalled = feed_.last_stall();
    return stalled != MonotonicTime() &&
           now - stalled < std::chrono::milliseconds(settings_.outage_grace_ms);
}

bool FetchService::every_node_silent() const {
    for (std::size_t i = 0; i < bank_.node_count(); ++i) {
        if (!bank_.silent(i)) {
            return false;
        }
    }
    return true;
}

void FetchService::on_node_answer() {
    for (auto &entry : pending_) {
        Pending &fetch = *entry.second;
        ask_again_if_lost(fetch);
        if (fetch.asked == 0) {
            ask_bank(fetch);
        } else if (fetch.answered == fetch.asked && !fetch.owner_answered) {
            ask(fetch);  // the owners may be among the nodes that could not be asked before
        }
    }
}

// Asks the session's owners (those that are up and own its shard), or with owners_only clear
// the rest of the bank; returns how many were asked. No node is asked twice. Only a node that
// answers this agent's heartbeats is asked. One that stopped (hung, or gone without closing its
// connection) would hold the fetch until its deadline. One that has not answered yet (this agent
// or the node just started) does not know who asks: a fetch names no server, the node learns it
// from the agent's heartbeats. It could neither remember that this server took the session over
// nor ask the server that made its copy, and the server the session came from served its own copy
// when the user came back (the fault campaign under ASan: web-1, started again 30 ms before,
// took a session over; web-2, never told, answered 1849 after web-1's 1849). Such a fetch waits
// for the first answer (on_node_answer). For the same reason a node whose connection is being
// made again is asked only once a heartbeat sent on the new connection is answered
// (ask_again_if_lost): sent now, the fetch could reach the node first on that connection.
std::size_t FetchService::ask(Pending &fetch) {
    wire::Frames frames = wire::encode_message(wire::Fetch{fetch.request_id, fetch.id});
    std::uint32_t shard = wire::shard_of(fetch.id);
    std::size_t asked = 0;
    for (std::size_t i = 0; i < fetch.asked_node.size(); ++i) {
        bool owner = bank_.owns(i, shard);
        if (fetch.asked_node[i] != Pending::Asked::kNo || !bank_.up(i) ||
            (!owner && fetch.owners_only)) {
            continue;
        }
        if (bank_.reconnecting(i)) {
            fetch.asked_node[i] = Pending::Asked::kLost;  // asked once it is connected again
            ++asked;
        } else if (bank_.send(i, frames)) {
            fetch.asked_node[i] = Pending::Asked::kYes;
            ++asked;
        }
    }
    fetch.asked += asked;
    return asked;
}

// The connection to `node` closed. What it was asked and has not answered, and what it is asked
// until a connection is made again (Bank::reconnecting), is asked again then: a request sent into
// a connection the node had just closed is lost, and so is an answer to one, and the fetch would
// wait for it to its deadline (a server resuming from a stop longer than the node's heartbeat
// timeout sends its first take-over before its ZeroMQ has read the node's close: a 503 where the
// session was there). A send can still succeed for a moment after the close is reported: the
// socket takes the news of the closed connection only as it next processes its commands; and a
// request sent then may reach the node on the new connection before any heartbeat (see ask).
void FetchService::on_connection_lost(std::size_t node) {
    for (auto &entry : pending_) {
        Pending &fetch = *entry.second;
        if (node < fetch.asked_node.size() && fetch.asked_node[node] == Pending::Asked::kYes) {
            fetch.asked_node[node] = Pending::Asked::kLost;
        }
    }
}

// A node that asked this server for a handover and gets its answer after this check's fetch
// records that the server gave the session up at that version, and answers the next take-over
// from its copy without asking again; while the check's answers, older than the handover, say
// "current" and this server goes on (the fault campaign, s104-96: web-1 served 8 changes more,
// and a take-over on web-2 got the bank's copy from before them). Such a check is asked again,
// under a new request id, so that each node has the answer to the handover before the fetch
// (one connection keeps its order) and sees this server take the session back after it; what
// was answered to the first is dropped. A check not sent yet goes out after the answer anyway.
void FetchService::on_handed_over(const SessionId &id) {
    std::vector<std::unique_ptr<Pending>> again;
    for (auto it = pending_.begin(); it != pending_.end();) {
        Pending &fetch = *it->second;
        if (fetch.check && fetch.id == id && fetch.asked > 0) {
            again.push_back(std::move(it->second));
            it = pending_.erase(it);
        } else {
            ++it;
        }
    }
    for (std::unique_ptr<Pending> &fetch : again) {
        Pending fresh;
        fresh.fd = fetch->fd;
        fresh.id = fetch->id;
        fresh.deadline = fetch->deadline;
        fresh.check = true;
        fresh.asked_again = true;
        fresh.request_id = next_request_id_++;
        fresh.asked_node.assign(bank_.node_count(), Pending::Asked::kNo);
        fresh.answers.resize(bank_.node_count());
        *fetch = std::move(fresh);
        ask_bank(*fetch);  // none asked: on_node_answer asks once a node answers, or it expires
        std::uint64_t request_id = fetch->request_id;
        pending_[request_id] = std::move(fetch);
    }
}

void FetchService::ask_again_if_lost(Pending &fetch) {
    std::optional<wire::Frames> frames;
    for (std::size_t i = 0; i < fetch.asked_node.size(); ++i) {
        if (fetch.asked_node[i] != Pending::Asked::kLost || !bank_.up(i) || bank_.reconnecting(i)) {
            continue;
        }
        if (!frames) {
            frames = wire::encode_message(wire::Fetch{fetch.request_id, fetch.id});
        }
        if (bank_.send(i, *frames)) {
            fetch.asked_node[i] = Pending::Asked::kYes;
        }
    }
}

// The highest version among the answers wins (wire::supersedes): a node that was hung, or that
// lost the shard and answers from the copy it keeps for the new owner's snapshot, may answer with
// an older one. So a fetch waits for every node it asked (a silent one is never asked): an owner
// that has not answered yet may be asking the server that took the session over for a newer copy
// (a handover, a round trip to that server), while the other owner, which did not see the
// take-over, vouches at once for the copy from before. (Until this change the fetch took the best
// answer 20 ms after an owner had it: the fault campaign's seeds 61 and 80, and CI under ASan,
// saw the handover's newer copy come later, and users rolled back.) It waits to the deadline and
// takes no copy while a node it asked has not answered (a 503, the next request asks again): the
// silent one may be the owner asking for the newer copy, its answer late. Taking the vouched
// copy at three quarters of the deadline, as a hung owner's cost bound, rolled users back under
// packet loss, where a TCP retransmission outlasts that (the fault campaign, seeds 80 and 90).
// A hung node costs the take-overs and checks of its shards a 503 until this agent counts it
// silent (1.5 s) and asks it no more. An owner's interim answer (wire::FetchReply::asking)
// changes nothing here: its answer follows.
//
// Where the nodes asked first, believed to be the owners (by their own word: this agent's view
// of the shards lags), turn out not to own the shard or not to have it, or answer provisionally
// (being filled with it, or just started and unable yet to ask the server that made their copy),
// the rest of the bank is asked too. No answer counts until an owner has answered: a former
// owner's copy may be behind, and its "not found" says nothing (a fetch that reached no owner
// waits for one, or its deadline: a 503).
void FetchService::on_reply(std::size_t node, const wire::FetchReply &reply, MonotonicTime now) {
    auto it = pending_.find(reply.request_id);
    if (it == pending_.end() || node >= it->second->asked_node.size()) {
        return;  // answered already or given up
    }
    Pending &fetch = *it->second;
    Pending::Asked &asked = fetch.asked_node[node];
    if (asked != Pending::Asked::kYes && asked != Pending::Asked::kLost) {
        return;  // not asked of this node, or answered by it already (asked again)
    }
    if (reply.asking) {
        return;  // not an answer yet: it follows once the server asked has answered the node
    }
    asked = Pending::Asked::kAnswered;
    ++fetch.answered;
    fetch.answers[node] = {reply.status,
                           reply.status == wire::FetchStatus::kNotFound ? 0 : reply.record.version,
                           reply.owner, reply.provisional};
    bool found = reply.status != wire::FetchStatus::kNotFound;
    fetch.owner_answered = fetch.owner_answered || reply.owner;
    bool vouching_owner = reply.owner && !reply.provisional;
    fetch.owner_vouched = fetch.owner_vouched || vouching_owner;
    if (found && vouching_owner) {
        fetch.owner_found = true;
    }
    if (found &&
        (fetch.best_version == 0 || wire::supersedes(reply.record.version, reply.record.origin,
                                                     fetch.best_version, fetch.best_origin))) {
        fetch.best_version = reply.record.version;
        fetch.best_origin.assign(reply.record.origin.data(), reply.record.origin.size());
        fetch.best_deleted = reply.status == wire::FetchStatus::kDeleted;
        fetch.best_data.assign(reply.record.data.data(), reply.record.data.size());
        fetch.best_expiry_us = static_cast<std::int64_t>(reply.record.expires_at_ms) * 1000;
    }
    if (fetch.answered < fetch.asked) {
        return;
    }
    if (!fetch.owner_found && fetch.owners_only) {
        // No owner has it: the owners may have changed since this agent last heard (the shard's
        // new owner is then among the rest), or one still being filled with the shard may not
        // have it yet while a node that owned it before the bank changed does.
        fetch.owners_only = false;
    }
    if (ask(fetch) > 0) {
        return;  // a node not asked is up again: it may have seen what the others did not
    }
    if (!fetch.owner_answered) {
        return;  // on_node_answer asks the nodes that could not be asked yet
    }
    finish(fetch, false, now);
    pending_.erase(it);
}

void FetchService::expire(MonotonicTime now) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (now >= it->second->deadline) {
            finish(*it->second, true, now);
            it = pending_.erase(it);
        } else {
            ++it;
        }
    }
}

// Stores the best version found, if any, and answers the worker. A session larger than this
// server's RhythmSessionMaxSize is not stored: every save a request made of it would be refused
// (RS0103) while the user is answered 200, so the changes would be lost; a new session is
// visible, and the bank's copy stays intact for a server with the larger limit.
void FetchService::finish(Pending &fetch, bool deadline_passed, MonotonicTime now) {
    if (!fetch.owner_answered || fetch.answered < fetch.asked) {
        // Only former owners answered, or a node asked did not answer by the deadline: the owner
        // not reached, or that node, may have a newer copy. Better a 503 (or a copy left
        // unchecked) than a rollback.
        fetch.best_version = 0;
    }
    if (fetch.check) {
        finish_check(fetch, deadline_passed);
        return;
    }
    FetchOutcome outcome;
    if (owner_out_lately(fetch) || (!fetch.owner_vouched && node_unheard_lately(fetch))) {
        outcome = FetchOutcome::kOwnerOut;
    } else if (fetch.best_version == 0) {
        outcome = deadline_passed ? FetchOutcome::kTimedOut : FetchOutcome::kNotFound;
    } else if (fetch.best_deleted) {
        outcome = FetchOutcome::kDeleted;
    } else if (fetch.best_data.size() > settings_.max_session_bytes) {
        outcome = FetchOutcome::kTooLarge;
        log_too_large(fetch, now);
    } else {
        SessionCache::Save saved =
            feed_.insert_fetched(fetch.id, fetch.best_data.data(), fetch.best_data.size(),
                                 fetch.best_expiry_us, fetch.best_version);
        outcome =
            saved == SessionCache::Save::kNoSpace ? FetchOutcome::kNoSpace : FetchOutcome::kFound;
    }
    if (!answer(fetch, outcome) && outcome == FetchOutcome::kFound) {
        // The request gave up before it heard: nobody holds this copy, and by the time another
        // request finds it another server may have taken the session over.
        feed_.check_before_serving(fetch.id);
    }
}

// An owner of the session's shard went out of this agent's reach lately and was not asked: it may
// hold a newer version, acknowledged while the others were out of that server's reach, or have
// answered another server's take-over that the owners asked here never saw. An owner that
// vouches for its copy vouches only for what it saw. A take-over or a check concludes from every
// owner, or waits (a 503) until the one out answers again, the nodes that are up hold its shard
// as many times as it was held (ReplicationWindow), or kOwnerOutMs pass. The fault campaign:
// s100b (web-3, out of node-1's reach under packet loss, had 47 changes acknowledged by node-2
// alone; node-2 was cut off, and node-1 answered a misroute from its copy from before); CI on
// 61107b6 (web-3 took a session back through node-3 alone, node-2 out of its reach; web-2, node-3
// out of its reach, took it over 0.2 s later through node-2, which vouched for the copy from
// before web-3's three changes); s90h, the same with a check.
bool FetchService::owner_out_lately(const Pending &fetch) const {
    std::uint32_t shard = wire::shard_of(fetch.id);
    for (std::size_t i = 0; i < bank_.node_count(); ++i) {
        if (fetch.asked_node[i] != Pending::Asked::kAnswered && bank_.owns(i, shard) &&
            bank_.out_lately(i, kOwnerOutMs)) {
            return true;
        }
    }
    return false;
}

// A node this agent, started lately, has not reached yet may own the session's shard: what it
// owns is not known (a test of fix 38 met it, the web server's connection to one owner not made
// yet). Waited for only where no owner that answered vouches: every node would be, and while a
// node is down, a server restarted then would answer every check and take-over 503 for
// kOwnerOutMs.
bool FetchService::node_unheard_lately(const Pending &fetch) const {
    for (std::size_t i = 0; i < bank_.node_count(); ++i) {
        if (fetch.asked_node[i] != Pending::Asked::kAnswered &&
            bank_.unheard_lately(i, kOwnerOutMs)) {
            return true;
        }
    }
    return false;
}

// A copy held here after the server stalled, against the bank's best: replaced when the bank's
// is newer (BackupFeed::reconcile). A deadline with no answer leaves it unchecked: the worker does
// not serve it (it may be stale) and the next request asks again.
void FetchService::finish_check(Pending &fetch, bool deadline_passed) {
    FetchOutcome outcome = FetchOutcome::kTimedOut;
    if (owner_out_lately(fetch)) {
        outcome = FetchOutcome::kOwnerOut;
    } else if (fetch.best_version != 0 || !deadline_passed) {
        BackupFeed::BankCopy bank;
        bank.found = fetch.best_version != 0;
        bank.deleted = fetch.best_deleted;
        bank.version = fetch.best_version;
        bank.data = fetch.best_data;
        bank.expiry_us = fetch.best_expiry_us;
        bank.too_large = fetch.best_data.size() > settings_.max_session_bytes;
        using R = BackupFeed::Reconciled;
        R result = feed_.reconcile(fetch.id, bank);
        outcome = result == R::kCurrent    ? FetchOutcome::kCurrent
                  : result == R::kReplaced ? FetchOutcome::kReplaced
                  : result == R::kDeleted  ? FetchOutcome::kDeleted
                  : result == R::kTooLarge ? FetchOutcome::kTooLarge
                  : result == R::kNoSpace  ? FetchOutcome::kNoSpace
                                           : FetchOutcome::kTimedOut;
        if (result != R::kNotWaiting) {
            feed_.count_check(result != R::kCurrent);
        }
    }
    reply(fetch, outcome);
}

// RS0323, at most one line per kTooLargeLogEveryMs: the sessions that fail over are many when a
// server dies, and each would say the same.
void FetchService::log_too_large(const Pending &fetch, MonotonicTime now) {
    if (too_large_logged_ != MonotonicTime() &&
        now - too_large_logged_ < std::chrono::milliseconds(kTooLargeLogEveryMs)) {
        ++too_large_unlogged_;
        return;
    }
    char prefix[7];
    session_id_log_prefix(fetch.id, prefix);
    char unlogged[64] = "";
    if (too_large_unlogged_ > 0) {
        std::snprintf(unlogged, sizeof unlogged, " (and %llu more since the last such line)",
                      static_cast<unsigned long long>(too_large_unlogged_));
    }
    log_line(log_, AgentLogLevel::kWarn,
             "RS0323: session %s... not taken over: the bank holds it at %zu bytes, more than "
             "RhythmSessionMaxSize here (%llu bytes); give every server of the bank the same "
             "RhythmSessionMaxSize%s",
             prefix, fetch.best_data.size(),
             static_cast<unsigned long long>(settings_.max_session_bytes), unlogged);
    too_large_logged_ = now;
    too_large_unlogged_ = 0;
}

bool FetchService::answer(Pending &fetch, FetchOutcome outcome) {
    // Counted before the worker hears: its request may end, and server-status be read, before
    // this process runs again. Not found and deleted both count as misses.
    using Count = BackupFeed::FetchCount;
    static constexpr std::pair<FetchOutcome, Count> kCountedAs[] = {
        {FetchOutcome::kFound, Count::kFound},         {FetchOutcome::kTimedOut, Count::kTimedOut},
        {FetchOutcome::kBankSilent, Count::kTimedOut}, {FetchOutcome::kShed, Count::kShed},
        {FetchOutcome::kOwnerOut, Count::kTimedOut},   {FetchOutcome::kTooLarge, Count::kTooLarge},
        {FetchOutcome::kNoSpace, Count::kNoSpace},
    };
    Count count = Count::kMissing;
    for (const auto &[answered, counted] : kCountedAs) {
        if (answered == outcome) {
            count = counted;
        }
    }
    feed_.count_fetch(count);
    return reply(fetch, outcome);
}

bool FetchService::reply(Pending &fetch, FetchOutcome outcome) {
    log_decision(fetch, outcome);
    auto byte = static_cast<std::uint8_t>(outcome);
    bool taken = send(fetch.fd, &byte, 1, MSG_NOSIGNAL) == 1;
    close(fetch.fd);
    fetch.fd = -1;
    return taken;
}

// RS0335 (debug): a take-over's or check's outcome and each node's part in it, so that a fault
// campaign's rollback can be traced to the answers it was decided on (rss_node's RN0501 says why
// each node answered as it did).
void FetchService::log_decision(const Pending &fetch, FetchOutcome outcome) const {
    char nodes[400] = "";
    std::size_t used = 0;
    for (std::size_t i = 0; i < fetch.asked_node.size() && used < sizeof nodes; ++i) {
        std::string_view name = bank_.name(i);
        const Pending::Answer &a = fetch.answers[i];
        int n = 0;
        switch (fetch.asked_node[i]) {
            case Pending::Asked::kNo:
                n = std::snprintf(nodes + used, sizeof nodes - used, "; %.*s not asked",
                                  static_cast<int>(name.size()), name.data());
                break;
            case Pending::Asked::kYes:
            case Pending::Asked::kLost:
                n = std::snprintf(nodes + used, sizeof nodes - used, "; %.*s no answer",
                                  static_cast<int>(name.size()), name.data());
                break;
            case Pending::Asked::kAnswered: {
                char held[48] = "not found";
                if (a.status != wire::FetchStatus::kNotFound) {
                    std::snprintf(held, sizeof held, "%s %llu.%llu",
                                  a.status == wire::FetchStatus::kDeleted ? "ended at" : "found",
                                  static_cast<unsigned long long>(wire::version_term(a.version)),
                                  static_cast<unsigned long long>(wire::version_count(a.version)));
                }
                n = std::snprintf(nodes + used, sizeof nodes - used, "; %.*s %s, %s%s",
                                  static_cast<int>(name.size()), name.data(), held,
                                  a.owner ? "owner" : "no owner",
                                  !a.owner        ? ""
                                  : a.provisional ? ", provisional"
                                                  : ", vouched");
                break;
            }
        }
        used += n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    char prefix[7];
    session_id_log_prefix(fetch.id, prefix);
    log_line(log_, AgentLogLevel::kDebug, "RS0335: %s of session %s...: %s%s%s",
             fetch.check ? "check" : "take-over", prefix, fetch_outcome_name(outcome),
             fetch.asked_again ? " (asked again after this server answered a handover of it)" : "",
             nodes);
}

}  // namespace rhythm
