/*
 * spawn.c — starting one attempt of a local job (spawn.h).
 *
 * The parent builds everything the child needs (argv, envp, the work
 * directory, the pipe, the environment's descriptor, the limits) before
 * fork(); the child only resets its signals (jobs_fork), makes its own
 * session, asks to get a signal when the gateway dies, wires /dev/null, the
 * pipe and the environment to its descriptors 0-3, sets its limits and execs
 * bwrap (or, without the sandbox, the interpreter). Does not wait for, signal or read
 * from the attempt: supervise.c does.
 */
#define _GNU_SOURCE /* execvpe, pipe2, close_range, F_SETPIPE_SZ, memfd_create */

#include "jobs/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

/* The model cache of local jobs: MLGW_CACHE_DIR, else <root>/cache. */
static void cache_path(char *out, size_t outlen, const struct gw_config *cfg)
{
    if (cfg->cache_dir != NULL)
        gw_fmt(out, outlen, "%s", cfg->cache_dir);
    else
        path_join(out, outlen, cfg->local_root, "cache");
}

int jobs_spawn_make_root(const struct gw_config *cfg, struct gw_err *err)
{
    static const char *const dirs[] = {"", "input", "output", "logs", "work"};
    char path[PATH_MAX + 64];
    for (size_t i = 0; i <= GW_ARRAY_LEN(dirs); i++) {
        if (i < GW_ARRAY_LEN(dirs))
            path_join(path, sizeof(path), cfg->local_root, dirs[i]);
        else
            cache_path(path, sizeof(path), cfg);
        if (make_dir(path) != GW_OK)
            return gw_err_set(err, GW_EIO, "cannot create %s: %s", path, strerror(errno));
    }
    return GW_OK;
}

int jobs_spawn_share_root(const struct gw_config *cfg, const struct jobs_sandbox *sb,
                          struct gw_err *err)
{
    if (!sb->on || !sb->as_root)
        return GW_OK;
    const char *root = cfg->local_root;
    char path[PATH_MAX + 64];
    cache_path(path, sizeof(path), cfg);
    if (chown(path, sb->uid, sb->gid) != 0)
        return gw_err_set(err, GW_EIO, "cannot give %s to the jobs' user: %s", path,
                          strerror(errno));
    /* output/ and output/jobs/: traversable, not listable; each job's own
     * directory is the jobs' user's. */
    static const char *const outputs[] = {"output", "output/jobs"};
    for (size_t i = 0; i < GW_ARRAY_LEN(outputs); i++) {
        path_join(path, sizeof(path), root, outputs[i]);
        if (make_dir(path) != GW_OK || chmod(path, 0711) != 0)
            return gw_err_set(err, GW_EIO, "cannot open %s to the jobs' user: %s", path,
                              strerror(errno));
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

/* Names of the gateway's environment a job inherits; none is a secret. The
 * gateway's own AWS credentials, profile and credential files never reach
 * a job (the operator's MLGW_LOCAL_JOB_AWS_* do), nor DATABASE_URL, nor
 * MLGW_*. */
static const char *const inherited[] = {
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "VIRTUAL_ENV",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "SSL_CERT_FILE",
};

/* Without the sandbox a job also has the gateway's home and user. */
static const char *const inherited_unsandboxed[] = {"HOME", "USER", "LOGNAME"};

struct spawn_plan {
    struct jobs_strv argv, envp; /* envp: "K=V" */
    int sandboxed;
    int python_missing; /* MLGW_LOCAL_PYTHON cannot be found: the child says so */
    int res[4];         /* the limits of a sandboxed attempt */
    struct rlimit lim[4];
};

static void plan_dispose(struct spawn_plan *p)
{
    jobs_strv_dispose(&p->argv);
    jobs_strv_dispose(&p->envp);
}

static void inherit(json_t *env, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv(names[i]);
        if (v != NULL && json_object_get(env, names[i]) == NULL)
            json_object_set_new(env, names[i], json_string(v));
    }
}

/* The operator's credentials for local jobs, where set. */
static void add_job_credentials(json_t *env, const struct gw_config *cfg)
{
    const struct {
        const char *name, *value;
    } creds[] = {
        {"AWS_ACCESS_KEY_ID", cfg->local_job_aws_key_id},
        {"AWS_SECRET_ACCESS_KEY", cfg->local_job_aws_secret},
        {"AWS_PROFILE", cfg->local_job_aws_profile},
        {"AWS_CONFIG_FILE", cfg->local_job_aws_config},
        {"AWS_SHARED_CREDENTIALS_FILE", cfg->local_job_aws_config},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(creds); i++)
        if (creds[i].value != NULL)
            json_object_set_new(env, creds[i].name, json_string(creds[i].value));
}

/* The attempt's environment as JSON (new): the containers' variables, the
 * local paths, what it inherits of the gateway's, and its credentials. */
static json_t *attempt_env(const struct gw_config *cfg, const struct jobs_sandbox *sb,
                           const json_t *job, const struct jobs_attempt *a)
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
        cache_path(dir, sizeof(dir), cfg);
        json_object_set_new(env, "MODEL_CACHE_DIR", json_string(dir));
    }
    if (sb->on && json_object_get(env, "HOME") == NULL)
        json_object_set_new(env, "HOME", json_string(a->work_dir));
    inherit(env, inherited, GW_ARRAY_LEN(inherited));
    if (!sb->on)
        inherit(env, inherited_unsandboxed, GW_ARRAY_LEN(inherited_unsandboxed));
    add_job_credentials(env, cfg);
    return env;
}

