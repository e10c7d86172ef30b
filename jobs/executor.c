/*
 * executor.c — the local executor (see executor.h).
 *
 * The database is the queue: a job accepted here is RUNNABLE with this
 * executor's node name and the time it joined; the head of that queue
 * starts when it fits. Before an attempt is forked the job is RUNNING in
 * the database, so a second executor can never start it too; every process
 * of an attempt carries the job's JOB_ID, so that the attempt's end, and a
 * gateway restarted after a crash, can stop all of them. Everything about a
 * running attempt (its pipe, deadline, resources) lives in this file's one
 * thread.
 */
#define _GNU_SOURCE /* execvpe, pipe2, close_range, F_SETPIPE_SZ */

#include "jobs/executor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/parse.h"
#include "common/time.h"
#include "common/worker.h"
#include "db/local.h"
#include "jobs/dispatcher.h"
#include "jobs/listener.h"

#include "common/poison.h"

enum {
    MAX_GPUS = 64,
    LINE_MAX_BYTES = 16384,
    INTAKE_BATCH = 64,
    TICK_MS = 50,           /* while attempts run: reap, logs, deadlines */
    CANCEL_CHECK_MS = 1000, /* without a notification: how often cancellations are looked for */
    KILL_MARGIN_S = 5,      /* after the entrypoint's own grace, SIGKILL the session */
};

enum stop_reason { STOP_NONE, STOP_TIMEOUT, STOP_CANCEL, STOP_SHUTDOWN };

/* A job's end (or return to the queue) the database has not taken yet. */
struct pending {
    struct pending *next;
    char job_id[37], status[16], reason[700];
    int exit_code, attempts, requeue;
    long long stopped_ms;
};

struct child {
    struct child *next;
    char job_id[37];
    pid_t pid; /* also the session and process group id */
    int out_fd, log_fd;
    char line[LINE_MAX_BYTES];
    size_t line_len;
    long long vcpus, memory;
    uint64_t gpu_mask;
    int attempt, max_attempts;
    long long timeout_s;
    int64_t deadline_ns, kill_ns;
    enum stop_reason stop;
    char work_dir[PATH_MAX];
};

struct jobs_executor {
    struct jobs_app *app;
    struct gw_worker *worker;
    struct jobs_listener *listener;
    int lock_fd;
    int recovered;
    char node[PATH_MAX + 300];
    struct jobs_executor_capacity cap;
    char gpu_names[MAX_GPUS][24];
    long long used_vcpus, used_memory;
    uint64_t used_gpus;
    struct child *children;
    struct pending *pending, **pending_tail; /* oldest first */
    int64_t last_cancel_check_ns, last_intake_ns, last_flush_ns;
    pthread_mutex_t usage_mu; /* guards usage, the copy other threads read */
    struct jobs_executor_usage usage;
};

/* ---- small helpers ---------------------------------------------------------- */

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void path_join(char *out, size_t outlen, const char *a, const char *b)
{
    gw_fmt(out, outlen, "%s/%s", a, b);
}

