// mod_rhythm_session: a storage provider for httpd's mod_session that keeps every session in a
// shared-memory segment (core/session_cache.h) common to all worker processes.
//
// This file is the module, as httpd readers expect it in one file: directives, the segment's
// life across restarts, mod_session's load/save hooks and the per-request lock. The agent's
// supervision is in agent_process.cpp, the server-status sections in status_page.cpp; everything
// else it calls lives in core/ and backup/ and is tested without httpd.
//
// A request for an existing session takes the session's lock once, on the top-level request
// (sub-requests and internal redirects share it), in header_parser when it can so that a lock
// timeout becomes a clean 503. mod_session's save releases it; a pool cleanup releases it on
// every other path.
#include "httpd.h"

#include "ap_listen.h"
#include "ap_mpm.h"
#include "apr_shm.h"
#include "apr_strings.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_cookies.h"

#include "mpm_common.h"

extern "C" {
#include "mod_session.h"
#include "mod_status.h"
}

#include <atomic>
#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <unistd.h>

#include "agent_process.h"
#include "backup/fetch_channel.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "common/name.h"
#include "common/number.h"
#include "common/size.h"
#include "core/backup_feed.h"
#include "core/config_value.h"
#include "core/id_signer.h"
#include "core/line_rate.h"
#include "core/login_identity.h"
#include "core/session_cache.h"
#include "core/session_cookie.h"
#include "core/session_id.h"
#include "metrics_page.h"
#include "status_page.h"
#include "wire/curve.h"

extern "C" {
extern module AP_MODULE_DECLARE_DATA rhythm_session_module;
}

#ifdef APLOG_USE_MODULE
APLOG_USE_MODULE(rhythm_session);
#endif