/* The sandboxed command: bwrap ... python entrypoint (sandbox.h). */
static void plan_sandboxed(struct spawn_plan *p, const struct gw_config *cfg,
                           const struct jobs_sandbox *sb, const struct jobs_attempt *a,
                           const char *output_dir)
{
    char python[PATH_MAX], input[PATH_MAX + 64], cache[PATH_MAX + 64], outputs[PATH_MAX + 64];
    p->sandboxed = 1;
    p->python_missing =
        jobs_sandbox_find(python, sizeof(python), cfg->local_python) != GW_OK || python[0] != '/';
    path_join(input, sizeof(input), cfg->local_root, "input");
    cache_path(cache, sizeof(cache), cfg);
    path_join(outputs, sizeof(outputs), cfg->local_root, "output");
    const char *ssl = getenv("SSL_CERT_FILE"), *ca = getenv("AWS_CA_BUNDLE");
    struct jobs_sandbox_attempt at = {
        .job_id = a->job_id,
        .work_dir = a->work_dir,
        .outputs_dir = outputs,
        .output_dir = output_dir[0] != '\0' ? output_dir : NULL,
        .input_dir = input,
        .cache_dir = cache,
        .entrypoint = cfg->local_entrypoint,
        .python = p->python_missing ? cfg->local_python : python,
        .gpus = a->grant.gpu_mask != 0,
    };
    size_t n = 0;
    const char *files[] = {ssl, ca, cfg->local_job_aws_config};
    for (size_t i = 0; i < GW_ARRAY_LEN(files); i++)
        if (files[i] != NULL && files[i][0] == '/')
            at.ro_files[n++] = files[i];
    jobs_sandbox_command(&p->argv, sb, &at);
    struct rlimit nofile = {0, 0};
    (void)getrlimit(RLIMIT_NOFILE, &nofile);
    jobs_sandbox_limits(p->res, p->lim, a->grant.memory_mib, nofile.rlim_max);
}

/* argv (the sandbox, or the interpreter, then the entrypoint and the job's
 * args) and envp ("K=V" of env's strings). GW_ENOMEM. */
static int plan_build(struct spawn_plan *p, const struct gw_config *cfg,
                      const struct jobs_sandbox *sb, const struct jobs_attempt *a,
                      const json_t *job, const char *output_dir)
{
    memset(p, 0, sizeof(*p));
    if (sb->on) {
        plan_sandboxed(p, cfg, sb, a, output_dir);
    } else {
        jobs_strv_add(&p->argv, cfg->local_python);
        jobs_strv_add(&p->argv, cfg->local_entrypoint);
    }
    size_t i;
    const json_t *arg;
    json_array_foreach(json_object_get(job, "args"), i, arg)
    {
        jobs_strv_add(&p->argv, json_string_value(arg) ? json_string_value(arg) : "");
    }
    json_t *env = attempt_env(cfg, sb, job, a);
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        if (json_is_string(v))
            jobs_strv_addf(&p->envp, "%s=%s", k, json_string_value(v));
    }
    json_decref(env);
    return p->argv.failed || p->envp.failed ? GW_ENOMEM : GW_OK;
}

/* ---- descriptors, fork and exec ------------------------------------------------------ */

struct spawn_fds {
    int null_fd, out_r, out_w, env_fd; /* -1: not open */
};

static void close_fds(struct spawn_fds *f)
{
    int *all[] = {&f->null_fd, &f->out_r, &f->out_w, &f->env_fd};
    for (size_t i = 0; i < GW_ARRAY_LEN(all); i++) {
        if (*all[i] >= 0)
            close(*all[i]);
        *all[i] = -1;
    }
}

/* The sandboxed environment, "K=V\0" after one another, in a memory file
 * read from its start. Returns an errno (0: made). */