static int make_dir(const char *path)
{
    return mkdir(path, 0750) == 0 || errno == EEXIST ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

static void remove_tree(const char *path)
{
    (void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int popcount64(uint64_t v)
{
    int n = 0;
    for (; v != 0; v &= v - 1)
        n++;
    return n;
}

static void count(const char *result)
{
    char labels[64];
    gw_fmt(labels, sizeof(labels), "result=\"%s\"", result);
    gw_metrics_add("mlgw_local_attempts_total", labels, 1);
}

/* ---- the machine ----------------------------------------------------------------- */

static long long count_nvidia_smi(void)
{
    FILE *p = popen("nvidia-smi -L 2>/dev/null", "r");
    if (p == NULL)
        return 0;
    char line[512];
    long long n = 0;
    while (fgets(line, sizeof(line), p) != NULL)
        if (strncmp(line, "GPU ", 4) == 0)
            n++;
    (void)pclose(p);
    return n;
}

static long long count_nvidia_devices(void)
{
    DIR *d = opendir("/dev");
    if (d == NULL)
        return 0;
    long long n = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *s = de->d_name;
        if (strncmp(s, "nvidia", 6) != 0 || s[6] == '\0')
            continue;
        int digits = 1;
        for (const char *q = s + 6; *q != '\0'; q++)
            digits &= *q >= '0' && *q <= '9';
        n += digits;
    }
    closedir(d);
    return n;
}

static long long mem_available_mib(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (f == NULL)
        return 1024;
    char line[256];
    long long kb = 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            break;
    (void)fclose(f);
    return kb > 0 ? kb / 1024 : 1024;
}

/* GPU slot i is CUDA device gpu_names[i]: the gateway's own
 * CUDA_VISIBLE_DEVICES entries when it has them, else 0..n-1. */
static void detect(struct jobs_executor *e)
{
    const struct gw_config *cfg = e->app->cfg;
    long long gpus = cfg->local_gpus;
    const char *how = "MLGW_LOCAL_GPUS";
    if (gpus < 0) {
        gpus = count_nvidia_smi();
        how = "nvidia-smi";
        if (gpus == 0) {
            gpus = count_nvidia_devices();
            how = "/dev/nvidia*";
        }
    }
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    int named = 0;
    if (visible != NULL && visible[0] != '\0') {
        char copy[1024];
        gw_fmt(copy, sizeof(copy), "%s", visible);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t != NULL && named < MAX_GPUS;
             t = strtok_r(NULL, ",", &save))
            gw_fmt(e->gpu_names[named++], sizeof(e->gpu_names[0]), "%s", t);
        if (gpus > named)
            gpus = named;
    }
    if (gpus > MAX_GPUS)
        gpus = MAX_GPUS;
    for (int i = named; i < gpus; i++)
        gw_fmt(e->gpu_names[i], sizeof(e->gpu_names[0]), "%d", i);
    e->cap.gpus = gpus;
    e->cap.vcpus = cfg->local_vcpus > 0 ? cfg->local_vcpus : sysconf(_SC_NPROCESSORS_ONLN);
    if (e->cap.vcpus < 1)
        e->cap.vcpus = 1;
    e->cap.memory_mib = cfg->local_memory > 0 ? cfg->local_memory : mem_available_mib();
    GW_LOG_INFO("local executor %s: %lld vCPUs, %lld MiB, %lld GPUs (%s)", e->node, e->cap.vcpus,
                e->cap.memory_mib, e->cap.gpus, how);
}

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

/* ---- per-job log files ----------------------------------------------------------- */

static void log_write(int fd, const char *msg, size_t len)
{
    if (fd < 0)
        return;
    char ts[40];
    gw_format_time_ms(ts, sizeof(ts), gw_now_ms());
    struct gw_buf b;
    gw_buf_init(&b, LINE_MAX_BYTES + 64);
    if (gw_buf_printf(&b, "%s ", ts) == GW_OK && gw_buf_add(&b, msg, len) == GW_OK &&
        gw_buf_add(&b, "\n", 1) == GW_OK) {
        size_t off = 0;
        while (off < b.len) {
            ssize_t w = write(fd, b.data + off, b.len - off);
            if (w <= 0 && errno != EINTR)
                break;
            if (w > 0)
                off += (size_t)w;
        }
    }
    gw_buf_dispose(&b);
}

static void log_note(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line of the gateway's own in the job's log. */
static void log_note(int fd, const char *fmt, ...)
{
    char msg[1024];
    int off = snprintf(msg, sizeof(msg), "ml-gateway: ");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg + off, sizeof(msg) - (size_t)off, fmt, ap);
    va_end(ap);
    size_t len = (size_t)off + (n < 0 ? 0 : (size_t)n);
    if (len >= sizeof(msg))
        len = sizeof(msg) - 1;
    log_write(fd, msg, len);
}

static int open_job_log(const struct jobs_executor *e, const char *job_id)
{
    char path[PATH_MAX + 64];
    gw_fmt(path, sizeof(path), "%s/logs/%s.log", e->app->cfg->local_root, job_id);
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

/* Reads what the attempt wrote; each complete line gets a timestamp. */
static void pump(struct child *c, int final)
{
    while (c->out_fd >= 0) {
        char buf[16384];
        ssize_t n = read(c->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || final) {
                close(c->out_fd);
                c->out_fd = -1;
            }
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' || c->line_len == sizeof(c->line)) {
                log_write(c->log_fd, c->line, c->line_len);
                c->line_len = 0;
                if (buf[i] == '\n')
                    continue;
            }
            c->line[c->line_len++] = buf[i];
        }
    }
    if (final && c->line_len > 0) {
        log_write(c->log_fd, c->line, c->line_len);
        c->line_len = 0;
    }
}

/* ---- events ------------------------------------------------------------------------ */

static struct db_job_event local_event(const struct jobs_executor *e, const char *job_id,
                                       const char *status, const char *reason)
{
    struct db_job_event ev = {
        .source = "local",
        .gateway_id = job_id,
        .status = status,
        .reason = reason,
        .exit_code = -1,
        .attempts = -1,
        .vcpus = -1,
        .memory = -1,
        .gpus = -1,
    };
    jobs_event_policy(&ev, e->app);
    return ev;
}

static int apply_end(struct jobs_executor *e, const struct db_job_event *ev, int requeue)
{
    struct db_job_event_result r = {0};
    struct gw_err err = {0};
    if (db_local_finish(&r, e->app->pool, ev, requeue, &err) != GW_OK) {
        GW_LOG_WARN("local job %s: recording %s failed (kept, tried again): %s", ev->gateway_id,
                    ev->status, err.msg);
        return -1;
    }
    if (strcmp(r.result, "applied") == 0)
        GW_LOG_INFO("local job %s is %s: %s", ev->gateway_id, ev->status, ev->reason);
    return 0;
}