namespace {

using rhythm::SessionCache;
using rhythm::SessionId;

constexpr const char kRetainedKey[] = "mod_rhythm_session: segment";
constexpr std::uint64_t kDefaultCacheBytes = 64ULL << 20;
constexpr std::uint64_t kDefaultMaxSessionBytes = 64ULL << 10;
constexpr std::uint64_t kDefaultLockTimeoutMs = 10000;
constexpr std::uint64_t kDefaultBackupTimeoutMs = 200;
constexpr std::uint64_t kDefaultBackupAgentNice = 10;
constexpr std::uint64_t kDefaultBackupOutageGraceMs = 30000;
constexpr std::uint64_t kDefaultIdleTimeoutS = 30 * 60;
constexpr std::uint64_t kMaxIdleTimeoutS = 365 * 24 * 3600;
// Expired sessions the parent reclaims per monitor tick (every 10 s, see rhythm_monitor).
constexpr std::uint32_t kSweepBudget = 8192;

// The server-wide settings: every server-wide directive is for the main server only. httpd makes
// them anew (create_server_config, on the configuration pool) each time it reads the
// configuration; the backup's, which hold strings, are destroyed with that pool, never by a
// static destructor in an exiting child.
struct ServerSettings {
    std::uint64_t cache_bytes = kDefaultCacheBytes;
    std::uint64_t max_session_bytes = kDefaultMaxSessionBytes;
    std::uint64_t lock_timeout_ms = kDefaultLockTimeoutMs;
    std::uint64_t backup_timeout_ms = kDefaultBackupTimeoutMs;
    std::uint64_t backup_agent_nice = kDefaultBackupAgentNice;
    std::uint64_t backup_outage_grace_ms = kDefaultBackupOutageGraceMs;
    bool backup_evict_unbacked = false;
    rhythm::BackupSettings *backup = nullptr;
    rhythm::IdSigner *id_signer = nullptr;  // RhythmSessionKeyFile; no keys: IDs unsigned
    bool accept_unsigned = false;           // ... accept-unsigned: a change-over to signing
};

ServerSettings *server_settings(const server_rec *s) {
    return static_cast<ServerSettings *>(
        ap_get_module_config(s->module_config, &rhythm_session_module));
}

// The main server's, for the request path: set at each generation's post_config, inherited by
// the children.
ServerSettings *g_settings = nullptr;

// The segment outlives module reloads: its handle is kept in httpd's retained data.
struct RetainedSegment {
    apr_shm_t *shm;
    void *base;
    apr_size_t bytes;
};

SessionCache g_cache;
bool g_cache_ready = false;
// mod_session's module record, found at start-up (see rhythm_pre_config).
module *g_session_module = nullptr;
rhythm::ProcessIdentity g_process;

struct DirConfig {
    int enabled;
    int enabled_set;
    const char *cookie_name;
    const char *cookie_attrs;      // over plain HTTP
    const char *cookie_tls_attrs;  // over TLS
    int cookie_set;
    long idle_timeout_s;  // 0: none
    int idle_timeout_set;
    int renew_on_login;  // RhythmSessionRenewOnLogin
    int renew_on_login_set;
    const char *login_key;  // RhythmSessionLoginKey; null: mod_session's and mod_auth_form's
    int login_key_set;
};

// Per top-level request.
struct RequestState {
    bool resolved;  // the cookie was read and the lock attempted
    // The session cannot be had now (its lock was not granted in time, or its copy could not be
    // checked after a stall): serve 503, change nothing.
    bool unavailable;
    SessionCache::Handle handle;
    session_rec *session;
    SessionId id;             // of the session held locked
    const char *loaded_data;  // the session as it was loaded, to tell a login at the save
};

request_rec *top_request(request_rec *r) {
    for (;;) {
        if (r->main) {
            r = r->main;
        } else if (r->prev) {
            r = r->prev;
        } else {
            return r;
        }
    }
}

RequestState *request_state(request_rec *r) {
    request_rec *top = top_request(r);
    auto *st = static_cast<RequestState *>(
        ap_get_module_config(top->request_config, &rhythm_session_module));
    if (!st) {
        st = static_cast<RequestState *>(apr_pcalloc(top->pool, sizeof(RequestState)));
        st->handle = SessionCache::Handle();
        ap_set_module_config(top->request_config, &rhythm_session_module, st);
    }
    return st;
}

const DirConfig *dir_config(request_rec *r) {
    return static_cast<const DirConfig *>(
        ap_get_module_config(r->per_dir_config, &rhythm_session_module));
}

const char *cookie_attrs(request_rec *r, const DirConfig *conf) {
    return ap_ssl_conn_is_ssl(r->connection) ? conf->cookie_tls_attrs : conf->cookie_attrs;
}

// mod_session's own SessionInclude/SessionExclude test (it is static there).
bool session_included(request_rec *r, const session_dir_conf *sconf) {
    bool included = true;
    if (sconf->includes->nelts) {
        included = false;
        const char **includes = reinterpret_cast<const char **>(sconf->includes->elts);
        for (int i = 0; !included && i < sconf->includes->nelts; ++i) {
            included = std::strncmp(r->uri, includes[i], std::strlen(includes[i])) == 0;
        }
    }
    const char **excludes = reinterpret_cast<const char **>(sconf->excludes->elts);
    for (int i = 0; included && i < sconf->excludes->nelts; ++i) {
        included = std::strncmp(r->uri, excludes[i], std::strlen(excludes[i])) != 0;
    }
    return included;
}

apr_status_t release_lock(void *data) {
    auto *st = static_cast<RequestState *>(data);
    if (st->handle.held()) {
        g_cache.release(&st->handle);
    }
    return APR_SUCCESS;
}

void *pool_allocate(void *pool, std::size_t bytes) {
    return apr_palloc(static_cast<apr_pool_t *>(pool), bytes);
}

// What a take-over from the bank came to.
enum class TakeOver { kTaken, kNewSession, kUnavailable };

// RS0205, RS0204 and RS0202 at most once a second per process each (RS0202's warnings apart
// from its info lines), with the number held back: a bank that does not answer makes every
// failover request say it, so does an owner out of reach every check after a stall, and a client
// can send made-up IDs as fast as it likes (4,426 a second wrote 12.6 MB of RS0202 lines in 15 s).
rhythm::LineRate g_unavailable_lines(apr_time_from_sec(1));
rhythm::LineRate g_unchecked_lines(apr_time_from_sec(1));
rhythm::LineRate g_new_session_lines(apr_time_from_sec(1));
rhythm::LineRate g_cannot_keep_lines(apr_time_from_sec(1));
rhythm::LineRate g_refused_id_lines(apr_time_from_sec(1));

// Asks the agent about `id`: a take-over, or with `check` a check of the copy held here. At most
// kFetchSlots requests wait for it at once, counted here (core/fetch_slots.h), so that a hung
// agent holds no more workers than that: past them a request is shed at once.
rhythm::FetchOutcome ask_agent(const SessionId &id, bool check) {
    // A little past the agent's own deadline: the slot is given back before anyone takes it.
    constexpr auto kSlotMargin = std::chrono::milliseconds(100);
    rhythm::BackupFeed feed(g_cache);
    auto timeout_ms = static_cast<std::uint32_t>(g_settings->backup_timeout_ms);
    rhythm::MonotonicTime now = rhythm::MonotonicTime::now();
    int slot = feed.take_fetch_slot(now, now + std::chrono::milliseconds(timeout_ms) + kSlotMargin);
    if (slot < 0) {
        feed.count_fetch(rhythm::BackupFeed::FetchCount::kShed);
        return rhythm::FetchOutcome::kShed;
    }
    rhythm::FetchOutcome outcome =
        rhythm::fetch_via_agent(g_settings->backup->socket_path, {id, timeout_ms, check});
    feed.give_back_fetch_slot(slot);
    return outcome;
}

// A well-formed ID this server does not hold: another server's user after a failover, perhaps.
// Asks the bank through the agent, waiting at most SessionBackupTimeout. A new session starts
// only where the bank says it has no such session, or every node of it has been silent for
// SessionBackupOutageGrace (the site serves on while the bank is down); where the bank was asked
// and did not answer in time, or the agent could not ask it, or the nodes fell silent only a
// moment ago, the request is answered 503 and the next one asks again: a new session there would
// drop a session the bank may well hold (found by the chaos checker, issue 15: under 30 % packet
// loss, a user moved back to a server counted from 1 again).
TakeOver fetch_from_bank(request_rec *r, const SessionId &id) {
    rhythm::FetchOutcome outcome = ask_agent(id, false);
    char prefix[7];
    rhythm::session_id_log_prefix(id, prefix);
    if (outcome == rhythm::FetchOutcome::kFound) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "RS0201: session %s... taken over from the bank", prefix);
        return TakeOver::kTaken;
    }
    if (outcome == rhythm::FetchOutcome::kTimedOut || outcome == rhythm::FetchOutcome::kNoAgent ||
        outcome == rhythm::FetchOutcome::kShed || outcome == rhythm::FetchOutcome::kBankSilent ||
        outcome == rhythm::FetchOutcome::kOwnerOut) {
        std::uint64_t suppressed = 0;
        if (g_unavailable_lines.admit(r->request_time, &suppressed)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "RS0205: session %s... not taken over (%s): answering 503; the next "
                          "request asks again (%" APR_UINT64_T_FMT
                          " more such in this process "
                          "since the last line)",
                          prefix, rhythm::fetch_outcome_name(outcome),
                          static_cast<apr_uint64_t>(suppressed));
        }
        return TakeOver::kUnavailable;
    }
    // The bank has it and this server cannot keep it: a configuration to fix, not a miss.
    bool cannot_keep =
        outcome == rhythm::FetchOutcome::kTooLarge || outcome == rhythm::FetchOutcome::kNoSpace;
    // The bank down: the user loses the session (and a login) the bank may still hold.
    bool bank_down = outcome == rhythm::FetchOutcome::kUnreachable;
    std::uint64_t held_back = 0;
    rhythm::LineRate &lines = cannot_keep ? g_cannot_keep_lines : g_new_session_lines;
    if (lines.admit(r->request_time, &held_back)) {
        char more[80] = "";
        if (held_back > 0) {
            apr_snprintf(more, sizeof more,
                         " (%" APR_UINT64_T_FMT " more such in this process since the last line)",
                         static_cast<apr_uint64_t>(held_back));
        }
        ap_log_rerror(APLOG_MARK, cannot_keep || bank_down ? APLOG_WARNING : APLOG_INFO, 0, r,
                      "RS0202: session %s... not taken over (%s): a new session starts%s", prefix,
                      rhythm::fetch_outcome_name(outcome), more);
    }
    return TakeOver::kNewSession;
}

// RS0206: a take-over the agent stored whose copy went before the worker could lock it.
void taken_over_but_gone(request_rec *r, const SessionId &id) {
    char prefix[7];
    rhythm::session_id_log_prefix(id, prefix);
    std::uint64_t suppressed = 0;
    if (g_unavailable_lines.admit(r->request_time, &suppressed)) {
        ap_log_rerror(
            APLOG_MARK, APLOG_WARNING, 0, r,
            "RS0206: session %s... taken over from the bank but gone before this "
            "request could hold it: answering 503; the next request asks again (%" APR_UINT64_T_FMT
            " more such in this process since the last line)",
            prefix, static_cast<apr_uint64_t>(suppressed));
    }
}