static int env_file(int *out, const struct jobs_strv *envp)
{
    int fd = memfd_create("mlgw-job-env", MFD_CLOEXEC);
    if (fd < 0)
        return errno;
    for (size_t i = 0; i < envp->n; i++) {
        const char *s = envp->v[i];
        size_t left = strlen(s) + 1;
        while (left > 0) {
            ssize_t w = write(fd, s, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                int saved = w < 0 ? errno : EIO;
                close(fd);
                return saved;
            }
            s += w;
            left -= (size_t)w;
        }
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        int saved = errno;
        close(fd);
        return saved;
    }
    *out = fd;
    return 0;
}

/* /dev/null, the output pipe and (sandboxed) the environment. Returns an
 * errno (0: all open). */
static int open_fds(struct spawn_fds *f, const struct spawn_plan *p)
{
    f->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (f->null_fd < 0)
        return errno;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return errno;
    f->out_r = pipefd[0];
    f->out_w = pipefd[1];
    return p->sandboxed ? env_file(&f->env_fd, &p->envp) : 0;
}

/* In the child between fork and exec: async-signal-safe calls only. */
static void child_exec(const struct spawn_plan *p, pid_t parent, const struct spawn_fds *f,
                       const char *cwd)
{
    static char *const no_env[] = {NULL};
    (void)setsid();
    /* The gateway dying ends the attempt: without the sandbox gracefully (the
     * entrypoint forwards SIGTERM to the script and publishes what it has);
     * sandboxed, bwrap's --die-with-parent takes over from here. */
    (void)prctl(PR_SET_PDEATHSIG, p->sandboxed ? SIGKILL : SIGTERM);
    if (getppid() != parent)
        _exit(128 + SIGTERM);
    if (dup2(f->null_fd, 0) < 0 || dup2(f->out_w, 1) < 0 || dup2(f->out_w, 2) < 0)
        _exit(126);
    if (p->sandboxed) {
        if (dup2(f->env_fd, JOBS_SANDBOX_ENV_FD) < 0 || fcntl(JOBS_SANDBOX_ENV_FD, F_SETFD, 0) != 0)
            _exit(126);
        (void)close_range(JOBS_SANDBOX_ENV_FD + 1, ~0U, 0);
        for (int i = 0; i < 4; i++)
            (void)setrlimit((__rlimit_resource_t)p->res[i], &p->lim[i]);
    } else {
        (void)close_range(3, ~0U, 0);
    }
    if (chdir(cwd) != 0)
        _exit(126);
    static const char no_python[] = "ml-gateway: cannot execute the job's interpreter "
                                    "(MLGW_LOCAL_PYTHON)\n";
    static const char no_bwrap[] = "ml-gateway: cannot execute the job sandbox "
                                   "(MLGW_LOCAL_BWRAP)\n";
    if (!p->python_missing) {
        if (p->sandboxed)
            execve(p->argv.v[0], p->argv.v, no_env);
        else
            execvpe(p->argv.v[0], p->argv.v, p->envp.v);
    }
    if (p->sandboxed && !p->python_missing)
        (void)!write(2, no_bwrap, sizeof(no_bwrap) - 1);
    else
        (void)!write(2, no_python, sizeof(no_python) - 1);
    _exit(127);
}

pid_t jobs_fork(void)
{
    sigset_t all, old;
    sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        /* Async-signal-safe calls only from here to exec. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
            (void)sigaction(sig, &dfl, NULL); /* fails harmlessly for SIGKILL, SIGSTOP */
        sigset_t none;
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        return 0;
    }
    int saved = errno;
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return pid;
}

/* Forks the attempt with its output on the pipe: a->pid and a->out_fd (the
 * pipe's read end moves there). Returns the errno that says why it did not
 * (0 on success). */
static int fork_attempt(struct jobs_attempt *a, const struct spawn_plan *plan, struct spawn_fds *f)
{
    pid_t parent = getpid();
    pid_t pid = jobs_fork();
    if (pid == 0)
        child_exec(plan, parent, f, a->work_dir);
    if (pid < 0)
        return errno;
    a->pid = pid;
    a->sandboxed = plan->sandboxed;
    a->out_fd = f->out_r;
    f->out_r = -1;
    (void)fcntl(a->out_fd, F_SETFL, fcntl(a->out_fd, F_GETFL) | O_NONBLOCK);
    (void)fcntl(a->out_fd, F_SETPIPE_SZ, 1 << 20);
    return 0;
}

/* ---- directories ---------------------------------------------------------------------- */

/* Gives path to the jobs' user when the sandbox drops to one. Returns an
 * errno (0: done or nothing to do). */
static int give(const char *path, const struct jobs_sandbox *sb)
{
    if (!sb->on || !sb->as_root)
        return 0;
    return chown(path, sb->uid, sb->gid) == 0 ? 0 : errno;
}

/* A fresh work directory a->work_dir with output/ and tmp/. Returns the
 * errno that says why it could not be made (0: made). */