/* Applies a job's end (or its return to the queue). While the database
 * cannot take it, it waits in e->pending (in order) and is tried again: an
 * attempt that ended during an outage is not lost. */
static void report(struct jobs_executor *e, const struct db_job_event *ev, int requeue)
{
    if (e->pending == NULL && apply_end(e, ev, requeue) == 0)
        return;
    struct pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        GW_LOG_ERROR("local job %s: out of memory: %s is lost until a restart", ev->gateway_id,
                     ev->status);
        return;
    }
    gw_fmt(p->job_id, sizeof(p->job_id), "%s", ev->gateway_id);
    gw_fmt(p->status, sizeof(p->status), "%s", ev->status);
    gw_fmt(p->reason, sizeof(p->reason), "%s", ev->reason ? ev->reason : "");
    p->exit_code = ev->exit_code;
    p->attempts = ev->attempts;
    p->stopped_ms = ev->stopped_ms;
    p->requeue = requeue;
    *e->pending_tail = p;
    e->pending_tail = &p->next;
}

/* Tries the waiting reports again, oldest first, at most once a second. */
static void flush_pending(struct jobs_executor *e, int now)
{
    int64_t t = gw_monotonic_ns();
    if (e->pending == NULL || (!now && t - e->last_flush_ns < 1000000000LL))
        return;
    e->last_flush_ns = t;
    while (e->pending != NULL) {
        struct pending *p = e->pending;
        struct db_job_event ev = local_event(e, p->job_id, p->status, p->reason);
        ev.exit_code = p->exit_code;
        ev.attempts = p->attempts;
        ev.stopped_ms = p->stopped_ms;
        if (apply_end(e, &ev, p->requeue) != 0)
            return;
        e->pending = p->next;
        if (e->pending == NULL)
            e->pending_tail = &e->pending;
        free(p);
    }
}

int jobs_executor_misfits(const struct jobs_executor *e, long long vcpus, long long memory_mib,
                          long long gpus, struct jobs_executor_misfit out[3])
{
    static const char *const field[] = {"vcpus", "memory", "gpus"};
    static const char *const unit[] = {"vCPUs", "MiB of memory", "GPUs"};
    const long long want[] = {vcpus, memory_mib, gpus};
    const long long have[] = {e->cap.vcpus, e->cap.memory_mib, e->cap.gpus};
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (want[i] > have[i])
            out[n++] = (struct jobs_executor_misfit){field[i], unit[i], want[i], have[i]};
    return n;
}

/* Why a job can never run here, or "" when it can. */
static void misfit(char *out, size_t outlen, const struct jobs_executor *e, const json_t *job)
{
    struct jobs_executor_misfit m[3];
    out[0] = '\0';
    if (jobs_executor_misfits(e, jint(job, "vcpus"), jint(job, "memory"), jint(job, "gpus"), m) > 0)
        gw_fmt(out, outlen, "the job asks for %lld %s; this machine offers %lld", m[0].want,
               m[0].unit, m[0].have);
}

/* ---- intake ------------------------------------------------------------------------- */

static int intake(struct jobs_executor *e)
{
    int n = 0;
    for (; n < INTAKE_BATCH; n++) {
        struct db_outbox_item it;
        struct gw_err err = {0};
        int rc =
            db_outbox_claim(&it, e->app->pool, "{local}", (int)e->app->cfg->dispatch_lease_s, &err);
        if (rc != GW_OK) {
            if (rc != GW_ENOTFOUND)
                GW_LOG_DEBUG("local executor: %s", err.msg);
            break;
        }
        char why[256];
        misfit(why, sizeof(why), e, it.job);
        char reason[600];
        if (why[0] == '\0')
            gw_fmt(reason, sizeof(reason), "waiting for local resources on %s", e->node);
        else
            gw_fmt(reason, sizeof(reason), "cannot run locally: %s", why);
        struct db_job_event ev =
            local_event(e, it.job_id, why[0] == '\0' ? "RUNNABLE" : "FAILED", reason);
        if (why[0] != '\0')
            ev.stopped_ms = gw_now_ms();
        int accepted = 0;
        if (db_local_accept(&accepted, e->app->pool, &it, e->node, &ev, &err) != GW_OK)
            GW_LOG_WARN("local job %s: accepting it failed: %s", it.job_id, err.msg);
        else if (accepted && why[0] != '\0')
            GW_LOG_WARN("local job %s %s", it.job_id, reason);
        db_outbox_item_dispose(&it);
    }
    return n;
}

/* ---- starting an attempt -------------------------------------------------------------- */

static int fits(const struct jobs_executor *e, const json_t *job)
{
    return e->used_vcpus + jint(job, "vcpus") <= e->cap.vcpus &&
           e->used_memory + jint(job, "memory") <= e->cap.memory_mib &&
           popcount64(e->used_gpus) + jint(job, "gpus") <= e->cap.gpus;
}