// After this server stalled (stopped as a whole, or cut off from the bank:
// SessionCache::Loaded::unchecked), the copy the request holds locked may have been continued on
// another server meanwhile. The agent checks it against the bank and replaces it with a newer
// copy, or removes it, before the request reads it. When no node can be reached at all the copy
// here is served (nobody can have taken it over from the bank meanwhile either), unless it was
// handed over to another server or fetched, and not changed here since: then only once the bank
// has been silent SessionBackupOutageGrace (another server may be continuing it); when the check
// gets no answer in time (SessionBackupTimeout), the request is answered 503 rather than risk a
// stale copy, and the next one tries again. False in that case.
bool check_with_bank(request_rec *r, const SessionId &id, RequestState *st,
                     SessionCache::Loaded *loaded, SessionCache::Acquire *result) {
    g_cache.begin_check(st->handle);
    rhythm::FetchOutcome outcome = ask_agent(id, true);
    char prefix[7];
    rhythm::session_id_log_prefix(id, prefix);
    bool answered =
        outcome != rhythm::FetchOutcome::kTimedOut && outcome != rhythm::FetchOutcome::kNoAgent &&
        outcome != rhythm::FetchOutcome::kShed && outcome != rhythm::FetchOutcome::kBankSilent &&
        outcome != rhythm::FetchOutcome::kOwnerOut;
    if (!answered) {
        g_cache.abandon_check(&st->handle);
        std::uint64_t suppressed = 0;
        if (g_unchecked_lines.admit(r->request_time, &suppressed)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                          "RS0204: session %s... could not be checked against the bank (after a "
                          "stall, a cut-off or an operator's end of every session) (%s): "
                          "answering 503; the next request tries again (%" APR_UINT64_T_FMT
                          " more such in this process since the last line)",
                          prefix, rhythm::fetch_outcome_name(outcome),
                          static_cast<apr_uint64_t>(suppressed));
        }
        return false;
    }
    *result = g_cache.finish_check(&st->handle, pool_allocate, top_request(r)->pool, loaded);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "RS0203: session %s... checked against the bank (after a stall, a cut-off or an "
                  "operator's end of every session): %s%s",
                  prefix, rhythm::fetch_outcome_name(outcome),
                  outcome == rhythm::FetchOutcome::kUnreachable ? ": the copy here is served" : "");
    return true;
}

// The response's cookie naming the session `id`.
void write_session_cookie(request_rec *r, const DirConfig *conf, const SessionId &id) {
    std::string text = g_settings->id_signer->cookie_value(id);
    ap_cookie_write(r, conf->cookie_name, text.c_str(), cookie_attrs(r, conf), 0,
                    r->err_headers_out, nullptr);
}

// The session ID a cookie's value names, if this server takes it: well formed, and signed with a
// key of RhythmSessionKeyFile where one is set. An ID no key here signed is refused before it
// costs a lookup or a fetch from the bank (RS0111, at most a line a second per process, and
// RhythmSessionIdsRefused). `*sign_again`: the cookie is to be signed with the current key.
bool accept_session_id(request_rec *r, const DirConfig *conf, const char *value, SessionId *id,
                       bool *sign_again) {
    using Verdict = rhythm::IdSigner::Verdict;
    Verdict verdict = g_settings->id_signer->verify(value, id);
    if (verdict == Verdict::kMalformed) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "RS0101: malformed session cookie %s ignored: a new session will be issued",
                      conf->cookie_name);
        return false;
    }
    if (verdict == Verdict::kUnsigned && g_settings->accept_unsigned) {
        verdict = Verdict::kOlderKey;  // taken, and signed on its response
    }
    if (verdict == Verdict::kUnsigned || verdict == Verdict::kBadSignature) {
        g_cache.count_id_refused();
        std::uint64_t held_back = 0;
        if (g_refused_id_lines.admit(r->request_time, &held_back)) {
            char prefix[7];
            rhythm::session_id_log_prefix(*id, prefix);
            ap_log_rerror(
                APLOG_MARK, APLOG_INFO, 0, r,
                "RS0111: session cookie %s refused (%s... %s): a new session will be issued "
                "(%" APR_UINT64_T_FMT " more such in this process since the last line)",
                conf->cookie_name, prefix, rhythm::id_verdict_name(verdict),
                static_cast<apr_uint64_t>(held_back));
        }
        return false;
    }
    *sign_again = verdict == Verdict::kOlderKey;
    return true;
}

// Reads the cookie and, when it names a session this server holds, takes the session's lock and
// builds its session_rec. Done once per top-level request.
void resolve_session(request_rec *r, RequestState *st, const DirConfig *conf) {
    if (st->resolved || !g_cache_ready) {
        return;
    }
    st->resolved = true;
    request_rec *top = top_request(r);
    session_rec *z = static_cast<session_rec *>(apr_pcalloc(top->pool, sizeof(session_rec)));
    z->pool = top->pool;
    z->entries = apr_table_make(top->pool, 10);
    st->session = z;

    const char *value = nullptr;
    ap_cookie_read(r, conf->cookie_name, &value, 0);
    if (!value) {
        return;
    }
    SessionId id;
    bool sign_again = false;
    if (!accept_session_id(r, conf, value, &id, &sign_again)) {
        return;
    }
    SessionCache::Loaded loaded;
    SessionCache::Acquire result =
        g_cache.acquire(id, g_process, r->request_time, g_settings->lock_timeout_ms, &st->handle,
                        pool_allocate, top->pool, &loaded);
    char prefix[7];
    if (loaded.stalled_us != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "RS0108: this server did not run for %" APR_INT64_T_FMT
                      " ms (stopped?): each session it holds is checked against the bank before "
                      "it is served again",
                      static_cast<apr_int64_t>(loaded.stalled_us / 1000));
    }
    if (result == SessionCache::Acquire::kNotFound && g_settings->backup->enabled) {
        switch (fetch_from_bank(r, id)) {
            case TakeOver::kTaken:
                result =
                    g_cache.acquire(id, g_process, r->request_time, g_settings->lock_timeout_ms,
                                    &st->handle, pool_allocate, top->pool, &loaded);
                if (result == SessionCache::Acquire::kNotFound) {
                    // Gone again before this request could hold it (the bank said a newer copy
                    // is elsewhere, or the cache made room): a new session would lose it.
                    taken_over_but_gone(r, id);
                    st->unavailable = true;
                    return;
                }
                break;
            case TakeOver::kNewSession:
                break;
            case TakeOver::kUnavailable:
                st->unavailable = true;
                return;
        }
    }
    if (result == SessionCache::Acquire::kLocked && loaded.unchecked &&
        !check_with_bank(r, id, st, &loaded, &result)) {
        st->unavailable = true;
        return;
    }
    switch (result) {
        case SessionCache::Acquire::kLocked:
            apr_pool_cleanup_register(top->pool, st, release_lock, apr_pool_cleanup_null);
            st->id = id;
            if (sign_again) {
                write_session_cookie(top, conf, id);  // under the key that signs now
            }
            z->encoded = st->loaded_data = loaded.data;
            z->expiry = loaded.expiry_us;
            break;
        case SessionCache::Acquire::kNotFound:
        case SessionCache::Acquire::kDeleted:
            break;
        case SessionCache::Acquire::kTimedOut:
        case SessionCache::Acquire::kNoWaiter:
            st->unavailable = true;
            rhythm::session_id_log_prefix(id, prefix);
            ap_log_rerror(
                APLOG_MARK, APLOG_WARNING, 0, r,
                "RS0102: session %s... still locked by an earlier request after %" APR_UINT64_T_FMT
                "ms (RhythmSessionLockTimeout)%s: answering 503",
                prefix, static_cast<apr_uint64_t>(g_settings->lock_timeout_ms),
                result == SessionCache::Acquire::kNoWaiter ? ", and every waiter slot is in use"
                                                           : "");
            break;
    }
}

