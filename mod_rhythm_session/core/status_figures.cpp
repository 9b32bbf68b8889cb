#include "core/status_figures.h"

#include "core/agent_watch.h"

namespace rhythm {

std::vector<StatusFigure> cache_figures(const CacheStats &s) {
    return {{"RhythmSessions", "Sessions", s.sessions, false},
            {"RhythmSessionsMax", "Room for sessions", s.max_sessions, false},
            {"RhythmBytesUsed", "Bytes used (session data)", s.payload_bytes, false},
            {"RhythmArenaBytesUsed", "Arena bytes used (whole chunks)", s.arena_bytes_used, false},
            {"RhythmArenaBytesTotal", "Arena bytes total", s.arena_bytes, false, 1,
             "rhythm_arena_size_bytes"},
            {"RhythmBytesTotal", "Segment bytes total", s.segment_bytes, false, 1,
             "rhythm_segment_size_bytes"},
#define RHYTHM_FIGURE(field, key, label) {key, label, s.field, true},
            RHYTHM_CACHE_COUNTERS(RHYTHM_FIGURE)
#undef RHYTHM_FIGURE
    };
}

std::int64_t agent_turn_age_us(const BackupStats &b) {
    return b.agent_turn == MonotonicTime() ? 0
                                           : (MonotonicTime::coarse_now() - b.agent_turn).count();
}

const char *agent_state_name(const BackupStats &b, std::int64_t turn_age_us) {
    return b.agent_turn == MonotonicTime()                       ? "not started"
           : turn_age_us >= AgentWatch::Settings{}.warn_after_us ? "hung"
                                                                 : "running";
}

std::uint64_t ms_since(WallTime then) {
    WallTime now = WallTime::now();
    return then > WallTime() && now > then
               ? static_cast<std::uint64_t>((now - then) / std::chrono::milliseconds(1))
               : 0;
}

std::vector<StatusFigure> backup_figures(const BackupStats &b, bool curve,
                                         std::int64_t turn_age_us) {
    return {
        {"RhythmBackupAgentPid", "Backup agent process", static_cast<std::uint64_t>(b.agent_pid),
         false},
        {"RhythmBackupAgentLastTurnMs",
         "Backup agent's last turn, ms ago (the age of the figures it writes)",
         static_cast<std::uint64_t>(turn_age_us / 1000), false, 1000},
        {"RhythmBackupNodes", "Nodes configured", b.nodes_total, false},
        {"RhythmBackupNodesUp", "Nodes answering", b.nodes_up, false},
        {"RhythmBackupCurve", "Traffic under CURVE (1) or in plain text (0)",
         curve ? std::uint64_t{1} : std::uint64_t{0}, false},
        {"RhythmBackupPending", "Changes waiting to be published", b.pending, false},
        {"RhythmBackupLagSamples", "Acknowledgements in the last 10-20 s", b.lag_samples, false},
        {"RhythmBackupLagP50Us", "Save to acknowledgement, p50 (us)", b.lag_p50_us, false, 1000000},
        {"RhythmBackupLagP99Us", "Save to acknowledgement, p99 (us)", b.lag_p99_us, false, 1000000},
        {"RhythmBackupOldestUnacknowledgedMs", "Oldest unacknowledged change (ms ago)",
         ms_since(b.oldest_unacknowledged), false, 1000},
        {"RhythmSessionsUnbacked", "Sessions and deletions the bank does not hold yet",
         b.unbacked_sessions, false},
#define RHYTHM_FIGURE(field, key, label) {key, label, b.field, true},
        RHYTHM_BACKUP_COUNTERS(RHYTHM_FIGURE)
#undef RHYTHM_FIGURE
    };
}

const char *node_state_name(NodeState state) {
    static const char *const kNames[] = {"unknown", "up", "down", "full"};
    auto i = static_cast<std::size_t>(state);
    return i < sizeof kNames / sizeof kNames[0] ? kNames[i] : "unknown";
}

}  // namespace rhythm