static uint64_t take_gpus(struct jobs_executor *e, long long n, char *visible, size_t visible_len)
{
    uint64_t mask = 0;
    visible[0] = '\0';
    size_t off = 0;
    for (int i = 0; i < e->cap.gpus && n > 0; i++) {
        if (e->used_gpus & ((uint64_t)1 << i))
            continue;
        mask |= (uint64_t)1 << i;
        n--;
        int w =
            snprintf(visible + off, visible_len - off, "%s%s", off > 0 ? "," : "", e->gpu_names[i]);
        if (w > 0 && (size_t)w < visible_len - off)
            off += (size_t)w;
    }
    e->used_gpus |= mask;
    return mask;
}

static void release(struct jobs_executor *e, const struct child *c)
{
    e->used_vcpus -= c->vcpus;
    e->used_memory -= c->memory;
    e->used_gpus &= ~c->gpu_mask;
}

/* Names of the gateway's environment a job inherits; nothing secret of the
 * gateway's own (DATABASE_URL, MLGW_*) is passed on. */
static const char *const inherited[] = {
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "VIRTUAL_ENV",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CA_BUNDLE",
    "SSL_CERT_FILE",
};

struct spawn_plan {
    char **argv, **envp;
    size_t nargv, nenvp;
};

static void plan_dispose(struct spawn_plan *p)
{
    for (size_t i = 0; p->argv != NULL && i < p->nargv; i++)
        free(p->argv[i]);
    for (size_t i = 0; p->envp != NULL && i < p->nenvp; i++)
        free(p->envp[i]);
    free(p->argv);
    free(p->envp);
}

static int plan_build(struct spawn_plan *p, const struct jobs_executor *e, const json_t *job,
                      const struct child *c, const char *visible)
{
    const struct gw_config *cfg = e->app->cfg;
    memset(p, 0, sizeof(*p));
    char dir[PATH_MAX + 64];
    json_t *env = jobs_environment(cfg, job, NULL, "");
    path_join(dir, sizeof(dir), c->work_dir, "output");
    json_object_set_new(env, "ML_OUTPUT_DIR", json_string(dir));
    path_join(dir, sizeof(dir), c->work_dir, "tmp");
    json_object_set_new(env, "TMPDIR", json_string(dir));
    path_join(dir, sizeof(dir), cfg->local_root, "input");
    json_object_set_new(env, "MLGW_INPUT_DIR", json_string(dir));
    json_object_set_new(env, "MLGW_OUTPUT_URI", json_string(gw_json_str(job, "output_uri")));
    char num[32];
    gw_fmt(num, sizeof(num), "%d", c->attempt);
    json_object_set_new(env, "MLGW_ATTEMPT", json_string(num));
    gw_fmt(num, sizeof(num), "%lld", cfg->local_term_grace_s);
    json_object_set_new(env, "MLGW_TERM_GRACE", json_string(num));
    json_object_set_new(env, "CUDA_VISIBLE_DEVICES", json_string(visible));
    json_object_set_new(env, "PYTHONUNBUFFERED", json_string("1"));
    if (json_object_get(env, "MODEL_CACHE_DIR") == NULL) {
        path_join(dir, sizeof(dir), cfg->local_root, "cache");
        json_object_set_new(env, "MODEL_CACHE_DIR", json_string(dir));
    }
    for (size_t i = 0; i < sizeof(inherited) / sizeof(inherited[0]); i++) {
        const char *v = getenv(inherited[i]);
        if (v != NULL && json_object_get(env, inherited[i]) == NULL)
            json_object_set_new(env, inherited[i], json_string(v));
    }
    const json_t *args = json_object_get(job, "args");
    p->argv = calloc(json_array_size(args) + 3, sizeof(char *));
    p->envp = calloc(json_object_size(env) + 1, sizeof(char *));
    int ok = p->argv != NULL && p->envp != NULL;
    if (ok) {
        p->argv[p->nargv++] = strdup(cfg->local_python);
        p->argv[p->nargv++] = strdup(cfg->local_entrypoint);
        size_t i;
        const json_t *a;
        json_array_foreach(args, i, a)
        {
            p->argv[p->nargv++] = strdup(json_string_value(a) ? json_string_value(a) : "");
        }
        const char *k;
        json_t *v;
        json_object_foreach(env, k, v)
        {
            if (!json_is_string(v))
                continue;
            size_t len = strlen(k) + json_string_length(v) + 2;
            char *kv = malloc(len);
            if (kv != NULL)
                gw_fmt(kv, len, "%s=%s", k, json_string_value(v));
            p->envp[p->nenvp++] = kv;
        }
        for (size_t j = 0; j < p->nargv; j++)
            ok &= p->argv[j] != NULL;
        for (size_t j = 0; j < p->nenvp; j++)
            ok &= p->envp[j] != NULL;
    }
    json_decref(env);
    if (!ok)
        plan_dispose(p);
    return ok ? GW_OK : GW_ENOMEM;
}