bool session_enabled_here(request_rec *r, const DirConfig *conf) {
    if (!conf || !conf->enabled) {
        return false;
    }
    auto *sconf = static_cast<const session_dir_conf *>(
        ap_get_module_config(r->per_dir_config, g_session_module));
    return sconf && sconf->enabled && session_included(r, sconf);
}

// Takes the lock before authentication and the handler run, so that a lock timeout is a 503.
int rhythm_header_parser(request_rec *r) {
    const DirConfig *conf = dir_config(r);
    if (!session_enabled_here(r, conf)) {
        return DECLINED;
    }
    RequestState *st = request_state(r);
    resolve_session(r, st, conf);
    if (st->unavailable) {
        apr_table_setn(r->err_headers_out, "Retry-After", "1");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    return DECLINED;
}

// Where SessionMaxAge is not set, RhythmSessionIdleTimeout stands in for it, and mod_session
// itself then does the rest: every save moves the expiry forward (a request without changes
// saves too, unless the move is under SessionExpiryUpdateInterval), the identity encoder embeds
// it, and a session past it is refused at load. mod_session reads its max age from
// r->per_dir_config, at load and again at save, so r gets a copy of that vector holding a copy of
// mod_session's settings with the max age set: the vector may be shared with other requests (the
// server's defaults) and must never be written. Setting session_rec's maxage alone would not do (a
// save without changes would not move the expiry), nor would a session_encode hook (it runs after
// save has decided whether to write, so SessionExpiryUpdateInterval would stop every refresh by a
// read). Unless SessionExpiryUpdateInterval is set, the interval is a thirtieth of the timeout.
// This runs in the load hook, which mod_session runs before every save, so a request whose vector
// was replaced since (mod_dir's internal fast redirect) gets it again. Cost, per request (or
// sub-request) that loads the session: a pointer per module and one small struct from its pool; no
// system call.
void apply_idle_timeout(request_rec *r, const DirConfig *conf) {
    auto *sconf = static_cast<const session_dir_conf *>(
        ap_get_module_config(r->per_dir_config, g_session_module));
    if (conf->idle_timeout_s == 0 || !sconf || sconf->maxage_set) {
        return;
    }
    ap_conf_vector_t *copy = ap_create_request_config(r->pool);
    for (module *m = ap_top_module; m; m = m->next) {
        ap_set_module_config(copy, m, ap_get_module_config(r->per_dir_config, m));
    }
    auto *idle = static_cast<session_dir_conf *>(apr_pmemdup(r->pool, sconf, sizeof *sconf));
    idle->maxage = conf->idle_timeout_s;
    idle->maxage_set = 1;
    if (!idle->expiry_update_set) {
        // A read that moves the expiry is a save, and with backup a message to the bank: by
        // default only one read in each thirtieth of the timeout (a minute of 30) saves.
        idle->expiry_update_time = apr_time_from_sec(conf->idle_timeout_s) / 30;
    }
    ap_set_module_config(copy, g_session_module, idle);
    r->per_dir_config = copy;
}

apr_status_t rhythm_session_load(request_rec *r, session_rec **z) {
    const DirConfig *conf = dir_config(r);
    if (!conf || !conf->enabled) {
        return DECLINED;
    }
    apply_idle_timeout(r, conf);
    RequestState *st = request_state(r);
    resolve_session(r, st, conf);
    if (st->unavailable || !st->session) {
        return APR_EGENERAL;
    }
    *z = st->session;
    return OK;
}

// True when the session holds nothing but mod_session's own expiry stamp.
bool session_is_empty(const session_rec *z) {
    int keys = 0;
    apr_table_do(
        [](void *count, const char *key, const char *) -> int {
            if (std::strcmp(key, "expiry") != 0) {
                ++*static_cast<int *>(count);
            }
            return 1;
        },
        &keys, z->entries, nullptr);
    return keys == 0;
}

// RS0106 and RS0107, when due: what a full cache refused, or lost, because the bank does not hold
// those sessions. At most one line of each per 10 s across every process (core/log_gate.h); `r`
// is the request that found them due, or null in the parent's monitor.
void log_unbacked(const SessionCache::UnbackedLog &log, std::int64_t now_wall_us, server_rec *s,
                  request_rec *r, apr_pool_t *p) {
    auto since = [&](const rhythm::LogLine &line) -> const char * {
        if (line.previous_line_us == 0 || now_wall_us < line.previous_line_us) {
            return "";
        }
        return apr_psprintf(
            p, " in the last %" APR_INT64_T_FMT " s",
            static_cast<apr_int64_t>((now_wall_us - line.previous_line_us) / 1000000));
    };
    const char *lines[2] = {nullptr, nullptr};
    if (log.refused.count > 0) {
        lines[0] = apr_psprintf(
            p,
            "RS0106: session saves refused: %" APR_UINT64_T_FMT "%s, %" APR_UINT64_T_FMT
            " in all; the cache is full and only sessions the bank does not hold yet could make "
            "room, which SessionBackupEvictUnbacked Off forbids: previous versions are kept and "
            "new sessions get no cookie until the bank acknowledges changes or sessions expire",
            static_cast<apr_uint64_t>(log.refused.count), since(log.refused),
            static_cast<apr_uint64_t>(log.refused.total));
    }
    if (log.evicted.count > 0) {
        lines[1] = apr_psprintf(
            p,
            "RS0107: sessions evicted before the bank held them, and lost: %" APR_UINT64_T_FMT
            "%s, %" APR_UINT64_T_FMT
            " in all (SessionBackupEvictUnbacked On; the cache is full while the bank lags or is "
            "away)",
            static_cast<apr_uint64_t>(log.evicted.count), since(log.evicted),
            static_cast<apr_uint64_t>(log.evicted.total));
    }
    for (const char *line : lines) {
        if (line && r) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "%s", line);
        } else if (line) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s", line);
        }
    }
}

// A fresh session ID from the kernel's random source; false (logged) when it cannot be read.
bool draw_session_id(request_rec *r, SessionId *id) {
    if (rhythm::generate_session_id(id)) {
        return true;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, errno, r,
                  "RS0105: cannot read random bytes for a session ID");
    return false;
}

