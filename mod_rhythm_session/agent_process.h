// httpd glue for the backup agent: forks it from the parent after the configuration is read,
// restarts it when it dies, and stops and reaps it when the generation ends (a restart, where
// the next generation forks its own, or the stop), the way mod_cgid supervises its daemon.
#pragma once

#include "httpd.h"

#include "apr_pools.h"

#include <cstdint>
#include <string>
#include <vector>

#include "core/session_cache.h"
#include "wire/curve.h"

namespace rhythm {

struct BackupSettings {
    bool enabled = false;
    std::vector<std::string> nodes;       // SessionBackupNode, in order
    std::string server_id;                // SessionBackupServerId; empty: host name and port
    std::string socket_path;              // the fetch channel, in httpd's runtime directory
    wire::CurveClientKeys curve;          // SessionBackupCurve; disabled: plain text
    int agent_nice = 0;                   // SessionBackupAgentNice
    std::uint64_t max_session_bytes = 0;  // RhythmSessionMaxSize
    std::uint64_t outage_grace_ms = 0;    // SessionBackupOutageGrace
};

// Forks the agent for this generation. False (logged) if it cannot.
bool start_backup_agent(apr_pool_t *pconf, server_rec *s, const BackupSettings &settings,
                        const SessionCache &cache);

}  // namespace rhythm