/* In the child between fork and exec: async-signal-safe calls only. */
static void child_exec(const struct spawn_plan *p, pid_t parent, int out_fd, int null_fd,
                       const char *cwd)
{
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    (void)sigaction(SIGPIPE, &dfl, NULL);
    (void)setsid();
    /* The gateway dying ends the attempt gracefully (the entrypoint forwards
     * SIGTERM to the script and publishes what it has). */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(128 + SIGTERM);
    if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(126);
    (void)close_range(3, ~0U, 0);
    if (chdir(cwd) != 0)
        _exit(126);
    execvpe(p->argv[0], p->argv, p->envp);
    static const char msg[] = "ml-gateway: cannot execute the job's interpreter "
                              "(MLGW_LOCAL_PYTHON)\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(127);
}

/* Marks the job RUNNING, then forks its attempt. 1: started (or ended at
 * once), 0: the job was no longer RUNNABLE, -1: the database failed. */
static int start(struct jobs_executor *e, const json_t *job)
{
    const struct gw_config *cfg = e->app->cfg;
    struct child *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    gw_fmt(c->job_id, sizeof(c->job_id), "%s", gw_json_str(job, "id"));
    c->out_fd = c->log_fd = -1;
    c->vcpus = jint(job, "vcpus");
    c->memory = jint(job, "memory");
    c->attempt = (int)jint(job, "attempts") + 1;
    c->max_attempts = (int)jint(job, "max_attempts");
    c->timeout_s = jint(job, "timeout_seconds");
    char visible[MAX_GPUS * 24];
    c->gpu_mask = take_gpus(e, jint(job, "gpus"), visible, sizeof(visible));
    e->used_vcpus += c->vcpus;
    e->used_memory += c->memory;

    char reason[MAX_GPUS * 24 + 200];
    gw_fmt(reason, sizeof(reason), "attempt %d of %d started locally%s%s", c->attempt,
           c->max_attempts, visible[0] ? " on GPU " : "", visible);
    struct db_job_event ev = local_event(e, c->job_id, "RUNNING", reason);
    ev.attempts = c->attempt - 1;
    struct db_job_event_result r = {0};
    struct gw_err err = {0};
    if (db_job_event_apply(&r, e->app->pool, &ev, &err) != GW_OK ||
        strcmp(r.result, "applied") != 0) {
        release(e, c);
        free(c);
        return err.code != GW_OK ? -1 : 0;
    }

    char path[PATH_MAX + 64], dir[PATH_MAX];
    path_join(dir, sizeof(dir), cfg->local_root, "work");
    path_join(c->work_dir, sizeof(c->work_dir), dir, c->job_id);
    remove_tree(c->work_dir);
    int ok = make_dir(c->work_dir) == 0;
    path_join(path, sizeof(path), c->work_dir, "output");
    ok = ok && make_dir(path) == 0;
    path_join(path, sizeof(path), c->work_dir, "tmp");
    ok = ok && make_dir(path) == 0;
    c->log_fd = open_job_log(e, c->job_id);

    struct spawn_plan plan;
    int pipefd[2] = {-1, -1};
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = -1;
    int fork_errno = 0;
    if (ok && c->log_fd >= 0 && null_fd >= 0 && plan_build(&plan, e, job, c, visible) == GW_OK) {
        if (pipe2(pipefd, O_CLOEXEC) == 0) {
            pid_t parent = getpid();
            pid = fork();
            if (pid == 0)
                child_exec(&plan, parent, pipefd[1], null_fd, c->work_dir);
            fork_errno = errno;
            close(pipefd[1]);
        } else {
            fork_errno = errno;
        }
        plan_dispose(&plan);
    } else {
        fork_errno = errno != 0 ? errno : EIO;
    }
    if (null_fd >= 0)
        close(null_fd);
    int64_t started_ms = gw_now_ms();
    if (pid < 0) {
        if (pipefd[0] >= 0)
            close(pipefd[0]);
        char why[300];
        gw_fmt(why, sizeof(why), "cannot start attempt %d: %s", c->attempt, strerror(fork_errno));
        log_note(c->log_fd, "%s", why);
        struct db_job_event fail = local_event(e, c->job_id, "FAILED", why);
        fail.attempts = c->attempt;
        fail.stopped_ms = started_ms;
        report(e, &fail, 0);
        count("not-started");
        if (c->log_fd >= 0)
            close(c->log_fd);
        remove_tree(c->work_dir);
        release(e, c);
        free(c);
        return 1;
    }
    c->pid = pid;
    c->out_fd = pipefd[0];
    (void)fcntl(c->out_fd, F_SETFL, fcntl(c->out_fd, F_GETFL) | O_NONBLOCK);
    (void)fcntl(c->out_fd, F_SETPIPE_SZ, 1 << 20);
    int64_t now = gw_monotonic_ns();
    c->deadline_ns = c->timeout_s > 0 ? now + c->timeout_s * 1000000000LL : 0;
    c->next = e->children;
    e->children = c;
    if (db_local_started(e->app->pool, c->job_id, started_ms, &err) != GW_OK)
        GW_LOG_WARN("local job %s: recording its start failed: %s", c->job_id, err.msg);
    log_note(c->log_fd, "attempt %d of %d: %s %s (session %d%s%s)", c->attempt, c->max_attempts,
             cfg->local_python, gw_json_str(job, "script_key"), (int)pid,
             visible[0] ? ", CUDA_VISIBLE_DEVICES=" : "", visible);
    GW_LOG_INFO("local job %s: attempt %d started (pid %d)", c->job_id, c->attempt, (int)pid);
    return 1;
}

