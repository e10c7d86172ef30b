/*
 * spawn.c — starting one attempt of a local job (spawn.h).
 *
 * The parent builds everything the child needs (argv, envp, the work
 * directory, the pipe) before fork(); the child only resets its signals,
 * makes its own session, asks to get SIGTERM when the gateway dies, wires
 * /dev/null and the pipe to its standard streams and execs. Does not wait
 * for, signal or read from the attempt: supervise.c does.
 */
#define _GNU_SOURCE /* execvpe, pipe2, close_range, F_SETPIPE_SZ */

#include "jobs/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json.h"
#include "jobs/jobenv.h"
#include "jobs/joblog.h"

#include "common/poison.h"

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
    return mkdir(path, 0750) == 0 || errno == EEXIST ? GW_OK : GW_EIO;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

void jobs_spawn_remove_tree(const char *path)
{
    (void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the local root --------------------------------------------------------- */

int jobs_spawn_make_root(const char *root, struct gw_err *err)
{
    static const char *const dirs[] = {"", "input", "output", "logs", "work", "cache"};
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < GW_ARRAY_LEN(dirs); i++) {
        path_join(path, sizeof(path), root, dirs[i]);
        if (make_dir(path) != GW_OK)
            return gw_err_set(err, GW_EIO, "cannot create %s: %s", path, strerror(errno));
    }
    return GW_OK;
}

void jobs_spawn_clear_work(const char *root)
{
    char path[PATH_MAX + 64];
    path_join(path, sizeof(path), root, "work");
    jobs_spawn_remove_tree(path);
    (void)make_dir(path);
}

/* ---- attempts ----------------------------------------------------------------- */

int jobs_attempt_new(struct jobs_attempt **out, const json_t *job)
{
    struct jobs_attempt *a = calloc(1, sizeof(*a));
    *out = a;
    if (a == NULL)
        return GW_ENOMEM;
    gw_fmt(a->job_id, sizeof(a->job_id), "%s", gw_json_str(job, "id"));
    a->out_fd = a->log_fd = -1;
    a->attempt = (int)jint(job, "attempts") + 1;
    a->max_attempts = (int)jint(job, "max_attempts");
    a->timeout_s = jint(job, "timeout_seconds");
    return GW_OK;
}

void jobs_attempt_free(struct jobs_attempt *a)
{
    if (a == NULL)
        return;
    if (a->out_fd >= 0)
        close(a->out_fd);
    jobs_log_close(a->log_fd);
    free(a);
}

/* ---- argv and environment -------------------------------------------------------- */

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

/* The attempt's environment as JSON (new): the containers' variables, the
 * local paths, and what it inherits of the gateway's. */
static json_t *attempt_env(const struct gw_config *cfg, const json_t *job,
                           const struct jobs_attempt *a)
{
    char dir[PATH_MAX + 64];
    json_t *env = jobs_environment(cfg, job, NULL, "");
    path_join(dir, sizeof(dir), a->work_dir, "output");
    json_object_set_new(env, "ML_OUTPUT_DIR", json_string(dir));
    path_join(dir, sizeof(dir), a->work_dir, "tmp");
    json_object_set_new(env, "TMPDIR", json_string(dir));
    path_join(dir, sizeof(dir), cfg->local_root, "input");
    json_object_set_new(env, "MLGW_INPUT_DIR", json_string(dir));
    json_object_set_new(env, "MLGW_OUTPUT_URI", json_string(gw_json_str(job, "output_uri")));
    char num[32];
    gw_fmt(num, sizeof(num), "%d", a->attempt);
    json_object_set_new(env, "MLGW_ATTEMPT", json_string(num));
    gw_fmt(num, sizeof(num), "%lld", cfg->local_term_grace_s);
    json_object_set_new(env, "MLGW_TERM_GRACE", json_string(num));
    json_object_set_new(env, "CUDA_VISIBLE_DEVICES", json_string(a->grant.visible));
    json_object_set_new(env, "PYTHONUNBUFFERED", json_string("1"));
    if (json_object_get(env, "MODEL_CACHE_DIR") == NULL) {
        path_join(dir, sizeof(dir), cfg->local_root, "cache");
        json_object_set_new(env, "MODEL_CACHE_DIR", json_string(dir));
    }
    for (size_t i = 0; i < GW_ARRAY_LEN(inherited); i++) {
        const char *v = getenv(inherited[i]);
        if (v != NULL && json_object_get(env, inherited[i]) == NULL)
            json_object_set_new(env, inherited[i], json_string(v));
    }
    return env;
}

/* argv (interpreter, entrypoint, the job's args) and envp ("K=V" of env's
 * strings) for execvpe. GW_ENOMEM (p is then empty). */
static int plan_build(struct spawn_plan *p, const struct gw_config *cfg, const json_t *job,
                      json_t *env)
{
    memset(p, 0, sizeof(*p));
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
    if (!ok) {
        plan_dispose(p);
        memset(p, 0, sizeof(*p));
    }
    return ok ? GW_OK : GW_ENOMEM;
}

/* ---- fork and exec ----------------------------------------------------------------- */

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

/* Forks the attempt with its output on a new pipe: a->pid and a->out_fd.
 * On failure returns the errno that says why (0 on success). */
static int fork_attempt(struct jobs_attempt *a, const struct spawn_plan *plan)
{
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0)
        return errno;
    int pipefd[2] = {-1, -1};
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        int saved = errno;
        close(null_fd);
        return saved;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(plan, parent, pipefd[1], null_fd, a->work_dir);
    int saved = errno;
    close(pipefd[1]);
    close(null_fd);
    if (pid < 0) {
        close(pipefd[0]);
        return saved;
    }
    a->pid = pid;
    a->out_fd = pipefd[0];
    (void)fcntl(a->out_fd, F_SETFL, fcntl(a->out_fd, F_GETFL) | O_NONBLOCK);
    (void)fcntl(a->out_fd, F_SETPIPE_SZ, 1 << 20);
    return 0;
}