static int make_work_dir(struct jobs_attempt *a, const struct jobs_sandbox *sb)
{
    char path[PATH_MAX + 64];
    jobs_spawn_remove_tree(a->work_dir);
    static const char *const sub[] = {"", "output", "tmp"};
    for (size_t i = 0; i < GW_ARRAY_LEN(sub); i++) {
        if (sub[i][0] == '\0')
            gw_fmt(path, sizeof(path), "%s", a->work_dir);
        else
            path_join(path, sizeof(path), a->work_dir, sub[i]);
        if (make_dir(path) != GW_OK)
            return errno != 0 ? errno : EIO;
        /* bwrap enters the work directory and makes directories in tmp/ (the
         * job's /tmp) before it drops to the job's user, with no capability
         * that bypasses permissions: the one traversable, the other a /tmp. */
        static const mode_t modes[] = {0711, 0750, 01777};
        if (sb->on && i != 1 && chmod(path, modes[i]) != 0)
            return errno;
        int sys = give(path, sb);
        if (sys != 0)
            return sys;
    }
    return 0;
}

/* Sandboxed, the directory of a file:// output_uri into out; "" otherwise. */
static void output_dir_of(char *out, size_t outlen, const json_t *job,
                          const struct jobs_sandbox *sb)
{
    const char *uri = gw_json_str(job, "output_uri");
    out[0] = '\0';
    if (!sb->on || uri == NULL || strncmp(uri, "file:///", 8) != 0)
        return;
    gw_fmt(out, outlen, "%s", uri + 7);
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/')
        out[--len] = '\0';
}

/* Makes out (from output_dir_of; "": nothing to do) and gives it to the
 * jobs' user. Returns an errno (0: done). */
static int make_output_dir(char *out, const struct jobs_sandbox *sb)
{
    if (out[0] == '\0')
        return 0;
    for (char *p = strchr(out + 1, '/');; p = strchr(p + 1, '/')) {
        if (p != NULL)
            *p = '\0';
        int made = make_dir(out);
        if (p != NULL)
            *p = '/';
        if (made != GW_OK)
            return errno != 0 ? errno : EIO;
        if (p == NULL)
            break;
    }
    return give(out, sb);
}

/* ---- an attempt ------------------------------------------------------------------------- */

static int short_of_descriptors(int sys)
{
    return sys == EMFILE || sys == ENFILE;
}

/* Undoes what jobs_spawn made for an attempt that does not run (its
 * descriptors closed first: removing the tree needs some). */
static void undo(struct jobs_attempt *a, struct spawn_fds *fds)
{
    close_fds(fds);
    jobs_log_close(a->log_fd);
    a->log_fd = -1;
    jobs_spawn_remove_tree(a->work_dir);
}

int jobs_spawn(struct jobs_attempt *a, const struct gw_config *cfg, const struct jobs_sandbox *sb,
               const json_t *job, jobs_spawn_commit_fn commit, void *ctx, struct gw_err *err)
{
    struct spawn_plan plan;
    struct spawn_fds fds = {-1, -1, -1, -1};
    char output_dir[PATH_MAX], dir[PATH_MAX];
    path_join(dir, sizeof(dir), cfg->local_root, "work");
    path_join(a->work_dir, sizeof(a->work_dir), dir, a->job_id);
    output_dir_of(output_dir, sizeof(output_dir), job, sb);
    /* Descriptors first: when they run short, nothing else was made. */
    int sys = plan_build(&plan, cfg, sb, a, job, output_dir) != GW_OK ? ENOMEM : 0;
    if (sys == 0)
        sys = open_fds(&fds, &plan);
    if (sys == 0)
        sys = make_work_dir(a, sb);
    if (sys == 0)
        sys = make_output_dir(output_dir, sb);
    /* The log opens even so: it says why the attempt did not start. */
    if (!short_of_descriptors(sys) &&
        jobs_log_open(&a->log_fd, cfg->local_root, a->job_id, NULL) != GW_OK && sys == 0)
        sys = errno != 0 ? errno : EIO;
    int rc;
    if (short_of_descriptors(sys)) {
        rc = gw_err_set(err, GW_EUNAVAIL, "cannot start attempt %d now: %s", a->attempt,
                        strerror(sys));
        undo(a, &fds);
    } else if ((rc = commit(ctx, a)) != GW_OK) {
        undo(a, &fds);
    } else if (sys == 0 && (sys = fork_attempt(a, &plan, &fds)) == 0) {
        rc = GW_OK;
    } else {
        char why[300];
        gw_fmt(why, sizeof(why), "cannot start attempt %d: %s", a->attempt, strerror(sys));
        (void)jobs_log_note(a->log_fd, "%s", why);
        undo(a, &fds);
        rc = gw_err_public(err, sys == ENOMEM ? GW_ENOMEM : GW_EIO, "%s", why);
    }
    close_fds(&fds);
    plan_dispose(&plan);
    return rc;
}
