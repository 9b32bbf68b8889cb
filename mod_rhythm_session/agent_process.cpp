// Forking and supervising the backup agent (see agent_process.h).
#include "agent_process.h"

#include "ap_listen.h"
#include "ap_mpm.h"
#include "apr_signal.h"
#include "apr_thread_proc.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_main.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "backup/backup_agent.h"
#include "backup/fetch_channel.h"
#include "common/clock.h"
#include "core/agent_watch.h"
#include "core/backup_feed.h"
#include "mpm_common.h"
#include "unixd.h"

#ifdef APLOG_USE_MODULE
extern "C" {
extern module AP_MODULE_DECLARE_DATA rhythm_session_module;
}
APLOG_USE_MODULE(rhythm_session);
#endif

namespace rhythm {
namespace {

// One generation's agent: what the maintenance callback needs to restart it, and the parent's
// watch over it.
struct AgentProcess {
    apr_proc_t proc;
    apr_pool_t *pconf;
    server_rec *server;
    BackupSettings settings;
    SessionCache cache;
    // The agent the watch may kill: 0 between its death and the next fork (proc.pid is then
    // the parent's own, see agent_maintenance).
    std::atomic<pid_t> watched_pid{0};
    pthread_t watch_thread{};
    pid_t watch_owner = 0;  // the parent that runs it (pconf's cleanup runs in no other)
    std::atomic<bool> watch_stop{false};
    std::atomic<bool> watch_running{false};  // the watch thread has begun (start_watch waits)
};

volatile int g_agent_stop = 0;

void on_stop_signal(int) {
    g_agent_stop = 1;
}

void agent_log(AgentLogLevel level, const char *message) {
    int httpd_level = level == AgentLogLevel::kError  ? APLOG_ERR
                      : level == AgentLogLevel::kWarn ? APLOG_WARNING
                      : level == AgentLogLevel::kInfo ? APLOG_INFO
                                                      : APLOG_DEBUG;
    ap_log_error(APLOG_MARK, httpd_level, 0, ap_server_conf, "%s", message);
}

// In the forked child: never returns.
[[noreturn]] void run_agent(AgentProcess *agent, const sigset_t *unblock) {
    apr_signal(SIGTERM, on_stop_signal);
    apr_signal(SIGHUP, on_stop_signal);
    apr_signal(SIGINT, SIG_IGN);
    apr_signal(SIGCHLD, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, unblock, nullptr);
    ap_close_listeners();
    std::string why;
    // Bound as root, owned by the workers' user, before this process drops to that user.
    int listener =
        listen_fetch_channel(agent->settings.socket_path, static_cast<int>(ap_unixd_config.user_id),
                             static_cast<int>(ap_unixd_config.group_id), &why);
    if (listener < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, agent->server,
                     "RS0311: backup agent: failover fetches are off: %s", why.c_str());
    }
    apr_pool_t *pool;
    apr_pool_create(&pool, agent->pconf);
    if (ap_run_drop_privileges(pool, ap_server_conf) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ALERT, 0, agent->server,
                     "RS0312: backup agent cannot drop its privileges");
        _exit(1);
    }
    // Requests come first: the agent's work can wait a little and then goes out in larger
    // batches. Set before the agent's ZeroMQ I/O thread exists, which inherits it.
    errno = 0;
    if (nice(agent->settings.agent_nice) == -1 && errno != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, agent->server,
                     "RS0318: backup agent: cannot lower its priority by %d",
                     agent->settings.agent_nice);
    }
    AgentConfig config;
    config.server_id = agent->settings.server_id;
    config.nodes = agent->settings.nodes;
    config.curve = agent->settings.curve;
    config.fetch_listener = listener;
    config.max_session_bytes = agent->settings.max_session_bytes;
    config.outage_grace_ms = agent->settings.outage_grace_ms;
    if (agent->settings.agent_nice == 0) {
        // On equal terms with requests it keeps its tick under load: the shortest window of
        // unacknowledged changes, at their cost in CPU (tick_pacer.h).
        config.tick.busy_tick_us = config.tick.tick_us;
    }
    {
        BackupAgent backup(agent->cache, config, agent_log);
        backup.run(&g_agent_stop);
    }
    // Skip httpd's and the module's exit handlers: this is a forked copy of the parent.
    _exit(0);
}

void agent_maintenance(int reason, void *data, apr_wait_t status);

