// The counters the session segment keeps, each written once: X(field, ?auto key, HTML label).
// The segment's structures (segment.h), the stats snapshots (CacheStats, BackupStats) and the
// server-status rows (status_page.cpp) are generated from these lists, so a counter added here
// appears everywhere; its increments are the only other places that name it.
#pragma once

// The session cache: lookups, saves, evictions, locks.
#define RHYTHM_CACHE_COUNTERS(X)                                                      \
    X(hits, "RhythmHits", "Hits")                                                     \
    X(misses, "RhythmMisses", "Misses")                                               \
    X(saves, "RhythmSaves", "Saves")                                                  \
    X(deletions, "RhythmDeletions", "Deletions")                                      \
    X(evictions, "RhythmEvictions", "Evictions")                                      \
    X(expirations, "RhythmExpirations", "Expirations")                                \
    X(lock_waits, "RhythmLockWaits", "Lock waits")                                    \
    X(lock_timeouts, "RhythmLockTimeouts", "Lock timeouts")                           \
    X(locks_reclaimed, "RhythmLocksReclaimed", "Locks reclaimed from dead processes") \
    X(oversized_refused, "RhythmOversizedRefused", "Oversized saves refused")         \
    X(no_space, "RhythmNoSpace", "Saves refused for lack of space")                   \
    X(renewals, "RhythmSessionsRenewed", "Session IDs renewed at a login")            \
    X(ids_refused, "RhythmSessionIdsRefused", "Session IDs refused: not signed by a key here")

// The backup: what was published and acknowledged, what was refused, lost or dropped, the
// failover fetches, the stalls.
#define RHYTHM_BACKUP_COUNTERS(X)                                                                 \
    X(agent_starts, "RhythmBackupAgentStarts", "Backup agent starts")                             \
    X(published, "RhythmBackupPublished", "Changes published")                                    \
    X(acknowledged, "RhythmBackupAcknowledged", "Changes acknowledged by the bank")               \
    X(saves_refused_unbacked, "RhythmBackupSavesRefusedUnbacked",                                 \
      "Saves refused: room only by evicting sessions the bank lacks")                             \
    X(evicted_unbacked, "RhythmBackupEvictedUnbacked", "Evicted before the bank had them (lost)") \
    X(stale_dropped, "RhythmBackupStaleDropped", "Stale copies dropped (newer elsewhere)")        \
    X(handed_over, "RhythmBackupHandedOver", "Sessions handed over to a server taking them over") \
    X(refused_by_nodes, "RhythmBackupRefusedByNodes", "Changes nodes refused for lack of memory") \
    X(fetched_found, "RhythmBackupFetched", "Sessions taken over from the bank")                  \
    X(fetched_missing, "RhythmBackupFetchMisses", "Fetches the bank did not know")                \
    X(fetch_timeouts, "RhythmBackupFetchTimeouts", "Fetches not answered in time")                \
    X(fetches_shed, "RhythmBackupFetchesShed", "Fetches shed (too many waiting)")                 \
    X(fetches_too_large, "RhythmBackupFetchTooLarge",                                             \
      "Fetches not taken over: larger than RhythmSessionMaxSize")                                 \
    X(fetches_no_space, "RhythmBackupFetchNoSpace",                                               \
      "Fetches not taken over: cache full of sessions in use")                                    \
    X(stalls, "RhythmBackupStalls", "Times this server was found stopped or cut off")             \
    X(stall_checks, "RhythmBackupStallChecks", "Sessions checked against the bank after a stall") \
    X(stall_replaced, "RhythmBackupStallReplaced", "... that the bank held newer, or deleted")

// One counter as a field of a segment structure, and of a snapshot (zeroed). The copies and
// the status rows define their own X where they are used.
#define RHYTHM_COUNTER_FIELD(field, key, label) std::uint64_t field;
#define RHYTHM_COUNTER_FIELD_ZERO(field, key, label) std::uint64_t field = 0;