// A session saved for the first time: under a fresh ID, never one the client offered, sent in
// the cookie.
apr_status_t insert_new_session(request_rec *r, const DirConfig *conf, const char *data,
                                std::size_t size, apr_time_t expiry) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        SessionId id;
        if (!draw_session_id(r, &id)) {
            return APR_EGENERAL;
        }
        std::uint64_t version = 0;
        SessionCache::UnbackedLog unbacked;
        SessionCache::Save result =
            g_cache.insert(id, data, size, expiry, r->request_time, &version, &unbacked);
        log_unbacked(unbacked, r->request_time, r->server, r, r->pool);
        if (result == SessionCache::Save::kDuplicate) {
            continue;
        }
        if (result == SessionCache::Save::kUnbackedOnly) {
            return APR_ENOSPC;  // RS0106, rate-limited; no cookie
        }
        if (result == SessionCache::Save::kNoSpace) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "RS0104: session of %" APR_SIZE_T_FMT
                          " bytes not saved: the cache is full of sessions in use "
                          "(raise RhythmSessionCacheSize)",
                          size);
            return APR_ENOSPC;
        }
        write_session_cookie(r, conf, id);
        return OK;
    }
    return APR_EGENERAL;
}

// Whether this save logs a user in, or in as someone else (core/login_identity.h).
bool logs_in(const RequestState *st, const DirConfig *conf, const char *data) {
    if (!conf->renew_on_login) {
        return false;
    }
    std::string_view key = conf->login_key ? conf->login_key : "";
    std::string after = rhythm::login_identity(data, key);
    return !after.empty() &&
           after != rhythm::login_identity(st->loaded_data ? st->loaded_data : "", key);
}

// RhythmSessionRenewOnLogin: the session held locked moves to a fresh ID, its old ID is deleted
// here and in the bank, and the response carries the new cookie. When there is no room for it
// the login is not saved (the old session stays as it was): a login under the old ID would
// defeat the point.
apr_status_t renew_at_login(request_rec *r, RequestState *st, const DirConfig *conf,
                            const char *data, std::size_t size, apr_time_t expiry) {
    char before[7];
    rhythm::session_id_log_prefix(st->id, before);
    for (int attempt = 0; attempt < 3; ++attempt) {
        SessionId id;
        if (!draw_session_id(r, &id)) {
            g_cache.release(&st->handle);
            return APR_EGENERAL;
        }
        SessionCache::UnbackedLog unbacked;
        SessionCache::Save result = g_cache.renew_and_release(&st->handle, id, data, size, expiry,
                                                              r->request_time, &unbacked);
        log_unbacked(unbacked, r->request_time, r->server, r, r->pool);
        if (result == SessionCache::Save::kDuplicate) {
            continue;
        }
        if (result != SessionCache::Save::kSaved) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "RS0110: login not saved: no room for session %s... under a new ID; "
                          "the session stays as it was",
                          before);
            return APR_ENOSPC;
        }
        char after[7];
        rhythm::session_id_log_prefix(id, after);
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "RS0109: session %s... renewed at a login: it is now %s...", before, after);
        write_session_cookie(r, conf, id);
        return OK;
    }
    g_cache.release(&st->handle);
    return APR_EGENERAL;
}

apr_status_t rhythm_session_save(request_rec *r, session_rec *z) {
    const DirConfig *conf = dir_config(r);
    if (!conf || !conf->enabled) {
        return DECLINED;
    }
    RequestState *st = request_state(r);
    if (st->unavailable || !g_cache_ready) {
        return APR_EGENERAL;
    }
    const char *name = conf->cookie_name;
    if (session_is_empty(z)) {
        if (st->handle.held()) {
            g_cache.erase_and_release(&st->handle, r->request_time);
            ap_cookie_remove(r, name, cookie_attrs(r, conf), r->err_headers_out, nullptr);
        }
        return OK;
    }

    const char *data = z->encoded ? z->encoded : "";
    std::size_t size = std::strlen(data);
    if (size > g_settings->max_session_bytes) {
        g_cache.count_oversized();
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "RS0103: session not saved: it encodes to %" APR_SIZE_T_FMT
                      " bytes, more than RhythmSessionMaxSize (%" APR_UINT64_T_FMT
                      " bytes); the previous version is kept",
                      size, static_cast<apr_uint64_t>(g_settings->max_session_bytes));
        return APR_EGENERAL;
    }

    if (st->handle.held() && logs_in(st, conf, data)) {
        return renew_at_login(r, st, conf, data, size, z->expiry);
    }
    std::uint64_t version = 0;
    SessionCache::UnbackedLog unbacked;
    if (st->handle.held()) {
        SessionCache::Save saved = g_cache.save_and_release(&st->handle, data, size, z->expiry,
                                                            r->request_time, &version, &unbacked);
        log_unbacked(unbacked, r->request_time, r->server, r, r->pool);
        if (saved == SessionCache::Save::kUnbackedOnly) {
            return APR_ENOSPC;  // RS0106, rate-limited
        }
        if (saved != SessionCache::Save::kSaved) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                          "RS0104: session of %" APR_SIZE_T_FMT
                          " bytes not saved: the cache is full of sessions in use "
                          "(raise RhythmSessionCacheSize); the previous version is kept",
                          size);
            return APR_ENOSPC;
        }
        return OK;
    }

    return insert_new_session(r, conf, data, size, z->expiry);
}

// ---- the segment ----------------------------------------------------------------------------

std::uint32_t waiter_slots() {
    // At most one waiter per request that can run at once.
    int daemons = 0;
    int threads = 0;
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &daemons);
    ap_mpm_query(AP_MPMQ_HARD_LIMIT_THREADS, &threads);
    std::uint64_t slots = static_cast<std::uint64_t>(daemons > 0 ? daemons : 1) *
                          static_cast<std::uint64_t>(threads > 0 ? threads : 1);
    return static_cast<std::uint32_t>(
        std::min<std::uint64_t>(std::max<std::uint64_t>(slots, 256), 1u << 20));
}

bool create_segment(server_rec *s, RetainedSegment *kept) {
    apr_size_t bytes = g_settings->cache_bytes;
    apr_shm_t *shm = nullptr;
    // Anonymous, on the process pool: inherited by every child and kept across restarts.
    apr_status_t rv = apr_shm_create(&shm, bytes, nullptr, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                     "RS0001: cannot create the session segment of %s (RhythmSessionCacheSize)",
                     rhythm::format_size(bytes).c_str());
        return false;
    }
    std::string why;
    if (!SessionCache::format(apr_shm_baseaddr_get(shm), bytes, waiter_slots(), &why)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "RS0002: cannot format the session segment: %s",
                     why.c_str());
        apr_shm_destroy(shm);
        return false;
    }
    kept->shm = shm;
    kept->base = apr_shm_baseaddr_get(shm);
    kept->bytes = bytes;
    return true;
}

