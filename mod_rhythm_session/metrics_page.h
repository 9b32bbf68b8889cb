// `SetHandler rhythm-metrics`: the module's figures for Prometheus (core/module_metrics.h), in
// its text format, to GET and HEAD.
#pragma once

#include "httpd.h"

#include "core/session_cache.h"

namespace rhythm {

int serve_metrics(request_rec *r, SessionCache &cache, bool backup, bool curve);

}  // namespace rhythm
