/*
 * executor.c — the local executor (see executor.h): its thread, what wakes
 * it, its start and stop, and starting the queue's head.
 *
 * The database is the queue: a job accepted here is RUNNABLE with this
 * executor's node name and the time it joined; the head of that queue
 * starts when it fits (scheduler.c). Before an attempt is forked
 * (spawn.c) the job is RUNNING in the database, so a second executor can
 * never start it too; an attempt that cannot even open its descriptors
 * leaves the job at the head of the queue, tried again a moment later.
 * Attempts run in the job sandbox (sandbox.c), whose PID namespace ends
 * with them (supervise.c); the executor refuses to start where it cannot
 * have one, unless MLGW_LOCAL_SANDBOX=off. Attempts are forked by, and
 * stopped from, the executor's thread, whose end ends them (bwrap's
 * --die-with-parent). Everything about a running attempt
 * (its pipe, deadline, resources) lives in the executor's one thread; other
 * threads only read the capacity, fixed at the start, and a copy of the
 * usage under a mutex.
 */
#include "jobs/executor.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/time.h"
#include "common/worker.h"
#include "db/events.h"
#include "db/local.h"
#include "jobs/joblog.h"
#include "jobs/listener.h"
#include "jobs/report.h"
#include "jobs/resources.h"
#include "jobs/sandbox.h"
#include "jobs/scheduler.h"
#include "jobs/spawn.h"
#include "jobs/supervise.h"

#include "common/poison.h"

enum {
    TICK_MS = 50,           /* while attempts run: reap, logs, deadlines */
    CANCEL_CHECK_MS = 1000, /* without a notification: how often cancellations are looked for */
    SCHEDULE_GUARD = 1000,  /* heads looked at per pass at most */
    HOLD_MS = 1000,         /* descriptors ran short: the queue waits this long */
};

struct jobs_executor {
    struct jobs_app *app;
    struct gw_worker *worker;
    struct jobs_listener *listener;
    int lock_fd;
    int recovered;
    char node[PATH_MAX + 300];
    struct jobs_sched sched;      /* capacity and what the running attempts hold */
    struct jobs_attempt *running; /* newest first */
    struct jobs_reports reports;  /* ends the database has not taken yet */
    int64_t last_cancel_check_ns, last_intake_ns;
    int64_t hold_until_ns;       /* the queue waits (descriptors ran short); 0: no */
    struct jobs_sandbox sandbox; /* fixed once the thread runs */
    pthread_mutex_t usage_mu;    /* guards usage, the copy other threads read, and stopping */
    struct jobs_executor_usage usage;
    pthread_cond_t stop_cv; /* signalled when stopped is set */
    int stopping, stopped;  /* jobs_executor_stop asked; the thread has stopped the attempts */
    int stop_sent;          /* the thread's: SIGTERM sent to the attempts */
    int64_t give_up_ns;     /* the thread's: when it stops waiting for them */
};

/* ---- starting the head of the queue ---------------------------------------------- */

/* Marks a's job RUNNING (its attempt about to start). GW_OK; GW_ECONFLICT
 * when the job was no longer RUNNABLE (cancelled meanwhile); or the
 * database's code. */
static int mark_running(struct jobs_executor *e, const struct jobs_attempt *a)
{
    char reason[sizeof(a->grant.visible) + 200];
    gw_fmt(reason, sizeof(reason), "attempt %d of %d started locally%s%s", a->attempt,
           a->max_attempts, a->grant.visible[0] ? " on GPU " : "", a->grant.visible);
    struct db_job_event ev = jobs_report_event(e->app, a->job_id, "RUNNING", reason);
    ev.attempts = a->attempt - 1;
    struct db_job_event_result r = {0};
    struct gw_err err = {0};
    int rc = db_job_event_apply(&r, e->app->pool, &ev, &err);
    if (rc != GW_OK)
        return rc;
    return strcmp(r.result, "applied") == 0 ? GW_OK : GW_ECONFLICT;
}

/* The attempt could not be started (why: err, public): the job fails. */
static void not_started(struct jobs_executor *e, struct jobs_attempt *a, const struct gw_err *err)
{
    struct db_job_event fail = jobs_report_event(e->app, a->job_id, "FAILED", err->msg);
    fail.attempts = a->attempt;
    fail.stopped_ms = gw_now_ms();
    (void)jobs_report_end(&e->reports, &fail, 0);
    jobs_report_attempt("not-started");
    jobs_sched_release(&e->sched, &a->grant);
    jobs_attempt_free(a);
}