// Debian's apache2.conf loads mods-enabled/*.load in alphabetical order, so mod_session may be
// loaded after this module. Nothing of mod_session is therefore linked at load time: its module
// record and hook registration functions are looked up here, once every LoadModule has run.
bool hook_into_mod_session(apr_pool_t *plog) {
    g_session_module = ap_find_linked_module("mod_session.c");
    auto hook_load = reinterpret_cast<decltype(&ap_hook_session_load)>(
        dlsym(RTLD_DEFAULT, "ap_hook_session_load"));
    auto hook_save = reinterpret_cast<decltype(&ap_hook_session_save)>(
        dlsym(RTLD_DEFAULT, "ap_hook_session_save"));
    if (!g_session_module || !hook_load || !hook_save) {
        ap_log_perror(APLOG_MARK, APLOG_EMERG, 0, plog,
                      "RS0008: mod_rhythm_session needs mod_session: add "
                      "'LoadModule session_module .../mod_session.so' (on Debian: a2enmod "
                      "session)");
        return false;
    }
    hook_load(rhythm_session_load, nullptr, nullptr, APR_HOOK_MIDDLE);
    hook_save(rhythm_session_save, nullptr, nullptr, APR_HOOK_MIDDLE);
    return true;
}

int rhythm_pre_config(apr_pool_t *, apr_pool_t *plog, apr_pool_t *) {
    g_settings = nullptr;
    g_cache_ready = false;
    return hook_into_mod_session(plog) ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

// "host:port": this machine's name and the first port httpd listens on.
std::string default_server_id(apr_pool_t *p, server_rec *s) {
    char host[APRMAXHOSTLEN + 1] = "localhost";
    apr_gethostname(host, sizeof host, p);
    int port = s->port ? s->port : 80;
    if (ap_listeners && ap_listeners->bind_addr) {
        port = ap_listeners->bind_addr->port;
    }
    return std::string(host) + ":" + std::to_string(port);
}

int rhythm_post_config(apr_pool_t *pconf, apr_pool_t *, apr_pool_t *, server_rec *s) {
    // httpd reads its configuration twice at start-up; the segment is made on the real pass.
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    g_settings = server_settings(s);
    auto *kept = static_cast<RetainedSegment *>(ap_retained_data_get(kRetainedKey));
    if (!kept) {
        kept = static_cast<RetainedSegment *>(
            ap_retained_data_create(kRetainedKey, sizeof(RetainedSegment)));
    }
    std::string why;
    if (kept->shm && !SessionCache::attach(kept->base, kept->bytes, &g_cache, &why)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "RS0003: the session segment kept from before the restart is refused (%s): "
                     "starting with an empty one",
                     why.c_str());
        apr_shm_destroy(kept->shm);
        kept->shm = nullptr;
    }
    if (!kept->shm) {
        if (!create_segment(s, kept)) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if (!SessionCache::attach(kept->base, kept->bytes, &g_cache, &why)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "RS0004: %s", why.c_str());
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "RS0005: session segment of %s created, room for %" APR_UINT64_T_FMT
                     " sessions",
                     rhythm::format_size(kept->bytes).c_str(),
                     static_cast<apr_uint64_t>(g_cache.stats().max_sessions));
    } else if (kept->bytes != g_settings->cache_bytes) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "RS0006: RhythmSessionCacheSize is now %s but the running segment has %s: "
                     "the sessions are kept and the new size takes effect at the next full "
                     "stop and start",
                     rhythm::format_size(g_settings->cache_bytes).c_str(),
                     rhythm::format_size(kept->bytes).c_str());
    }
    g_cache_ready = true;
    g_cache.set_backup_enabled(g_settings->backup->enabled);
    g_cache.set_evict_unbacked(g_settings->backup_evict_unbacked);
    if (g_settings->backup->enabled) {
        g_settings->backup->socket_path = ap_runtime_dir_relative(pconf, "rhythm-agent.sock");
        g_settings->backup->agent_nice = static_cast<int>(g_settings->backup_agent_nice);
        g_settings->backup->max_session_bytes = g_settings->max_session_bytes;
        g_settings->backup->outage_grace_ms = g_settings->backup_outage_grace_ms;
        if (g_settings->backup->server_id.empty()) {
            g_settings->backup->server_id = default_server_id(pconf, s);
        }
        if (!rhythm::start_backup_agent(pconf, s, *g_settings->backup, g_cache)) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

void rhythm_child_init(apr_pool_t *, server_rec *) {
    g_process = rhythm::current_process();
}

// Runs in the parent every 10 s: httpd's monitor hook runs at every tenth pass of the MPM's
// one-second maintenance loop (ap_wait_or_timeout), more often only while children exit.
int rhythm_monitor(apr_pool_t *p, server_rec *s) {
    if (g_cache_ready) {
        std::int64_t now_wall_us = rhythm::WallTime::now().us();  // as a request's r->request_time
        g_cache.sweep_expired(now_wall_us, kSweepBudget);
        if (g_settings->backup->enabled) {
            SessionCache::UnbackedLog unbacked;
            g_cache.take_unbacked_log(now_wall_us, &unbacked);
            log_unbacked(unbacked, now_wall_us, s, nullptr, p);
        }
    }
    return DECLINED;
}

// ---- server-status --------------------------------------------------------------------------

int rhythm_status(request_rec *r, int flags) {
    if (g_cache_ready) {
        rhythm::print_status(r, flags, g_cache, g_settings->backup->enabled,
                             g_settings->backup->curve.enabled());
    }
    return OK;
}

// `SetHandler rhythm-metrics`: the same figures for Prometheus.
int rhythm_metrics_handler(request_rec *r) {
    if (r->handler == nullptr || std::strcmp(r->handler, "rhythm-metrics") != 0) {
        return DECLINED;
    }
    if (!g_cache_ready) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    return rhythm::serve_metrics(r, g_cache, g_settings->backup->enabled,
                                 g_settings->backup->curve.enabled());
}

// ---- directives -----------------------------------------------------------------------------

// A T made in `pool`, destroyed with it: the members of the settings that own memory of their own.
template <typename T>
T *make_in_pool(apr_pool_t *pool) {
    T *object = new (apr_palloc(pool, sizeof(T))) T();
    apr_pool_cleanup_register(
        pool, object,
        [](void *made) -> apr_status_t {
            static_cast<T *>(made)->~T();
            return APR_SUCCESS;
        },
        apr_pool_cleanup_null);
    return object;
}

void *create_server_config(apr_pool_t *p, server_rec *) {
    auto *settings = new (apr_palloc(p, sizeof(ServerSettings))) ServerSettings();
    settings->backup = make_in_pool<rhythm::BackupSettings>(p);
    settings->id_signer = make_in_pool<rhythm::IdSigner>(p);
    return settings;
}

void *create_dir_config(apr_pool_t *p, char *) {
    auto *conf = static_cast<DirConfig *>(apr_pcalloc(p, sizeof(DirConfig)));
    const rhythm::SessionCookie &cookie = rhythm::default_session_cookie();
    conf->cookie_name = cookie.name.c_str();
    conf->cookie_attrs = cookie.attributes.c_str();
    conf->cookie_tls_attrs = cookie.tls_attributes.c_str();
    conf->idle_timeout_s = kDefaultIdleTimeoutS;
    conf->renew_on_login = 1;
    return conf;
}

void *merge_dir_config(apr_pool_t *p, void *base_v, void *add_v) {
    auto *base = static_cast<DirConfig *>(base_v);
    auto *add = static_cast<DirConfig *>(add_v);
    auto *merged = static_cast<DirConfig *>(apr_pcalloc(p, sizeof(DirConfig)));
    merged->enabled = add->enabled_set ? add->enabled : base->enabled;
    merged->enabled_set = add->enabled_set || base->enabled_set;
    const DirConfig *cookie = add->cookie_set ? add : base;
    merged->cookie_name = cookie->cookie_name;
    merged->cookie_attrs = cookie->cookie_attrs;
    merged->cookie_tls_attrs = cookie->cookie_tls_attrs;
    merged->cookie_set = cookie->cookie_set;
    const DirConfig *idle = add->idle_timeout_set ? add : base;
    merged->idle_timeout_s = idle->idle_timeout_s;
    merged->idle_timeout_set = idle->idle_timeout_set;
    const DirConfig *renew = add->renew_on_login_set ? add : base;
    merged->renew_on_login = renew->renew_on_login;
    merged->renew_on_login_set = renew->renew_on_login_set;
    const DirConfig *login = add->login_key_set ? add : base;
    merged->login_key = login->login_key;
    merged->login_key_set = login->login_key_set;
    return merged;
}

const char *set_enabled(cmd_parms *, void *dconf, int flag) {
    auto *conf = static_cast<DirConfig *>(dconf);
    conf->enabled = flag;
    conf->enabled_set = 1;
    return nullptr;
}

const char *set_cookie_name(cmd_parms *cmd, void *dconf, const char *args) {
    auto *conf = static_cast<DirConfig *>(dconf);
    rhythm::SessionCookie cookie;
    std::string why;
    if (!rhythm::parse_session_cookie(args, &cookie, &why)) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why.c_str());
    }
    conf->cookie_name = apr_pstrdup(cmd->pool, cookie.name.c_str());
    conf->cookie_attrs = apr_pstrdup(cmd->pool, cookie.attributes.c_str());
    conf->cookie_tls_attrs = apr_pstrdup(cmd->pool, cookie.tls_attributes.c_str());
    conf->cookie_set = 1;
    return nullptr;
}