/* A fresh work directory <root>/work/<job id> with output/ and tmp/.
 * Returns the errno that says why it could not be made (0: made). */
static int make_work_dir(struct jobs_attempt *a, const char *root)
{
    char path[PATH_MAX + 64], dir[PATH_MAX];
    path_join(dir, sizeof(dir), root, "work");
    path_join(a->work_dir, sizeof(a->work_dir), dir, a->job_id);
    jobs_spawn_remove_tree(a->work_dir);
    static const char *const sub[] = {"", "output", "tmp"};
    for (size_t i = 0; i < GW_ARRAY_LEN(sub); i++) {
        if (sub[i][0] == '\0')
            gw_fmt(path, sizeof(path), "%s", a->work_dir);
        else
            path_join(path, sizeof(path), a->work_dir, sub[i]);
        if (make_dir(path) != GW_OK)
            return errno != 0 ? errno : EIO;
    }
    return 0;
}

/* Builds argv and envp and forks. Returns the errno that says why the
 * attempt did not start (0: it did). */
static int exec_attempt(struct jobs_attempt *a, const struct gw_config *cfg, const json_t *job)
{
    struct spawn_plan plan;
    json_t *env = attempt_env(cfg, job, a);
    int rc = plan_build(&plan, cfg, job, env);
    json_decref(env);
    if (rc != GW_OK)
        return ENOMEM;
    int sys = fork_attempt(a, &plan);
    plan_dispose(&plan);
    return sys;
}

int jobs_spawn(struct jobs_attempt *a, const struct gw_config *cfg, const json_t *job,
               struct gw_err *err)
{
    int sys = make_work_dir(a, cfg->local_root);
    /* The log opens even so: it says why the attempt did not start. */
    if (jobs_log_open(&a->log_fd, cfg->local_root, a->job_id, NULL) != GW_OK && sys == 0)
        sys = errno != 0 ? errno : EIO;
    if (sys == 0)
        sys = exec_attempt(a, cfg, job);
    if (sys == 0)
        return GW_OK;
    char why[300];
    gw_fmt(why, sizeof(why), "cannot start attempt %d: %s", a->attempt, strerror(sys));
    (void)jobs_log_note(a->log_fd, "%s", why);
    jobs_log_close(a->log_fd);
    a->log_fd = -1;
    jobs_spawn_remove_tree(a->work_dir);
    return gw_err_public(err, sys == ENOMEM ? GW_ENOMEM : GW_EIO, "%s", why);
}
