/*
 * supervise.c — the running attempts of the local executor (supervise.h).
 *
 * A sandboxed attempt is stopped through its PID namespace: SIGTERM to its
 * process 1 (the entrypoint, found as bwrap's child), SIGKILL to it and to
 * bwrap after the grace; the kernel ends every other process of the
 * namespace with its process 1, whatever session or environment they made
 * for themselves. Without the sandbox, processes are found by the
 * JOB_ID=<id> in /proc/<pid>/environ, since an attempt's script may leave
 * its session; pids are never trusted alone (they are reused). After a
 * crash, the JOB_ID a sandbox's process 1 carries finds what is left.
 * Output is read non-blocking from each attempt's pipe and cut into lines
 * of at most JOBS_OUTPUT_LINE_MAX bytes for the job's log (joblog.h). Does
 * not start attempts nor choose which job runs next.
 */
#include "jobs/supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/time.h"
#include "db/local.h"
#include "jobs/joblog.h"
#include "jobs/sandbox.h"

#include "common/poison.h"

/* ---- process trees ------------------------------------------------------------- */

/* Does /proc/<pid>/environ hold JOB_ID=<job_id>? (pid numbers are reused;
 * a job's processes all carry its id.) */
static int carries_job(const char *pid, const char *job_id)
{
    char path[64], want[48];
    gw_fmt(path, sizeof(path), "/proc/%s/environ", pid);
    gw_fmt(want, sizeof(want), "JOB_ID=%s", job_id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    static __thread char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    size_t wl = strlen(want);
    for (ssize_t i = 0; i < n;) {
        size_t len = strnlen(buf + i, (size_t)(n - i));
        if (len == wl && memcmp(buf + i, want, wl) == 0)
            return 1;
        i += (ssize_t)len + 1;
    }
    return 0;
}

/* Sends sig to every process of job_id: the entrypoint, the script and
 * whatever they started, in the attempt's session or one they made (each
 * carries JOB_ID=<its id> in its environment, and ids are UUIDs); never to
 * this process. Returns how many. */
static int signal_job(const char *job_id, int sig)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    int n = 0;
    pid_t self = getpid();
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long long pid = 0;
        if (gw_parse_ll(&pid, de->d_name, 1, INT_MAX) != GW_OK || pid == self)
            continue;
        char path[64], stat[1024];
        gw_fmt(path, sizeof(path), "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, stat, sizeof(stat) - 1);
        close(fd);
        if (len <= 0)
            continue;
        stat[len] = '\0';
        const char *rp = strrchr(stat, ')');
        if (rp == NULL || rp[1] != ' ' || rp[2] == 'Z' || !carries_job(de->d_name, job_id))
            continue;
        if (kill((pid_t)pid, sig) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Stops what a dead gateway left of a job's attempt; waits up to 2 s. */
static void kill_leftovers(const char *job_id)
{
    for (int i = 0; i < 40 && signal_job(job_id, SIGKILL) > 0; i++) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- output ------------------------------------------------------------------------ */

/* Reads what the attempt wrote; each complete line goes to the job's log
 * with the time it was read. final: the attempt has ended, so the pipe is
 * closed whatever read() says and a last unfinished line is written too. */
static void pump(struct jobs_attempt *a, int final)
{
    while (a->out_fd >= 0) {
        char buf[16384];
        ssize_t n = read(a->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || final) {
                close(a->out_fd);
                a->out_fd = -1;
            }
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' || a->line_len == sizeof(a->line)) {
                (void)jobs_log_append(a->log_fd, gw_now_ms(), a->line, a->line_len);
                a->line_len = 0;
                if (buf[i] == '\n')
                    continue;
            }
            a->line[a->line_len++] = buf[i];
        }
    }
    if (final && a->line_len > 0) {
        (void)jobs_log_append(a->log_fd, gw_now_ms(), a->line, a->line_len);
        a->line_len = 0;
    }
}

/* ---- stopping ---------------------------------------------------------------------- */

void jobs_supervise_add(struct jobs_attempt **running, struct jobs_attempt *a)
{
    a->deadline_ns = a->timeout_s > 0 ? gw_monotonic_ns() + a->timeout_s * 1000000000LL : 0;
    a->next = *running;
    *running = a;
}

/* SIGTERM to the attempt's entrypoint: the namespace's process 1 once it
 * has one (term_pending until then), or the entrypoint itself. */
static void term(struct jobs_attempt *a)
{
    pid_t target = a->pid;
    if (a->sandboxed) {
        target = jobs_sandbox_init_pid(a->pid);
        a->term_pending = target == 0;
        if (target == 0)
            return;
    }
    if (kill(target, SIGTERM) != 0 && errno != ESRCH)
        GW_LOG_WARN("local job %s: SIGTERM: %s", a->job_id, strerror(errno));
}

/* SIGKILL to every process of the attempt. */
static void kill_attempt(const struct jobs_attempt *a)
{
    if (!a->sandboxed) {
        (void)signal_job(a->job_id, SIGKILL);
        return;
    }
    pid_t init = jobs_sandbox_init_pid(a->pid);
    if (init > 0)
        (void)kill(init, SIGKILL);
    (void)kill(a->pid, SIGKILL); /* bwrap: its death ends process 1 too */
}

void jobs_supervise_stop(struct jobs_attempt *a, enum jobs_stop why, long long grace_s)
{
    if (a->stop != JOBS_STOP_NONE)
        return;
    a->stop = why;
    a->kill_ns = gw_monotonic_ns() + (grace_s + JOBS_KILL_MARGIN_S) * 1000000000LL;
    static const char *const what[] = {"", "the job timed out", "the job was cancelled",
                                       "the gateway is stopping"};
    (void)jobs_log_note(a->log_fd, "%s: SIGTERM, then SIGKILL after %lld s", what[why], grace_s);
    term(a);
}

void jobs_supervise_enforce(struct jobs_attempt *running, long long grace_s)
{
    int64_t now = gw_monotonic_ns();
    for (struct jobs_attempt *a = running; a != NULL; a = a->next) {
        if (a->stop == JOBS_STOP_NONE && a->deadline_ns != 0 && now >= a->deadline_ns)
            jobs_supervise_stop(a, JOBS_STOP_TIMEOUT, grace_s);
        else if (a->term_pending)
            term(a);
        if (a->kill_ns != 0 && now >= a->kill_ns) {
            (void)jobs_log_note(a->log_fd, "still running %lld s after SIGTERM: SIGKILL",
                                grace_s + JOBS_KILL_MARGIN_S);
            kill_attempt(a);
            a->kill_ns = now + 1000000000LL;
        }
    }
}

int jobs_supervise_cancel_ended(struct jobs_attempt *running, struct db_pool *pool,
                                long long grace_s)
{
    if (running == NULL)
        return GW_OK;
    struct gw_buf ids;
    gw_buf_init(&ids, 1 << 20);
    int rc = gw_buf_adds(&ids, "{");
    for (const struct jobs_attempt *a = running; rc == GW_OK && a != NULL; a = a->next)
        rc = gw_buf_printf(&ids, "%s%s", a == running ? "" : ",", a->job_id);
    if (rc == GW_OK)
        rc = gw_buf_adds(&ids, "}");
    PGresult *res = NULL;
    struct gw_err err = {0};
    if (rc == GW_OK)
        rc = db_local_ended(&res, pool, ids.data, &err);
    if (rc == GW_OK) {
        for (int i = 0; i < PQntuples(res); i++)
            for (struct jobs_attempt *a = running; a != NULL; a = a->next)
                if (strcmp(a->job_id, PQgetvalue(res, i, 0)) == 0)
                    jobs_supervise_stop(a, JOBS_STOP_CANCEL, grace_s);
    }
    PQclear(res);
    gw_buf_dispose(&ids);
    return rc;
}

/* ---- ends ---------------------------------------------------------------------------- */

void jobs_supervise_end(struct jobs_end *out, const struct jobs_attempt *a, int wstatus)
{
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    memset(out, 0, sizeof(*out));
    const char *how = out->how;
    if (WIFEXITED(wstatus))
        gw_fmt(out->how, sizeof(out->how), "exited with code %d", code);
    else
        gw_fmt(out->how, sizeof(out->how), "was killed by signal %d", WTERMSIG(wstatus));
    out->exit_code = code;
    out->requeue = 0;
    int more = a->attempt < a->max_attempts;
    enum jobs_stop stop = a->stop;
    if (stop == JOBS_STOP_SHUTDOWN && code == 0)
        stop = JOBS_STOP_NONE; /* it finished during the grace period */
    switch (stop) {
    case JOBS_STOP_CANCEL:
        out->status = "CANCELLED";
        gw_fmt(out->reason, sizeof(out->reason), "cancelled; the attempt %s", how);
        break;
    case JOBS_STOP_TIMEOUT:
        out->status = "FAILED"; /* as on AWS Batch, a timed-out job is not retried */
        gw_fmt(out->reason, sizeof(out->reason),
               "timed out after %lld s (timeout_seconds); the attempt %s", a->timeout_s, how);
        break;
    case JOBS_STOP_SHUTDOWN:
        out->status = more ? "RUNNABLE" : "FAILED";
        out->requeue = more;
        gw_fmt(out->reason, sizeof(out->reason), "gateway stopped during attempt %d of %d%s",
               a->attempt, a->max_attempts, more ? "; it runs again after the restart" : "");
        break;
    case JOBS_STOP_NONE:
    default:
        if (code == 0) {
            out->status = "SUCCEEDED";
            gw_fmt(out->reason, sizeof(out->reason), "the job %s", how);
        } else if (more) {
            out->status = "RUNNABLE";
            out->requeue = 1;
            gw_fmt(out->reason, sizeof(out->reason), "attempt %d of %d %s; retrying", a->attempt,
                   a->max_attempts, how);
        } else {
            out->status = "FAILED";
            gw_fmt(out->reason, sizeof(out->reason), "the job %s", how);
        }
        break;
    }
}

/* How an attempt ended → the job's status, in its log and the database. */
static void finish(struct jobs_reports *r, const struct jobs_attempt *a, int wstatus)
{
    struct jobs_end end;
    jobs_supervise_end(&end, a, wstatus);
    (void)jobs_log_note(a->log_fd, "attempt %d %s: %s", a->attempt, end.how, end.status);
    struct db_job_event ev = jobs_report_event(r->app, a->job_id, end.status, end.reason);
    ev.exit_code = end.exit_code;
    ev.attempts = a->attempt;
    if (!end.requeue)
        ev.stopped_ms = gw_now_ms();
    (void)jobs_report_end(r, &ev, end.requeue);
    jobs_report_attempt(end.exit_code == 0 ? "succeeded" : "failed");
}

int jobs_supervise_reap(struct jobs_attempt **running, struct jobs_sched *s, struct jobs_reports *r)
{
    int n = 0;
    struct jobs_attempt **pp = running;
    while (*pp != NULL) {
        struct jobs_attempt *a = *pp;
        int wstatus = 0;
        pid_t w = waitpid(a->pid, &wstatus, WNOHANG);
        pump(a, 0);
        if (w == 0 || (w < 0 && errno == EINTR)) {
            pp = &a->next;
            continue;
        }
        if (w < 0) /* not our child any more: cannot happen; do not spin */
            wstatus = 255 << 8;
        /* Whatever the attempt left running must not outlive it: sandboxed,
         * the kernel ended it with the namespace's process 1. */
        if (!a->sandboxed)
            (void)signal_job(a->job_id, SIGKILL);
        pump(a, 1);
        /* Gone before the job's end is recorded: whoever sees it ended finds
         * nothing of the attempt left. */
        jobs_spawn_remove_tree(a->work_dir);
        finish(r, a, wstatus);
        *pp = a->next;
        jobs_sched_release(s, &a->grant);
        jobs_attempt_free(a);
        n++;
    }
    return n;
}

void jobs_supervise_abandon(struct jobs_attempt **running)
{
    while (*running != NULL) { /* unkillable: the next start deals with them */
        struct jobs_attempt *a = *running;
        GW_LOG_ERROR("local job %s: attempt %d did not stop (pid %d)", a->job_id, a->attempt,
                     (int)a->pid);
        *running = a->next;
        jobs_attempt_free(a);
    }
}

/* ---- crash recovery ------------------------------------------------------------------- */

/* One job a dead gateway had running (a row of db_local_orphans). */
static void recover_one(struct jobs_reports *r, const char *id, const char *attempts_text,
                        const char *max_text)
{
    long long attempts = 0, max_attempts = 1;
    kill_leftovers(id);
    (void)gw_parse_ll(&attempts, attempts_text, 0, 1000);
    (void)gw_parse_ll(&max_attempts, max_text, 1, 1000);
    int attempt = (int)attempts + 1;
    int more = attempt < max_attempts;
    char reason[200];
    gw_fmt(reason, sizeof(reason), "gateway restarted during attempt %d of %lld%s", attempt,
           max_attempts, more ? "; retrying" : "");
    struct db_job_event ev = jobs_report_event(r->app, id, more ? "RUNNABLE" : "FAILED", reason);
    ev.attempts = attempt;
    if (!more)
        ev.stopped_ms = gw_now_ms();
    GW_LOG_WARN("local job %s: %s", id, reason);
    int fd = -1;
    (void)jobs_log_open(&fd, r->app->cfg->local_root, id, NULL);
    (void)jobs_log_note(fd, "%s", reason);
    jobs_log_close(fd);
    (void)jobs_report_end(r, &ev, more);
}

int jobs_supervise_recover(struct jobs_reports *r, const char *node, struct gw_err *err)
{
    PGresult *res = NULL;
    int rc = db_local_orphans(&res, r->app->pool, node, err);
    if (rc != GW_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++)
        recover_one(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    PQclear(res);
    return db_local_release_leases(r->app->pool, err);
}