/* The attempt runs: supervise it, and record it. */
static void started(struct jobs_executor *e, struct jobs_attempt *a, const json_t *job)
{
    int64_t started_ms = gw_now_ms();
    jobs_supervise_add(&e->running, a);
    struct gw_err err = {0};
    if (db_local_started(e->app->pool, a->job_id, started_ms, &err) != GW_OK)
        GW_LOG_WARN("local job %s: recording its start failed: %s", a->job_id, err.msg);
    (void)jobs_log_note(a->log_fd, "attempt %d of %d: %s %s (session %d%s%s)", a->attempt,
                        a->max_attempts, e->app->cfg->local_python, gw_json_str(job, "script_key"),
                        (int)a->pid, a->grant.visible[0] ? ", CUDA_VISIBLE_DEVICES=" : "",
                        a->grant.visible);
    GW_LOG_INFO("local job %s: attempt %d started (pid %d)", a->job_id, a->attempt, (int)a->pid);
}

/* jobs_spawn's commit: the job is RUNNING before its attempt is forked. */
struct commit_ctx {
    struct jobs_executor *e;
    int committed;
};

static int commit_running(void *arg, struct jobs_attempt *a)
{
    struct commit_ctx *c = arg;
    int rc = mark_running(c->e, a);
    c->committed = rc == GW_OK;
    return rc;
}

/*
 * Starts the next attempt of job, the queue's head (it fits): takes its
 * resources, opens what the attempt needs, marks it RUNNING, then forks.
 * Returns
 *   GW_OK        the head has left the queue: its attempt runs, or it could
 *                not be started and has been reported FAILED (the reason is
 *                in its log);
 *   GW_ECONFLICT the job was no longer RUNNABLE (cancelled meanwhile):
 *                nothing started; the queue moves on;
 *   GW_EUNAVAIL  descriptors ran short: the job stays at the head, and the
 *                queue waits HOLD_MS;
 *   otherwise    GW_ENOMEM or the database's code: nothing changed, and the
 *                head is tried again later.
 */
static int start(struct jobs_executor *e, const json_t *job)
{
    struct jobs_attempt *a = NULL;
    int rc = jobs_attempt_new(&a, job);
    if (rc != GW_OK)
        return rc;
    struct jobs_ask ask;
    jobs_sched_ask(&ask, job);
    jobs_sched_take(&a->grant, &e->sched, &ask);
    struct commit_ctx c = {e, 0};
    struct gw_err err = {0};
    rc = jobs_spawn(a, e->app->cfg, &e->sandbox, job, commit_running, &c, &err);
    if (rc == GW_OK) {
        started(e, a, job);
        return GW_OK;
    }
    if (c.committed) {
        not_started(e, a, &err);
        return GW_OK;
    }
    if (rc == GW_EUNAVAIL) {
        GW_LOG_WARN("local job %s: %s; it stays at the head of the queue, tried again in %d ms",
                    a->job_id, err.msg, HOLD_MS);
        e->hold_until_ns = gw_monotonic_ns() + HOLD_MS * 1000000LL;
    }
    jobs_sched_release(&e->sched, &a->grant);
    jobs_attempt_free(a);
    return rc;
}

/* Starts heads of the queue while they fit. */
static void schedule(struct jobs_executor *e)
{
    for (int guard = 0; guard < SCHEDULE_GUARD; guard++) {
        json_t *job = NULL;
        struct gw_err err = {0};
        int rc = jobs_sched_head(&job, &e->sched, &e->reports, e->node, &err);
        if (rc == GW_EINVAL)
            continue; /* that head could never run here and has failed: the next one */
        if (rc != GW_OK)
            return; /* empty, the head waits for room, or the database is not there */
        rc = start(e, job);
        json_decref(job);
        if (rc != GW_OK && rc != GW_ECONFLICT)
            return;
    }
}

/* ---- the thread ------------------------------------------------------------------------- */

static void publish_usage(struct jobs_executor *e)
{
    struct jobs_executor_usage u = {e->sched.used_vcpus, e->sched.used_memory_mib,
                                    jobs_sched_gpus_used(&e->sched), 0};
    for (const struct jobs_attempt *a = e->running; a != NULL; a = a->next)
        u.running++;
    pthread_mutex_lock(&e->usage_mu);
    e->usage = u;
    pthread_mutex_unlock(&e->usage_mu);
}

/* Looks for cancelled jobs when woken (a notification) or, without one,
 * once every CANCEL_CHECK_MS. */
static void check_cancelled(struct jobs_executor *e, int woken)
{
    int64_t now = gw_monotonic_ns();
    if (e->running == NULL ||
        (!woken && now - e->last_cancel_check_ns < CANCEL_CHECK_MS * 1000000LL))
        return;
    e->last_cancel_check_ns = now;
    (void)jobs_supervise_cancel_ended(e->running, e->app->pool, e->app->cfg->local_term_grace_s);
}

