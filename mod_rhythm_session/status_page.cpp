// The module's sections of mod_status's server-status page (see status_page.h).
#include "status_page.h"

#include "apr_strings.h"
#include "http_protocol.h"

extern "C" {
#include "mod_status.h"
}

#include <vector>

#include "common/clock.h"
#include "core/agent_watch.h"
#include "core/backup_feed.h"

namespace rhythm {
namespace {

struct StatusLine {
    const char *key;    // the ?auto name
    const char *label;  // the HTML label
    std::uint64_t value;
};

void print_table(request_rec *r, int flags, const char *title, const StatusLine *lines,
                 std::size_t count) {
    if (flags & AP_STATUS_SHORT) {
        for (std::size_t i = 0; i < count; ++i) {
            ap_rprintf(r, "%s: %" APR_UINT64_T_FMT "\n", lines[i].key,
                       static_cast<apr_uint64_t>(lines[i].value));
        }
        return;
    }
    ap_rprintf(r, "<hr />\n<h2>%s</h2>\n<table border=\"0\">\n", title);
    for (std::size_t i = 0; i < count; ++i) {
        ap_rprintf(r, "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td></tr>\n", lines[i].label,
                   static_cast<apr_uint64_t>(lines[i].value));
    }
    ap_rputs("</table>\n", r);
}

// Milliseconds from a time in the past to now; 0 for none.
std::uint64_t ms_since(WallTime then) {
    WallTime now = WallTime::now();
    return then > WallTime() && now > then
               ? static_cast<std::uint64_t>((now - then) / std::chrono::milliseconds(1))
               : 0;
}

// One row per node the agent knows: its state and how far behind its acknowledgements are.
void print_node_table(request_rec *r, int flags, const std::vector<rhythm::NodeReport> &nodes) {
    static const char *const kStateNames[] = {"unknown", "up", "down", "full"};
    if (!(flags & AP_STATUS_SHORT)) {
        ap_rputs(
            "<h2>Rhythm backup nodes</h2>\n<table border=\"0\"><tr><th>Node</th>"
            "<th>Name</th><th>State</th><th>Last answer (ms ago)</th>"
            "<th>Unacknowledged changes</th><th>Oldest unacknowledged (ms)</th>"
            "<th>Refused for lack of memory</th></tr>\n",
            r);
    }
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const rhythm::NodeReport &n = nodes[i];
        const char *state = kStateNames[static_cast<int>(n.state) % 4];
        apr_uint64_t last = ms_since(WallTime(n.last_answer_us));
        apr_uint64_t oldest = ms_since(WallTime(n.oldest_unacknowledged_us));
        apr_uint64_t unacked = n.unacknowledged;
        apr_uint64_t refused = n.refused;
        if (flags & AP_STATUS_SHORT) {
            // APR's formatter has no %zu: the number goes in as apr_size_t.
            apr_size_t k = i + 1;
            ap_rprintf(
                r,
                "RhythmBackupNode%" APR_SIZE_T_FMT
                "Endpoint: %s\n"
                "RhythmBackupNode%" APR_SIZE_T_FMT
                "Name: %s\n"
                "RhythmBackupNode%" APR_SIZE_T_FMT
                "State: %s\n"
                "RhythmBackupNode%" APR_SIZE_T_FMT "LastAnswerMs: %" APR_UINT64_T_FMT
                "\n"
                "RhythmBackupNode%" APR_SIZE_T_FMT "Unacknowledged: %" APR_UINT64_T_FMT
                "\n"
                "RhythmBackupNode%" APR_SIZE_T_FMT "OldestUnacknowledgedMs: %" APR_UINT64_T_FMT
                "\n"
                "RhythmBackupNode%" APR_SIZE_T_FMT "Refused: %" APR_UINT64_T_FMT "\n",
                k, n.endpoint, k, n.name, k, state, k, last, k, unacked, k, oldest, k, refused);
        } else {
            ap_rprintf(r,
                       "<tr><td>%s</td><td>%s</td><td>%s</td><td>%" APR_UINT64_T_FMT
                       "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                       "</td><td>%" APR_UINT64_T_FMT "</td></tr>\n",
                       ap_escape_html(r->pool, n.endpoint), ap_escape_html(r->pool, n.name), state,
                       last, unacked, oldest, refused);
        }
    }
    if (!(flags & AP_STATUS_SHORT)) {
        ap_rputs("</table>\n", r);
    }
}

void print_cache(request_rec *r, int flags, SessionCache &cache) {
    CacheStats s = cache.stats();
    const StatusLine lines[] = {
        {"RhythmSessions", "Sessions", s.sessions},
        {"RhythmSessionsMax", "Room for sessions", s.max_sessions},
        {"RhythmBytesUsed", "Bytes used (session data)", s.payload_bytes},
        {"RhythmArenaBytesUsed", "Arena bytes used (whole chunks)", s.arena_bytes_used},
        {"RhythmArenaBytesTotal", "Arena bytes total", s.arena_bytes},
        {"RhythmBytesTotal", "Segment bytes total", s.segment_bytes},
#define RHYTHM_ROW(field, key, label) {key, label, s.field},
        RHYTHM_CACHE_COUNTERS(RHYTHM_ROW)
#undef RHYTHM_ROW
    };
    print_table(r, flags, "Rhythm sessions", lines, sizeof lines / sizeof lines[0]);
}

// The agent's figures, with their age: an agent that stopped turning its loop writes nothing, and
// what it wrote last must not pass for now.
void print_backup(request_rec *r, int flags, SessionCache &cache, bool curve) {
    BackupStats b = BackupFeed(cache).stats();
    std::int64_t turn_age_us =
        b.agent_turn == MonotonicTime() ? 0 : (MonotonicTime::coarse_now() - b.agent_turn).count();
    const char *agent_state = b.agent_turn == MonotonicTime()                       ? "not started"
                              : turn_age_us >= AgentWatch::Settings{}.warn_after_us ? "hung"
                                                                                    : "running";
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "RhythmBackupAgentState: %s\n", agent_state);
    }
    const StatusLine lines[] = {
        {"RhythmBackupAgentPid", "Backup agent process", static_cast<std::uint64_t>(b.agent_pid)},
        {"RhythmBackupAgentLastTurnMs",
         "Backup agent's last turn, ms ago (the age of the figures it writes)",
         static_cast<std::uint64_t>(turn_age_us / 1000)},
        {"RhythmBackupNodes", "Nodes configured", b.nodes_total},
        {"RhythmBackupNodesUp", "Nodes answering", b.nodes_up},
        {"RhythmBackupCurve", "Traffic under CURVE (1) or in plain text (0)",
         curve ? std::uint64_t{1} : std::uint64_t{0}},
        {"RhythmBackupPending", "Changes waiting to be published", b.pending},
        {"RhythmBackupLagSamples", "Acknowledgements in the last 10-20 s", b.lag_samples},
        {"RhythmBackupLagP50Us", "Save to acknowledgement, p50 (us)", b.lag_p50_us},
        {"RhythmBackupLagP99Us", "Save to acknowledgement, p99 (us)", b.lag_p99_us},
        {"RhythmBackupOldestUnacknowledgedMs", "Oldest unacknowledged change (ms ago)",
         ms_since(b.oldest_unacknowledged)},
        {"RhythmSessionsUnbacked", "Sessions and deletions the bank does not hold yet",
         b.unbacked_sessions},
#define RHYTHM_ROW(field, key, label) {key, label, b.field},
        RHYTHM_BACKUP_COUNTERS(RHYTHM_ROW)
#undef RHYTHM_ROW
    };
    print_table(r, flags, "Rhythm backup", lines, sizeof lines / sizeof lines[0]);
    if (!(flags & AP_STATUS_SHORT)) {
        ap_rprintf(
            r,
            "<p>Backup agent: %s; the figures it writes (above and below) are %" APR_INT64_T_FMT
            " ms old.</p>\n",
            agent_state, static_cast<apr_int64_t>(turn_age_us / 1000));
    }
    print_node_table(r, flags, b.node_reports);
}

}  // namespace

void print_status(request_rec *r, int flags, SessionCache &cache, bool backup, bool curve) {
    print_cache(r, flags, cache);
    if (backup) {
        print_backup(r, flags, cache, curve);
    }
}

}  // namespace rhythm