static void schedule(struct jobs_executor *e)
{
    for (int guard = 0; guard < 1000; guard++) {
        json_t *job = NULL;
        struct gw_err err = {0};
        if (db_local_head(&job, e->app->pool, e->node, &err) != GW_OK || job == NULL)
            return;
        char why[256];
        misfit(why, sizeof(why), e, job);
        int rc;
        if (why[0] != '\0') { /* the machine shrank since it was accepted */
            char reason[300];
            gw_fmt(reason, sizeof(reason), "cannot run locally: %s", why);
            struct db_job_event ev = local_event(e, gw_json_str(job, "id"), "FAILED", reason);
            ev.stopped_ms = gw_now_ms();
            report(e, &ev, 0);
            rc = 1;
        } else if (!fits(e, job)) {
            rc = -1; /* first in, first out: the head waits for room */
        } else {
            rc = start(e, job);
        }
        json_decref(job);
        if (rc < 0)
            return;
    }
}

/* ---- supervising attempts ------------------------------------------------------------ */

static void request_stop(struct jobs_executor *e, struct child *c, enum stop_reason why)
{
    if (c->stop != STOP_NONE)
        return;
    c->stop = why;
    long long grace = e->app->cfg->local_term_grace_s;
    c->kill_ns = gw_monotonic_ns() + (grace + KILL_MARGIN_S) * 1000000000LL;
    static const char *const what[] = {"", "the job timed out", "the job was cancelled",
                                       "the gateway is stopping"};
    log_note(c->log_fd, "%s: SIGTERM, then SIGKILL after %lld s", what[why], grace);
    if (kill(c->pid, SIGTERM) != 0 && errno != ESRCH)
        GW_LOG_WARN("local job %s: SIGTERM: %s", c->job_id, strerror(errno));
}

static void enforce(struct jobs_executor *e)
{
    int64_t now = gw_monotonic_ns();
    for (struct child *c = e->children; c != NULL; c = c->next) {
        if (c->stop == STOP_NONE && c->deadline_ns != 0 && now >= c->deadline_ns)
            request_stop(e, c, STOP_TIMEOUT);
        if (c->kill_ns != 0 && now >= c->kill_ns) {
            log_note(c->log_fd, "still running %lld s after SIGTERM: SIGKILL",
                     e->app->cfg->local_term_grace_s + KILL_MARGIN_S);
            (void)signal_job(c->job_id, SIGKILL);
            c->kill_ns = now + 1000000000LL;
        }
    }
}

static void check_cancelled(struct jobs_executor *e, int woken)
{
    int64_t now = gw_monotonic_ns();
    if (e->children == NULL ||
        (!woken && now - e->last_cancel_check_ns < CANCEL_CHECK_MS * 1000000LL))
        return;
    e->last_cancel_check_ns = now;
    struct gw_buf ids;
    gw_buf_init(&ids, 1 << 20);
    int rc = gw_buf_adds(&ids, "{");
    for (const struct child *c = e->children; rc == GW_OK && c != NULL; c = c->next)
        rc = gw_buf_printf(&ids, "%s%s", c == e->children ? "" : ",", c->job_id);
    if (rc == GW_OK)
        rc = gw_buf_adds(&ids, "}");
    PGresult *res = NULL;
    struct gw_err err = {0};
    if (rc == GW_OK && db_local_ended(&res, e->app->pool, ids.data, &err) == GW_OK) {
        for (int i = 0; i < PQntuples(res); i++)
            for (struct child *c = e->children; c != NULL; c = c->next)
                if (strcmp(c->job_id, PQgetvalue(res, i, 0)) == 0)
                    request_stop(e, c, STOP_CANCEL);
    }
    PQclear(res);
    gw_buf_dispose(&ids);
}