bool fork_agent(AgentProcess *agent) {
    g_agent_stop = 0;
    // Between two agents nobody hears what the bank tells this server: before the next
    // generation's workers serve, every session is marked to be checked (the fault campaign: a
    // server in a graceful restart served its copy after a misrouted request had continued the
    // session elsewhere).
    if (BackupFeed(agent->cache).agent_replaced()) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, agent->server,
                     "RS0331: a new backup agent starts: each session this server holds is "
                     "checked against the bank before it is served again");
    }
    // The stop signals wait until the child has its own handlers: with the parent's, one sent
    // right after the fork would be lost and the agent run until the pool's SIGKILL.
    sigset_t stop_signals;
    sigset_t before;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &before);
    pid_t pid = fork();
    if (pid == 0) {
        run_agent(agent, &before);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, fork_errno, agent->server,
                     "RS0313: cannot fork the backup agent");
        return false;
    }
    agent->proc.pid = pid;
    agent->watched_pid = pid;
    agent->proc.in = agent->proc.out = agent->proc.err = nullptr;
    apr_proc_other_child_register(&agent->proc, agent_maintenance, agent, nullptr, agent->pconf);
    return true;
}

void agent_maintenance(int reason, void *data, apr_wait_t status) {
    auto *agent = static_cast<AgentProcess *>(data);
    int mpm_state = AP_MPMQ_STOPPING;
    switch (reason) {
        case APR_OC_REASON_DEATH:
        case APR_OC_REASON_LOST: {
            apr_proc_other_child_unregister(data);
            pid_t died = agent->proc.pid;
            agent->watched_pid = 0;
            // Reaped already. Until another agent is forked, the pool's wait at the end of the
            // generation must find no child of ours under this pid (it could be reused): the
            // parent's own pid is never its child, so that wait ends at once, signalling nobody.
            agent->proc.pid = getpid();
            if (ap_mpm_query(AP_MPMQ_MPM_STATE, &mpm_state) == APR_SUCCESS &&
                mpm_state != AP_MPMQ_STOPPING) {
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, agent->server,
                             "RS0314: the backup agent (pid %d) died (status %d): restarting it; "
                             "it finds every change the bank has not acknowledged",
                             static_cast<int>(died), static_cast<int>(status));
                fork_agent(agent);
            }
            break;
        }
        case APR_OC_REASON_RESTART:
            // The MPM stops its workers (at the stop and at a restart that is not graceful) and
            // says so after each look at them. The agent goes on meanwhile, publishing their
            // last changes, and stops when pconf goes, where httpd's main state tells a restart
            // from the end.
            break;
        case APR_OC_REASON_UNREGISTER:
            // pconf is being cleared: a restart or the end. The next generation forks its own.
            // Told now, the agent stops while pconf's other cleanups run; the pool then waits
            // for it and reaps it (start_backup_agent). Before it stops it gives the bank what
            // it lacks, for longer at the end, when the segment goes with the server
            // (stop_drain.h).
            BackupFeed(agent->cache)
                .agent_stopped_by_parent(ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_EXITING);
            kill(agent->proc.pid, SIGTERM);
            break;
    }
}