const char *set_idle_timeout(cmd_parms *cmd, void *dconf, const char *arg) {
    auto *conf = static_cast<DirConfig *>(dconf);
    std::uint64_t seconds = 0;
    std::string why;
    if (!rhythm::parse_idle_timeout_s(arg, kMaxIdleTimeoutS, &seconds, &why)) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why.c_str());
    }
    conf->idle_timeout_s = static_cast<long>(seconds);
    conf->idle_timeout_set = 1;
    return nullptr;
}

const char *set_renew_on_login(cmd_parms *, void *dconf, int flag) {
    auto *conf = static_cast<DirConfig *>(dconf);
    conf->renew_on_login = flag;
    conf->renew_on_login_set = 1;
    return nullptr;
}

const char *set_login_key(cmd_parms *cmd, void *dconf, const char *arg) {
    auto *conf = static_cast<DirConfig *>(dconf);
    if (*arg == '\0') {
        return apr_psprintf(cmd->pool, "%s: the key name is empty", cmd->cmd->name);
    }
    conf->login_key = arg;
    conf->login_key_set = 1;
    return nullptr;
}

// A server-wide numeric directive: how its value is parsed, its range, and where it goes. The
// command table passes it to set_server_value() as cmd->info.
struct ServerValue {
    bool (*parse)(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t *out,
                  std::string *why);
    std::uint64_t min;
    std::uint64_t max;
    std::uint64_t ServerSettings::*field;
};

ServerValue kCacheSize{rhythm::parse_size, 1ULL << 20, 64ULL << 30, &ServerSettings::cache_bytes};
ServerValue kMaxSize{rhythm::parse_size, 128, 16ULL << 20, &ServerSettings::max_session_bytes};
ServerValue kLockTimeout{rhythm::parse_duration_ms, 1, 3600 * 1000,
                         &ServerSettings::lock_timeout_ms};
ServerValue kBackupTimeout{rhythm::parse_duration_ms, 1, 60 * 1000,
                           &ServerSettings::backup_timeout_ms};
ServerValue kBackupAgentNice{rhythm::parse_count, 0, 19, &ServerSettings::backup_agent_nice};
ServerValue kBackupOutageGrace{rhythm::parse_duration_ms, 0, 24 * 3600 * 1000,
                               &ServerSettings::backup_outage_grace_ms};

const char *set_server_value(cmd_parms *cmd, void *, const char *arg) {
    ServerSettings *settings = server_settings(cmd->server);
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    const auto *value = static_cast<const ServerValue *>(cmd->info);
    std::string why;
    if (!value->parse(arg, value->min, value->max, &(settings->*(value->field)), &why)) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why.c_str());
    }
    return nullptr;
}

const char *set_backup(cmd_parms *cmd, void *, int flag) {
    ServerSettings *settings = server_settings(cmd->server);
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    settings->backup->enabled = flag != 0;
    return nullptr;
}

const char *set_backup_evict_unbacked(cmd_parms *cmd, void *, int flag) {
    ServerSettings *settings = server_settings(cmd->server);
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    settings->backup_evict_unbacked = flag != 0;
    return nullptr;
}

const char *add_backup_node(cmd_parms *cmd, void *, const char *arg) {
    ServerSettings *settings = server_settings(cmd->server);
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    std::string why;
    if (!rhythm::check_endpoint(arg, rhythm::EndpointUse::kConnect, &why)) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why.c_str());
    }
    settings->backup->nodes.emplace_back(arg);
    return nullptr;
}

const char *set_backup_server_id(cmd_parms *cmd, void *, const char *arg) {
    ServerSettings *settings = server_settings(cmd->server);
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    std::string why;
    if (!rhythm::check_name(arg, &why)) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why.c_str());
    }
    settings->backup->server_id = arg;
    return nullptr;
}

// The key files are read here, as root, before httpd drops its privileges: the agent forked later
// gets the keys with the rest of the configuration. Relative paths are under ServerRoot.
const char *set_backup_curve(cmd_parms *cmd, void *, const char *bank_public,
                             const char *client_secret) {
    ServerSettings *settings = server_settings(cmd->server);
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    std::string why;
    if (!rhythm::wire::load_client_keys(ap_server_root_relative(cmd->pool, bank_public),
                                        ap_server_root_relative(cmd->pool, client_secret),
                                        &settings->backup->curve, &why)) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why.c_str());
    }
    return nullptr;
}