/* How an attempt ended → the job's status. */
static void finish(struct jobs_executor *e, struct child *c, int wstatus)
{
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    char how[64];
    if (WIFEXITED(wstatus))
        gw_fmt(how, sizeof(how), "exited with code %d", code);
    else
        gw_fmt(how, sizeof(how), "was killed by signal %d", WTERMSIG(wstatus));
    char reason[400];
    const char *status;
    int requeue = 0;
    int more = c->attempt < c->max_attempts;
    enum stop_reason stop = c->stop;
    if (stop == STOP_SHUTDOWN && code == 0)
        stop = STOP_NONE; /* it finished during the grace period */
    switch (stop) {
    case STOP_CANCEL:
        status = "CANCELLED";
        gw_fmt(reason, sizeof(reason), "cancelled; the attempt %s", how);
        break;
    case STOP_TIMEOUT:
        status = "FAILED"; /* as on AWS Batch, a timed-out job is not retried */
        gw_fmt(reason, sizeof(reason), "timed out after %lld s (timeout_seconds); the attempt %s",
               c->timeout_s, how);
        break;
    case STOP_SHUTDOWN:
        status = more ? "RUNNABLE" : "FAILED";
        requeue = more;
        gw_fmt(reason, sizeof(reason), "gateway stopped during attempt %d of %d%s", c->attempt,
               c->max_attempts, more ? "; it runs again after the restart" : "");
        break;
    case STOP_NONE:
    default:
        if (code == 0) {
            status = "SUCCEEDED";
            gw_fmt(reason, sizeof(reason), "the job %s", how);
        } else if (more) {
            status = "RUNNABLE";
            requeue = 1;
            gw_fmt(reason, sizeof(reason), "attempt %d of %d %s; retrying", c->attempt,
                   c->max_attempts, how);
        } else {
            status = "FAILED";
            gw_fmt(reason, sizeof(reason), "the job %s", how);
        }
        break;
    }
    log_note(c->log_fd, "attempt %d %s: %s", c->attempt, how, status);
    struct db_job_event ev = local_event(e, c->job_id, status, reason);
    ev.exit_code = code;
    ev.attempts = c->attempt;
    if (!requeue)
        ev.stopped_ms = gw_now_ms();
    report(e, &ev, requeue);
    count(code == 0 ? "succeeded" : "failed");
}

/* Collects the attempts that ended; returns how many. */
static int reap(struct jobs_executor *e)
{
    int n = 0;
    struct child **pp = &e->children;
    while (*pp != NULL) {
        struct child *c = *pp;
        int wstatus = 0;
        pid_t w = waitpid(c->pid, &wstatus, WNOHANG);
        pump(c, 0);
        if (w == 0 || (w < 0 && errno == EINTR)) {
            pp = &c->next;
            continue;
        }
        if (w < 0) /* not our child any more: cannot happen; do not spin */
            wstatus = 255 << 8;
        /* Whatever the attempt left running must not outlive it. */
        (void)signal_job(c->job_id, SIGKILL);
        pump(c, 1);
        finish(e, c, wstatus);
        if (c->out_fd >= 0)
            close(c->out_fd);
        if (c->log_fd >= 0)
            close(c->log_fd);
        remove_tree(c->work_dir);
        release(e, c);
        *pp = c->next;
        free(c);
        n++;
    }
    return n;
}

/* ---- crash recovery ------------------------------------------------------------------- */

static int recover(struct jobs_executor *e)
{
    PGresult *res = NULL;
    struct gw_err err = {0};
    if (db_local_orphans(&res, e->app->pool, e->node, &err) != GW_OK)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        long long attempts = 0, max_attempts = 1;
        kill_leftovers(id);
        (void)gw_parse_ll(&attempts, PQgetvalue(res, i, 1), 0, 1000);
        (void)gw_parse_ll(&max_attempts, PQgetvalue(res, i, 2), 1, 1000);
        int attempt = (int)attempts + 1;
        int more = attempt < max_attempts;
        char reason[200];
        gw_fmt(reason, sizeof(reason), "gateway restarted during attempt %d of %lld%s", attempt,
               max_attempts, more ? "; retrying" : "");
        struct db_job_event ev = local_event(e, id, more ? "RUNNABLE" : "FAILED", reason);
        ev.attempts = attempt;
        if (!more)
            ev.stopped_ms = gw_now_ms();
        GW_LOG_WARN("local job %s: %s", id, reason);
        int fd = open_job_log(e, id);
        log_note(fd, "%s", reason);
        if (fd >= 0)
            close(fd);
        report(e, &ev, more);
    }
    PQclear(res);
    if (db_local_release_leases(e->app->pool, &err) != GW_OK)
        return -1;
    return 0;
}

/* ---- the thread ------------------------------------------------------------------------- */

static void publish_usage(struct jobs_executor *e)
{
    struct jobs_executor_usage u = {e->used_vcpus, e->used_memory, popcount64(e->used_gpus), 0};
    for (const struct child *c = e->children; c != NULL; c = c->next)
        u.running++;
    pthread_mutex_lock(&e->usage_mu);
    e->usage = u;
    pthread_mutex_unlock(&e->usage_mu);
}

static void free_executor(struct jobs_executor *e)
{
    pthread_mutex_destroy(&e->usage_mu);
    free(e);
}