// The parent's watch over its agent (core/agent_watch.h), once a second: httpd runs its monitor
// hook only every ten. A thread of the parent, as mod_watchdog's parent watchdogs are; every
// signal is blocked in it, so httpd's stop and restart signals reach the main thread as before.
// It is also the parent's sign of life in the segment: with the agent's turns and the requests,
// it tells a server that was stopped as a whole (SessionCache::Loaded::stalled_us).
void *watch_agent(void *data) {
    auto *agent = static_cast<AgentProcess *>(data);
    agent->watch_running = true;
    BackupFeed feed(agent->cache);
    AgentWatch watch(AgentWatch::Settings{});
    while (!agent->watch_stop.load()) {
        for (int slice = 0; slice < 10 && !agent->watch_stop.load(); ++slice) {
            timespec tenth{0, 100 * 1000 * 1000};
            nanosleep(&tenth, nullptr);
        }
        MonotonicTime now = MonotonicTime::coarse_now();
        if (std::int64_t stalled_us = feed.parent_alive(now)) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, agent->server,
                         "RS0108: this server did not run for %" APR_INT64_T_FMT
                         " ms (stopped?): each session it holds is checked against the bank "
                         "before it is served again",
                         static_cast<apr_int64_t>(stalled_us / 1000));
        }
        pid_t pid = agent->watched_pid.load();
        AgentWatch::Verdict verdict = watch.check(now, feed.last_agent_turn());
        apr_int64_t idle_ms = watch.idle_us() / 1000;
        if (pid <= 0) {
            continue;  // between a death and the next fork: nothing to judge
        }
        switch (verdict) {
            case AgentWatch::Verdict::kHung:
                ap_log_error(
                    APLOG_MARK, APLOG_WARNING, 0, agent->server,
                    "RS0324: the backup agent (pid %d) has made no progress for %" APR_INT64_T_FMT
                    " ms (hung, or starved of CPU): changes are not backed up meanwhile; "
                    "it is restarted after %" APR_INT64_T_FMT " s without progress",
                    static_cast<int>(pid), idle_ms,
                    static_cast<apr_int64_t>(AgentWatch::Settings{}.restart_after_us / 1000000));
                break;
            case AgentWatch::Verdict::kRestart:
                ap_log_error(
                    APLOG_MARK, APLOG_ERR, 0, agent->server,
                    "RS0325: the backup agent (pid %d) made no progress for %" APR_INT64_T_FMT
                    " ms: killing it to start another",
                    static_cast<int>(pid), idle_ms);
                kill(pid, SIGKILL);  // reaped by the MPM, then forked again (agent_maintenance)
                break;
            case AgentWatch::Verdict::kResumed:
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, agent->server,
                             "RS0326: the backup agent (pid %d) makes progress again",
                             static_cast<int>(pid));
                break;
            case AgentWatch::Verdict::kRunning:
            case AgentWatch::Verdict::kStillHung:
                break;
        }
    }
    return nullptr;
}

bool start_watch(AgentProcess *agent) {
    sigset_t all;
    sigset_t before;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &before);
    int rv = pthread_create(&agent->watch_thread, nullptr, watch_agent, agent);
    pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (rv != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, agent->server,
                     "RS0327: cannot start the watch over the backup agent: a hung agent would "
                     "go unnoticed");
        return false;
    }
    agent->watch_owner = getpid();
    // httpd forks its children as soon as the hooks return. A child forked while this thread is
    // still being set up can inherit a lock of the sanitizers' runtime held (Debian 12's libasan
    // has no fork handlers), and then never creates its worker threads: a server restarted in
    // the default campaign under ASan whose two children never served and ignored SIGTERM (CI).
    // So the parent goes on once the thread runs, at most 1 s.
    for (int waited_ms = 0; !agent->watch_running.load() && waited_ms < 1000; ++waited_ms) {
        timespec ms{0, 1000 * 1000};
        nanosleep(&ms, nullptr);
    }
    apr_pool_cleanup_register(
        agent->pconf, agent,
        [](void *p) -> apr_status_t {
            auto *a = static_cast<AgentProcess *>(p);
            if (getpid() == a->watch_owner) {
                a->watch_stop = true;
                pthread_join(a->watch_thread, nullptr);
            }
            return APR_SUCCESS;
        },
        apr_pool_cleanup_null);
    return true;
}

}  // namespace

bool start_backup_agent(apr_pool_t *pconf, server_rec *s, const BackupSettings &settings,
                        const SessionCache &cache) {
    auto *agent = static_cast<AgentProcess *>(apr_pcalloc(pconf, sizeof(AgentProcess)));
    new (agent) AgentProcess{{}, pconf, s, settings, cache};
    apr_pool_cleanup_register(
        pconf, agent,
        [](void *p) -> apr_status_t {
            static_cast<AgentProcess *>(p)->~AgentProcess();
            return APR_SUCCESS;
        },
        apr_pool_cleanup_null);
    if (!fork_agent(agent)) {
        return false;
    }
    // The parent reaps its agent when pconf goes (at every restart and at the stop), the way
    // mod_cgid hands its daemon to the pool: after pconf's cleanups, APR sends SIGTERM, waits up
    // to 3 s, then SIGKILLs and waits. Left to the MPM, it would be reaped later as a child httpd
    // does not know, with a warning (AH00488, AH00167) at every graceful restart. An agent
    // forked again after a crash reuses agent->proc, so this one note covers it too; agent->proc
    // lives in pconf, whose memory outlives that wait.
    apr_pool_note_subprocess(pconf, &agent->proc, APR_KILL_AFTER_TIMEOUT);
    start_watch(agent);
    return true;
}

}  // namespace rhythm
