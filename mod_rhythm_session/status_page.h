// The module's sections of mod_status's server-status page: the session cache's figures and,
// with backup on, the backup's and each node's, as an HTML table and as `?auto` lines
// (flags & AP_STATUS_SHORT). The rows of the counters come from core/counters.h; the agent's
// figures are shown with their age. docs/backup.md and README.md list every line.
#pragma once

#include "httpd.h"

#include "core/session_cache.h"

namespace rhythm {

void print_status(request_rec *r, int flags, SessionCache &cache, bool backup, bool curve);

}  // namespace rhythm