void jobs_executor_usage(struct jobs_executor *e, struct jobs_executor_usage *out)
{
    pthread_mutex_lock(&e->usage_mu);
    *out = e->usage;
    pthread_mutex_unlock(&e->usage_mu);
}

static int exec_run(void *arg)
{
    struct jobs_executor *e = arg;
    if (!e->recovered) {
        if (recover(e) != 0)
            return 0; /* the database is not there yet: next interval */
        e->recovered = 1;
    }
    flush_pending(e, 0);
    int woken = gw_worker_run_was_woken(e->worker);
    int freed = reap(e);
    check_cancelled(e, woken);
    enforce(e);
    /* The queue is looked at when something may have changed: a
     * notification (a new job, a cancellation), room freed, or the poll
     * interval passed; not on every supervision tick. */
    int64_t now = gw_monotonic_ns();
    if (woken || freed > 0 ||
        now - e->last_intake_ns >= e->app->cfg->dispatch_poll_ms * 1000000LL) {
        e->last_intake_ns = now;
        (void)intake(e);
        schedule(e);
    }
    publish_usage(e);
    return e->children != NULL || e->pending != NULL ? TICK_MS : 0;
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
    e->pending_tail = &e->pending;
    pthread_mutex_init(&e->usage_mu, NULL);
    static const char *const dirs[] = {"", "input", "output", "logs", "work", "cache"};
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        path_join(path, sizeof(path), cfg->local_root, dirs[i]);
        if (make_dir(path) != 0) {
            int rc = gw_err_set(err, GW_EIO, "cannot create %s: %s", path, strerror(errno));
            free_executor(e);
            return rc;
        }
    }
    path_join(path, sizeof(path), cfg->local_root, ".executor.lock");
    e->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (e->lock_fd < 0 || flock(e->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int rc = gw_err_set(err, GW_ECONFLICT,
                            "%s is in use by another gateway (one local executor per root)",
                            cfg->local_root);
        if (e->lock_fd >= 0)
            close(e->lock_fd);
        free_executor(e);
        return rc;
    }
    /* Nothing runs yet: what is under work/ is a dead gateway's. */
    path_join(path, sizeof(path), cfg->local_root, "work");
    remove_tree(path);
    (void)make_dir(path);
    char host[256] = "localhost";
    (void)gethostname(host, sizeof(host) - 1);
    gw_fmt(e->node, sizeof(e->node), "%s:%s", host, cfg->local_root);
    detect(e);
    gw_metrics_describe("mlgw_local_attempts_total", "counter",
                        "Local job attempts by how they ended.");
    int rc = gw_worker_start(&e->worker, "executor", cfg->dispatch_poll_ms, exec_run, e);
    if (rc != GW_OK) {
        close(e->lock_fd);
        free_executor(e);
        return gw_err_set(err, rc, "cannot start the local executor thread");
    }
    gw_worker_wake(e->worker);
    (void)jobs_listener_start(&e->listener, cfg, "mlgw_outbox", &e->worker, 1);
    *out = e;
    return GW_OK;
}

void jobs_executor_capacity(const struct jobs_executor *e, struct jobs_executor_capacity *out)
{
    *out = e->cap;
}

void jobs_executor_stop(struct jobs_executor *e)
{
    if (e == NULL)
        return;
    jobs_listener_stop(e->listener);
    gw_worker_stop(e->worker);
    if (e->children != NULL) {
        int n = 0;
        for (struct child *c = e->children; c != NULL; c = c->next, n++)
            request_stop(e, c, STOP_SHUTDOWN);
        GW_LOG_INFO("local executor: stopping %d running job(s)", n);
        int64_t give_up = gw_monotonic_ns() +
                          (e->app->cfg->local_term_grace_s + 2LL * KILL_MARGIN_S) * 1000000000LL;
        while (e->children != NULL && gw_monotonic_ns() < give_up) {
            (void)reap(e);
            enforce(e);
            struct timespec ts = {0, TICK_MS * 1000000L};
            if (e->children != NULL)
                nanosleep(&ts, NULL);
        }
        while (e->children != NULL) { /* unkillable: the next start deals with them */
            struct child *c = e->children;
            GW_LOG_ERROR("local job %s: attempt %d did not stop (pid %d)", c->job_id, c->attempt,
                         (int)c->pid);
            if (c->out_fd >= 0)
                close(c->out_fd);
            if (c->log_fd >= 0)
                close(c->log_fd);
            e->children = c->next;
            free(c);
        }
    }
    flush_pending(e, 1);
    for (struct pending *p = e->pending, *next; p != NULL; p = next) {
        next = p->next;
        GW_LOG_ERROR("local job %s: %s could not be recorded; the next start treats the job as "
                     "interrupted",
                     p->job_id, p->status);
        free(p);
    }
    close(e->lock_fd);
    free_executor(e);
}