static int is_stopping(struct jobs_executor *e)
{
    pthread_mutex_lock(&e->usage_mu);
    int stopping = e->stopping;
    pthread_mutex_unlock(&e->usage_mu);
    return stopping;
}

/* The executor is stopping: SIGTERM to every running attempt, then reap
 * them (and report how they ended) for up to the grace and twice the kill
 * margin; then it has stopped. Runs in the executor's thread, whose end
 * would end the sandboxes at once (--die-with-parent). */
static int exec_stop(struct jobs_executor *e)
{
    long long grace = e->app->cfg->local_term_grace_s;
    /* Inside the process's shutdown budget the grace and the kill come
     * early enough to end before it does (MLGW_SHUTDOWN_TIMEOUT). */
    int64_t left_ms = gw_shutdown_left_ms();
    int64_t now = gw_monotonic_ns();
    int64_t end_ns = left_ms == INT64_MAX ? INT64_MAX : now + (left_ms - 500) * 1000000LL;
    if (left_ms != INT64_MAX && grace > (left_ms - 1000) / 1000)
        grace = left_ms > 1000 ? (left_ms - 1000) / 1000 : 0;
    if (!e->stop_sent) {
        int n = 0;
        for (struct jobs_attempt *a = e->running; a != NULL; a = a->next, n++) {
            jobs_supervise_stop(a, JOBS_STOP_SHUTDOWN, grace);
            if (a->kill_ns > end_ns)
                a->kill_ns = end_ns;
        }
        if (n > 0)
            GW_LOG_INFO("local executor: stopping %d running job(s) (%lld s grace)", n, grace);
        e->give_up_ns = now + (grace + 2LL * JOBS_KILL_MARGIN_S) * 1000000000LL;
        if (e->give_up_ns > end_ns + 400000000LL)
            e->give_up_ns = end_ns + 400000000LL;
        e->stop_sent = 1;
    }
    (void)jobs_supervise_reap(&e->running, &e->sched, &e->reports);
    jobs_supervise_enforce(e->running, grace);
    if (e->running != NULL && gw_monotonic_ns() < e->give_up_ns)
        return TICK_MS;
    jobs_supervise_abandon(&e->running);
    publish_usage(e);
    pthread_mutex_lock(&e->usage_mu);
    e->stopped = 1;
    pthread_cond_signal(&e->stop_cv);
    pthread_mutex_unlock(&e->usage_mu);
    return 0;
}

static int exec_run(void *arg)
{
    struct jobs_executor *e = arg;
    if (is_stopping(e))
        return exec_stop(e);
    if (!e->recovered) {
        struct gw_err err = {0};
        if (jobs_supervise_recover(&e->reports, e->node, &err) != GW_OK)
            return 0; /* the database is not there yet: next interval */
        e->recovered = 1;
    }
    (void)jobs_reports_flush(&e->reports, 0);
    int woken = gw_worker_run_was_woken(e->worker);
    int freed = jobs_supervise_reap(&e->running, &e->sched, &e->reports);
    check_cancelled(e, woken);
    jobs_supervise_enforce(e->running, e->app->cfg->local_term_grace_s);
    /* The queue is looked at when something may have changed: a
     * notification (a new job, a cancellation), room freed, a hold over, or
     * the poll interval passed; not on every supervision tick. */
    int64_t now = gw_monotonic_ns();
    int held = now < e->hold_until_ns, hold_over = e->hold_until_ns != 0 && !held;
    if (!held && (woken || freed > 0 || hold_over ||
                  now - e->last_intake_ns >= e->app->cfg->dispatch_poll_ms * 1000000LL)) {
        e->last_intake_ns = now;
        e->hold_until_ns = 0;
        (void)jobs_sched_intake(&e->sched, &e->reports, e->node);
        schedule(e);
    }
    publish_usage(e);
    return e->running != NULL || jobs_reports_waiting(&e->reports) || e->hold_until_ns != 0
               ? TICK_MS
               : 0;
}

/* ---- start and stop ---------------------------------------------------------------------- */

static void free_executor(struct jobs_executor *e)
{
    if (e->lock_fd >= 0)
        close(e->lock_fd);
    jobs_sandbox_dispose(&e->sandbox);
    pthread_cond_destroy(&e->stop_cv);
    pthread_mutex_destroy(&e->usage_mu);
    free(e);
}

