// The module's Prometheus metrics page (see metrics_page.h).
#include "metrics_page.h"

#include "http_protocol.h"

#include "core/backup_feed.h"
#include "core/module_metrics.h"
#include "core/status_figures.h"

namespace rhythm {

int serve_metrics(request_rec *r, SessionCache &cache, bool backup, bool curve) {
    r->allowed |= (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    std::string text;
    if (backup) {
        BackupStats b = BackupFeed(cache).stats();
        text = module_metrics(cache.stats(), &b, curve, agent_turn_age_us(b));
    } else {
        text = module_metrics(cache.stats(), nullptr, curve, 0);
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    // Figures of now: never from a cache.
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (!r->header_only) {
        ap_rwrite(text.data(), static_cast<int>(text.size()), r);
    }
    return OK;
}

}  // namespace rhythm