const char *set_key_file(cmd_parms *cmd, void *, const char *file, const char *option) {
    ServerSettings *settings = server_settings(cmd->server);
    if (const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY)) {
        return err;
    }
    if (option && std::strcmp(option, "accept-unsigned") != 0) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not an option (the only one is accept-unsigned)",
                            cmd->cmd->name, option);
    }
    std::string why;
    if (!settings->id_signer->load(ap_server_root_relative(cmd->pool, file), &why)) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, why.c_str());
    }
    settings->accept_unsigned = option != nullptr;
    return nullptr;
}

// A largest session bigger than the cache could never be stored: refuse the pair at start-up.
int rhythm_check_config(apr_pool_t *, apr_pool_t *, apr_pool_t *, server_rec *s) {
    ServerSettings *settings = server_settings(s);
    if (settings->max_session_bytes * 4 > settings->cache_bytes) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "RS0007: RhythmSessionMaxSize (%s) must be at most a quarter of "
                     "RhythmSessionCacheSize (%s)",
                     rhythm::format_size(settings->max_session_bytes).c_str(),
                     rhythm::format_size(settings->cache_bytes).c_str());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (settings->backup->enabled && settings->backup->nodes.empty()) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s,
                     "RS0009: SessionBackup On needs at least one SessionBackupNode (an "
                     "rss_node's query endpoint, e.g. tcp://10.0.0.5:7301)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

// httpd's command table stores every handler as one generic pointer type; going through
// void (*)() is the cast that -Wcast-function-type accepts.
template <typename Handler>
cmd_func as_cmd_func(Handler handler) {
    return reinterpret_cast<cmd_func>(reinterpret_cast<void (*)()>(handler));
}

const command_rec rhythm_commands[] = {
    AP_INIT_FLAG("RhythmSession", as_cmd_func(set_enabled), nullptr, RSRC_CONF | OR_AUTHCFG,
                 "On to keep this location's sessions (mod_session) in Rhythm's shared memory"),
    AP_INIT_RAW_ARGS("RhythmSessionCookieName", as_cmd_func(set_cookie_name), nullptr,
                     RSRC_CONF | OR_AUTHCFG,
                     "The cookie that carries the session ID, then optional cookie attributes"),
    AP_INIT_TAKE1("RhythmSessionIdleTimeout", as_cmd_func(set_idle_timeout), nullptr,
                  RSRC_CONF | OR_AUTHCFG,
                  "Where SessionMaxAge is not set, a session unused this long expires, e.g. "
                  "1800 or 30s; Off for none"),
    AP_INIT_FLAG("RhythmSessionRenewOnLogin", as_cmd_func(set_renew_on_login), nullptr,
                 RSRC_CONF | OR_AUTHCFG,
                 "On (default): a session gets a new ID when a user logs in with it"),
    AP_INIT_TAKE1("RhythmSessionLoginKey", as_cmd_func(set_login_key), nullptr,
                  RSRC_CONF | OR_AUTHCFG,
                  "The session key that names the logged-in user (default: user, and "
                  "mod_auth_form's AUTHNAME-user)"),
    AP_INIT_TAKE1("RhythmSessionCacheSize", as_cmd_func(set_server_value), &kCacheSize, RSRC_CONF,
                  "Shared memory for sessions, e.g. 64M (K, M, G suffixes)"),
    AP_INIT_TAKE1("RhythmSessionMaxSize", as_cmd_func(set_server_value), &kMaxSize, RSRC_CONF,
                  "Largest encoded session that is stored, e.g. 64K"),
    AP_INIT_TAKE1("RhythmSessionLockTimeout", as_cmd_func(set_server_value), &kLockTimeout,
                  RSRC_CONF,
                  "Longest wait for a session's lock before answering 503, e.g. 10s or 500ms"),
    AP_INIT_FLAG("SessionBackup", as_cmd_func(set_backup), nullptr, RSRC_CONF,
                 "On to copy every session change to the rss_node bank behind the request"),
    AP_INIT_ITERATE("SessionBackupNode", as_cmd_func(add_backup_node), nullptr, RSRC_CONF,
                    "An rss_node's query endpoint, e.g. tcp://10.0.0.5:7301 (repeatable)"),
    AP_INIT_TAKE1("SessionBackupTimeout", as_cmd_func(set_server_value), &kBackupTimeout, RSRC_CONF,
                  "Longest wait for a session fetched from the bank, e.g. 200ms"),
    AP_INIT_TAKE1("SessionBackupAgentNice", as_cmd_func(set_server_value), &kBackupAgentNice,
                  RSRC_CONF,
                  "How far below httpd's CPU priority the backup agent runs (nice increment, 0 "
                  "to 19; default 10)"),
    AP_INIT_TAKE1("SessionBackupOutageGrace", as_cmd_func(set_server_value), &kBackupOutageGrace,
                  RSRC_CONF,
                  "How long after every node fell silent a user moving to this server is "
                  "answered 503 rather than given a new session, e.g. 30s (default; 0: at once)"),
    AP_INIT_FLAG("SessionBackupEvictUnbacked", as_cmd_func(set_backup_evict_unbacked), nullptr,
                 RSRC_CONF,
                 "On: a full cache evicts sessions the bank does not hold yet (they are lost); "
                 "Off (default): it refuses the save instead"),
    AP_INIT_TAKE1("SessionBackupServerId", as_cmd_func(set_backup_server_id), nullptr, RSRC_CONF,
                  "This server's name in the bank (default: host name and port)"),
    AP_INIT_TAKE12("RhythmSessionKeyFile", as_cmd_func(set_key_file), nullptr, RSRC_CONF,
                   "A file of keys (64 hex digits each, the first signs) that every server of "
                   "the bank shares: session IDs are signed, an ID no key signed is refused; "
                   "then optionally accept-unsigned, during a change-over to signing"),
    AP_INIT_TAKE2("SessionBackupCurve", as_cmd_func(set_backup_curve), nullptr, RSRC_CONF,
                  "The bank's public key file and this server's secret key file (rss_node "
                  "keygen): all backup traffic under CURVE"),
    {nullptr, {nullptr}, nullptr, 0, RAW_ARGS, nullptr},
};

void register_hooks(apr_pool_t *) {
    ap_hook_pre_config(rhythm_pre_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_check_config(rhythm_check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_post_config(rhythm_post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(rhythm_child_init, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_monitor(rhythm_monitor, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_header_parser(rhythm_header_parser, nullptr, nullptr, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, rhythm_status, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_handler(rhythm_metrics_handler, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace

extern "C" {
__attribute__((visibility("default"))) module AP_MODULE_DECLARE_DATA rhythm_session_module = {
    STANDARD20_MODULE_STUFF, create_dir_config, merge_dir_config,    create_server_config, nullptr,
    rhythm_commands,         register_hooks,    AP_MODULE_FLAG_NONE,
};
}