/* Takes the root's lock: one executor per root. GW_ECONFLICT. */
static int lock_root(struct jobs_executor *e, const char *root, struct gw_err *err)
{
    char path[PATH_MAX + 64];
    gw_fmt(path, sizeof(path), "%s/.executor.lock", root);
    e->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (e->lock_fd < 0 || flock(e->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return gw_err_set(err, GW_ECONFLICT,
                          "%s is in use by another gateway (one local executor per root)", root);
    return GW_OK;
}

/* The job sandbox, or MLGW_LOCAL_SANDBOX=off said loudly. GW_EUNAVAIL
 * (no sandbox here: err says why and what to do), GW_EIO, GW_ENOMEM. */
static int start_sandbox(struct jobs_executor *e, const struct gw_config *cfg, struct gw_err *err)
{
    int rc = jobs_sandbox_init(&e->sandbox, cfg, err);
    if (rc != GW_OK)
        return rc;
    if (!e->sandbox.on) {
        GW_LOG_WARN("local jobs run WITHOUT the job sandbox (MLGW_LOCAL_SANDBOX=off): as this "
                    "gateway's user, seeing what it sees; for development only");
        return GW_OK;
    }
    if (e->sandbox.as_root)
        GW_LOG_INFO("job sandbox: %s; local jobs run as %s (uid %u)", e->sandbox.bwrap,
                    cfg->local_sandbox_user, (unsigned)e->sandbox.uid);
    else
        GW_LOG_INFO("job sandbox: %s; local jobs run as uid %u of a user namespace",
                    e->sandbox.bwrap, (unsigned)e->sandbox.uid);
    return jobs_spawn_share_root(cfg, &e->sandbox, err);
}

int jobs_executor_start(struct jobs_executor **out, struct jobs_app *app, struct gw_err *err)
{
    *out = NULL;
    const struct gw_config *cfg = app->cfg;
    struct jobs_executor *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    e->app = app;
    e->lock_fd = -1;
    jobs_reports_init(&e->reports, app);
    pthread_mutex_init(&e->usage_mu, NULL);
    pthread_cond_init(&e->stop_cv, NULL);
    int rc = jobs_spawn_make_root(cfg, err);
    if (rc == GW_OK)
        rc = lock_root(e, cfg->local_root, err);
    if (rc == GW_OK)
        rc = start_sandbox(e, cfg, err);
    if (rc != GW_OK)
        goto cleanup;
    /* Nothing runs yet: what is under work/ is a dead gateway's. */
    jobs_spawn_clear_work(cfg->local_root);
    char host[256] = "localhost";
    (void)gethostname(host, sizeof(host) - 1);
    gw_fmt(e->node, sizeof(e->node), "%s:%s", host, cfg->local_root);
    jobs_resources_detect(&e->sched.cap, cfg);
    GW_LOG_INFO("local executor %s: %lld vCPUs, %lld MiB, %lld GPUs (%s)", e->node,
                e->sched.cap.vcpus, e->sched.cap.memory_mib, e->sched.cap.gpus,
                e->sched.cap.gpus_from);
    jobs_report_describe_metrics();
    rc = gw_worker_start(&e->worker, "executor", cfg->dispatch_poll_ms, exec_run, e);
    if (rc != GW_OK) {
        rc = gw_err_set(err, rc, "cannot start the local executor thread");
        goto cleanup;
    }
    gw_worker_wake(e->worker);
    (void)jobs_listener_start(&e->listener, cfg, "mlgw_outbox", &e->worker, 1);
    *out = e;
    return GW_OK;

cleanup:
    free_executor(e);
    return rc;
}

void jobs_executor_capacity(const struct jobs_executor *e, struct jobs_executor_capacity *out)
{
    *out = (struct jobs_executor_capacity){e->sched.cap.vcpus, e->sched.cap.memory_mib,
                                           e->sched.cap.gpus};
}

int jobs_executor_misfits(const struct jobs_executor *e, long long vcpus, long long memory_mib,
                          long long gpus, struct jobs_executor_misfit out[3])
{
    const struct jobs_ask ask = {vcpus, memory_mib, gpus};
    return jobs_sched_misfits(&e->sched.cap, &ask, out);
}

void jobs_executor_usage(struct jobs_executor *e, struct jobs_executor_usage *out)
{
    pthread_mutex_lock(&e->usage_mu);
    *out = e->usage;
    pthread_mutex_unlock(&e->usage_mu);
}

void jobs_executor_stop(struct jobs_executor *e)
{
    if (e == NULL)
        return;
    jobs_listener_stop(e->listener);
    /* The executor's thread stops the attempts it forked: its end would
     * kill them at once. */
    pthread_mutex_lock(&e->usage_mu);
    e->stopping = 1;
    pthread_mutex_unlock(&e->usage_mu);
    gw_worker_wake(e->worker);
    pthread_mutex_lock(&e->usage_mu);
    while (!e->stopped)
        pthread_cond_wait(&e->stop_cv, &e->usage_mu);
    pthread_mutex_unlock(&e->usage_mu);
    gw_worker_stop(e->worker);
    (void)jobs_reports_flush(&e->reports, 1);
    jobs_reports_dispose(&e->reports);
    free_executor(e);
}
