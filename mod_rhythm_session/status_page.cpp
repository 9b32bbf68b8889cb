// The module's sections of mod_status's server-status page (see status_page.h).
#include "status_page.h"

#include "apr_strings.h"
#include "http_protocol.h"

extern "C" {
#include "mod_status.h"
}

#include <vector>

#include "common/clock.h"
#include "core/backup_feed.h"
#include "core/status_figures.h"

namespace rhythm {
namespace {

void print_table(request_rec *r, int flags, const char *title,
                 const std::vector<StatusFigure> &figures) {
    if (flags & AP_STATUS_SHORT) {
        for (const StatusFigure &f : figures) {
            ap_rprintf(r, "%s: %" APR_UINT64_T_FMT "\n", f.key, static_cast<apr_uint64_t>(f.value));
        }
        return;
    }
    ap_rprintf(r, "<hr />\n<h2>%s</h2>\n<table border=\"0\">\n", title);
    for (const StatusFigure &f : figures) {
        ap_rprintf(r, "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td></tr>\n", f.label,
                   static_cast<apr_uint64_t>(f.value));
    }
    ap_rputs("</table>\n", r);
}

// One row per node the agent knows: its state and how far behind its acknowledgements are.
void print_node_table(request_rec *r, int flags, const std::vector<rhythm::NodeReport> &nodes) {
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
        const char *state = node_state_name(n.state);
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
    print_table(r, flags, "Rhythm sessions", cache_figures(cache.stats()));
}

// The agent's figures, with their age: an agent that stopped turning its loop writes nothing, and
// what it wrote last must not pass for now.
void print_backup(request_rec *r, int flags, SessionCache &cache, bool curve) {
    BackupStats b = BackupFeed(cache).stats();
    std::int64_t turn_age_us = agent_turn_age_us(b);
    const char *agent_state = agent_state_name(b, turn_age_us);
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "RhythmBackupAgentState: %s\n", agent_state);
    }
    print_table(r, flags, "Rhythm backup", backup_figures(b, curve, turn_age_us));
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
