/*
 * sandbox.c — the job sandbox's command lines (sandbox.h).
 *
 * The options every attempt shares (namespaces, the system directories, the
 * few files of /etc a Python job needs, /proc, /dev, /sys) are built once,
 * at the executor's start, and proven by running `true` in them; each
 * attempt adds its own directories, bound at the same paths as outside, and
 * the directories above them (0755, so that the job's user can reach them).
 * Nothing here forks an attempt, reads a job's environment or signals.
 */
#define _GNU_SOURCE /* pipe2 */

#include "jobs/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "jobs/spawn.h"

#include "common/poison.h"

static const char sandbox_path[] = "/usr/local/bin:/usr/bin:/bin";

/* ---- string lists ---------------------------------------------------------------- */

void jobs_strv_add(struct jobs_strv *sv, const char *s)
{
    if (sv->failed)
        return;
    if (sv->n + 2 > sv->cap) {
        size_t cap = sv->cap == 0 ? 64 : sv->cap * 2;
        char **v = realloc(sv->v, cap * sizeof(*v));
        if (v == NULL) {
            sv->failed = 1;
            return;
        }
        sv->v = v;
        sv->cap = cap;
    }
    char *copy = strdup(s);
    if (copy == NULL) {
        sv->failed = 1;
        return;
    }
    sv->v[sv->n++] = copy;
    sv->v[sv->n] = NULL;
}

void jobs_strv_addf(struct jobs_strv *sv, const char *fmt, ...)
{
    char text[PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(text)) {
        sv->failed = 1;
        return;
    }
    jobs_strv_add(sv, text);
}

void jobs_strv_dispose(struct jobs_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    memset(sv, 0, sizeof(*sv));
}

/* ---- paths ------------------------------------------------------------------------ */

/* Directories the sandbox shows read-only as they are. */
static const char *const system_dirs[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                          "/lib32", "/lib64", "/libx32"};

/* Is path one of the system directories or below one? */
static int is_system(const char *path)
{
    for (size_t i = 0; i < GW_ARRAY_LEN(system_dirs); i++) {
        size_t len = strlen(system_dirs[i]);
        if (strncmp(path, system_dirs[i], len) == 0 && (path[len] == '\0' || path[len] == '/'))
            return 1;
    }
    return 0;
}

/* out = the directory part of path ("/" for "/x"). */
static void parent_of(char *out, size_t outlen, const char *path)
{
    gw_fmt(out, outlen, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash == out)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
}

/* The directories above path, each made 0755 (bwrap makes them 0700). */
static void add_parents(struct jobs_strv *out, const char *path)
{
    char dir[PATH_MAX];
    gw_fmt(dir, sizeof(dir), "%s", path);
    for (char *p = strchr(dir + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (!is_system(dir)) {
            jobs_strv_add(out, "--perms");
            jobs_strv_add(out, "0755");
            jobs_strv_add(out, "--dir");
            jobs_strv_add(out, dir);
        }
        *p = '/';
    }
}

/* path at the same place inside: how is --bind, --ro-bind or --ro-bind-try. */
static void add_bind(struct jobs_strv *out, const char *how, const char *path)
{
    if (strcmp(how, "--bind") != 0 && is_system(path))
        return; /* there already, read-only */
    add_parents(out, path);
    jobs_strv_add(out, how);
    jobs_strv_add(out, path);
    jobs_strv_add(out, path);
}

int jobs_sandbox_find(char *out, size_t outlen, const char *name)
{
    struct stat st;
    if (strchr(name, '/') != NULL) {
        char cwd[PATH_MAX] = "";
        if (name[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
            return GW_ENOTFOUND;
        gw_fmt(out, outlen, "%s%s%s", cwd, cwd[0] ? "/" : "", name);
        return stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0 ? GW_OK
                                                                                    : GW_ENOTFOUND;
    }
    const char *path = getenv("PATH");
    if (path == NULL || path[0] == '\0')
        path = sandbox_path;
    for (const char *p = path; *p != '\0';) {
        size_t len = strcspn(p, ":");
        if (len > 0 && p[0] == '/') {
            gw_fmt(out, outlen, "%.*s/%s", (int)len, p, name);
            if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
                return GW_OK;
        }
        p += len;
        if (*p == ':')
            p++;
    }
    return GW_ENOTFOUND;
}

/* Does dir hold an entry whose name starts with prefix? */
static int has_entry(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int found = 0;
    const struct dirent *de;
    while (!found && (de = readdir(d)) != NULL)
        found = strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return found;
}

/* The interpreter's environment, read-only: its venv (the directory above
 * its bin/ when that holds pyvenv.cfg) and the installation the venv (or
 * the interpreter itself) links to (the directory above the real file's
 * bin/ when that has lib/python*). Nothing else of their neighbours. */
static void add_python(struct jobs_strv *out, const char *python)
{
    char bin[PATH_MAX], venv[PATH_MAX], probe[PATH_MAX + 16], real[PATH_MAX], prefix[PATH_MAX];
    parent_of(bin, sizeof(bin), python);
    parent_of(venv, sizeof(venv), bin);
    gw_fmt(probe, sizeof(probe), "%s/pyvenv.cfg", venv);
    int is_venv = strcmp(venv, "/") != 0 && access(probe, F_OK) == 0;
    if (is_venv)
        add_bind(out, "--ro-bind", venv);
    if (realpath(python, real) == NULL)
        return;
    parent_of(bin, sizeof(bin), real);
    parent_of(prefix, sizeof(prefix), bin);
    gw_fmt(probe, sizeof(probe), "%s/lib", prefix);
    size_t vlen = strlen(venv);
    int inside_venv = is_venv && strncmp(prefix, venv, vlen) == 0 &&
                      (prefix[vlen] == '\0' || prefix[vlen] == '/');
    if (strcmp(prefix, "/") != 0 && !inside_venv && has_entry(probe, "python"))
        add_bind(out, "--ro-bind", prefix);
}

/* The NVIDIA device files, for a job with GPUs. */
static void add_gpus(struct jobs_strv *out)
{
    DIR *d = opendir("/dev");
    if (d == NULL)
        return;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "nvidia", 6) != 0)
            continue;
        jobs_strv_add(out, "--dev-bind-try");
        jobs_strv_addf(out, "/dev/%s", de->d_name);
        jobs_strv_addf(out, "/dev/%s", de->d_name);
    }
    closedir(d);
}

/* ---- the command of an attempt ----------------------------------------------------- */

/* setpriv, dropping to the job's user for good (as root only). */
static void add_drop(struct jobs_strv *out, const struct jobs_sandbox *sb)
{
    if (!sb->as_root)
        return;
    jobs_strv_add(out, sb->setpriv);
    jobs_strv_addf(out, "--reuid=%u", (unsigned)sb->uid);
    jobs_strv_addf(out, "--regid=%u", (unsigned)sb->gid);
    jobs_strv_add(out, "--clear-groups");
    jobs_strv_add(out, "--no-new-privs");
    jobs_strv_add(out, "--inh-caps=-all");
    jobs_strv_add(out, "--bounding-set=-all");
}

void jobs_sandbox_command(struct jobs_strv *out, const struct jobs_sandbox *sb,
                          const struct jobs_sandbox_attempt *at)
{
    for (size_t i = 0; i < sb->base.n; i++)
        jobs_strv_add(out, sb->base.v[i]);
    jobs_strv_add(out, "--setenv");
    jobs_strv_add(out, "JOB_ID");
    jobs_strv_add(out, at->job_id);
    /* /tmp first: the directories of what is bound below it are made in it. */
    jobs_strv_add(out, "--bind");
    jobs_strv_addf(out, "%s/tmp", at->work_dir);
    jobs_strv_add(out, "/tmp");
    add_bind(out, "--bind", at->work_dir);
    if (at->outputs_dir != NULL)
        add_bind(out, "--ro-bind", at->outputs_dir);
    if (at->output_dir != NULL)
        add_bind(out, "--bind", at->output_dir);
    add_bind(out, "--ro-bind", at->input_dir);
    add_bind(out, "--bind", at->cache_dir);
    add_bind(out, "--ro-bind", at->entrypoint);
    add_python(out, at->python);
    for (size_t i = 0; i < GW_ARRAY_LEN(at->ro_files) && at->ro_files[i] != NULL; i++)
        add_bind(out, "--ro-bind-try", at->ro_files[i]);
    if (at->gpus > 0)
        add_gpus(out);
    jobs_strv_add(out, "--chdir");
    jobs_strv_add(out, at->work_dir);
    jobs_strv_add(out, "--");
    add_drop(out, sb);
    jobs_strv_add(out, at->python);
    jobs_strv_add(out, at->entrypoint);
}

void jobs_sandbox_limits(int res[4], struct rlimit out[4], long long memory_mib, rlim_t hard_nofile)
{
    rlim_t data = ((rlim_t)memory_mib * 2 + JOBS_SANDBOX_DATA_HEADROOM_MIB) << 20;
    rlim_t nofile = hard_nofile < JOBS_SANDBOX_NOFILE ? hard_nofile : JOBS_SANDBOX_NOFILE;
    res[0] = RLIMIT_DATA;
    out[0] = (struct rlimit){data, data};
    res[1] = RLIMIT_NPROC;
    out[1] = (struct rlimit){JOBS_SANDBOX_NPROC, JOBS_SANDBOX_NPROC};
    res[2] = RLIMIT_NOFILE;
    out[2] = (struct rlimit){nofile, nofile};
    res[3] = RLIMIT_CORE;
    out[3] = (struct rlimit){0, 0};
}

pid_t jobs_sandbox_init_pid(pid_t bwrap)
{
    char path[64], text[64];
    gw_fmt(path, sizeof(path), "/proc/%d/task/%d/children", (int)bwrap, (int)bwrap);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    long pid = strtol(text, NULL, 10);
    return pid > 0 && pid <= INT_MAX ? (pid_t)pid : 0;
}

/* ---- the shared options and the probe ------------------------------------------------ */

/* Files of /etc a Python job needs: names, users, DNS, time, the loader,
 * certificates. Nothing else of /etc (the gateway's own configuration). */
static const char *const etc_files[] = {
    "passwd",      "group",           "nsswitch.conf", "hosts",           "host.conf",
    "resolv.conf", "gai.conf",        "localtime",     "timezone",        "ld.so.cache",
    "ld.so.conf",  "ld.so.conf.d",    "ssl",           "ca-certificates", "ca-certificates.conf",
    "pki",         "crypto-policies", "alternatives",  "services",        "protocols",
    "mime.types",  "os-release",
};

static void add_etc(struct jobs_strv *out)
{
    char path[300];
    for (size_t i = 0; i < GW_ARRAY_LEN(etc_files); i++) {
        gw_fmt(path, sizeof(path), "/etc/%s", etc_files[i]);
        jobs_strv_add(out, "--ro-bind-try");
        jobs_strv_add(out, path);
        jobs_strv_add(out, path);
    }
    DIR *d = opendir("/etc"); /* Debian's /etc/python3.x (sitecustomize) */
    const struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "python", 6) != 0)
            continue;
        gw_fmt(path, sizeof(path), "/etc/%s", de->d_name);
        jobs_strv_add(out, "--ro-bind-try");
        jobs_strv_add(out, path);
        jobs_strv_add(out, path);
    }
    if (d != NULL)
        closedir(d);
}

/* /usr, and /lib*, /bin, /sbin as links into it (merged /usr) or read-only. */
static void add_system(struct jobs_strv *out)
{
    jobs_strv_add(out, "--ro-bind");
    jobs_strv_add(out, "/usr");
    jobs_strv_add(out, "/usr");
    for (size_t i = 1; i < GW_ARRAY_LEN(system_dirs); i++) {
        const char *dir = system_dirs[i];
        struct stat st;
        char target[PATH_MAX];
        if (lstat(dir, &st) != 0)
            continue;
        ssize_t n = S_ISLNK(st.st_mode) ? readlink(dir, target, sizeof(target) - 1) : -1;
        if (n > 0) {
            target[n] = '\0';
            jobs_strv_add(out, "--symlink");
            jobs_strv_add(out, target);
        } else {
            jobs_strv_add(out, "--ro-bind");
            jobs_strv_add(out, dir);
        }
        jobs_strv_add(out, dir);
    }
}

static void build_base(struct jobs_sandbox *sb)
{
    struct jobs_strv *b = &sb->base;
    static const char *const fixed[] = {
        "--die-with-parent", "--new-session", "--as-pid-1",           "--unshare-pid",
        "--unshare-ipc",     "--unshare-uts", "--unshare-cgroup-try", "--clearenv",
    };
    jobs_strv_add(b, sb->bwrap);
    for (size_t i = 0; i < GW_ARRAY_LEN(fixed); i++)
        jobs_strv_add(b, fixed[i]);
    if (sb->as_root) {
        /* setpriv needs these three to drop to the job's user; it drops them too. */
        static const char *const caps[] = {"--cap-drop", "ALL",        "--cap-add", "CAP_SETUID",
                                           "--cap-add",  "CAP_SETGID", "--cap-add", "CAP_SETPCAP"};
        for (size_t i = 0; i < GW_ARRAY_LEN(caps); i++)
            jobs_strv_add(b, caps[i]);
    } else {
        jobs_strv_add(b, "--unshare-user");
        jobs_strv_add(b, "--uid");
        jobs_strv_addf(b, "%u", (unsigned)sb->uid);
        jobs_strv_add(b, "--gid");
        jobs_strv_addf(b, "%u", (unsigned)sb->gid);
    }
    static const char *const env[] = {"--setenv", "PATH",        sandbox_path,
                                      "--setenv", "MLGW_ENV_FD", "3"};
    for (size_t i = 0; i < GW_ARRAY_LEN(env); i++)
        jobs_strv_add(b, env[i]);
    add_system(b);
    add_etc(b);
    /* /dev/shm: POSIX semaphores and shared memory (multiprocessing, data loaders). */
    static const char *const rest[] = {"--ro-bind-try", "/sys",    "/sys",    "--proc",
                                       "/proc",         "--dev",   "/dev",    "--perms",
                                       "01777",         "--tmpfs", "/dev/shm"};
    for (size_t i = 0; i < GW_ARRAY_LEN(rest); i++)
        jobs_strv_add(b, rest[i]);
}

/* Runs `true` in the shared options; on failure why holds bwrap's first
 * line. GW_OK, GW_EUNAVAIL, GW_ENOMEM. */
static int probe(const struct jobs_sandbox *sb, char *why, size_t whylen)
{
    struct jobs_strv cmd = {0};
    for (size_t i = 0; i < sb->base.n; i++)
        jobs_strv_add(&cmd, sb->base.v[i]);
    jobs_strv_add(&cmd, "--");
    add_drop(&cmd, sb);
    jobs_strv_add(&cmd, "true");
    int pipefd[2] = {-1, -1};
    int rc = cmd.failed ? GW_ENOMEM : GW_EUNAVAIL;
    char *const envp[] = {NULL};
    pid_t pid = -1;
    if (!cmd.failed && pipe2(pipefd, O_CLOEXEC) == 0 && (pid = jobs_fork()) == 0) {
        if (dup2(pipefd[1], 2) < 0)
            _exit(126);
        execve(cmd.v[0], cmd.v, envp);
        _exit(127);
    }
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    why[0] = '\0';
    size_t got = 0;
    ssize_t n;
    while (pipefd[0] >= 0 && got + 1 < whylen &&
           (n = read(pipefd[0], why + got, whylen - 1 - got)) > 0)
        got += (size_t)n;
    why[got] = '\0';
    why[strcspn(why, "\n")] = '\0';
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = GW_OK;
    else if (why[0] == '\0')
        gw_fmt(why, whylen, "%s", pid < 0 ? strerror(errno) : "it exited with an error");
    jobs_strv_dispose(&cmd);
    return rc;
}

static const char off_hint[] = "or set MLGW_LOCAL_SANDBOX=off (development only)";

/* As root: the job's user, and setpriv to become it. */
static int find_user(struct jobs_sandbox *sb, const struct gw_config *cfg, struct gw_err *err)
{
    const struct passwd *pw = getpwnam(cfg->local_sandbox_user);
    if (pw == NULL || pw->pw_uid == 0)
        return gw_err_set(err, GW_EUNAVAIL,
                          "no job sandbox: user %s (MLGW_LOCAL_SANDBOX_USER) %s; create it "
                          "(useradd --system --no-create-home --shell /usr/sbin/nologin %s), %s",
                          cfg->local_sandbox_user, pw == NULL ? "does not exist" : "is root",
                          cfg->local_sandbox_user, off_hint);
    sb->uid = pw->pw_uid;
    sb->gid = pw->pw_gid;
    if (jobs_sandbox_find(sb->setpriv, sizeof(sb->setpriv), "setpriv") != GW_OK)
        return gw_err_set(err, GW_EUNAVAIL,
                          "no job sandbox: setpriv not found; install util-linux, %s", off_hint);
    return GW_OK;
}

int jobs_sandbox_init(struct jobs_sandbox *sb, const struct gw_config *cfg, struct gw_err *err)
{
    memset(sb, 0, sizeof(*sb));
    if (cfg->local_sandbox == 0)
        return GW_OK;
    sb->on = 1;
    sb->as_root = geteuid() == 0;
    sb->uid = JOBS_SANDBOX_NOBODY;
    sb->gid = JOBS_SANDBOX_NOBODY;
    if (jobs_sandbox_find(sb->bwrap, sizeof(sb->bwrap), cfg->local_bwrap) != GW_OK)
        return gw_err_set(err, GW_EUNAVAIL,
                          "no job sandbox: bwrap (MLGW_LOCAL_BWRAP=%s) not found; install "
                          "bubblewrap (apt-get install bubblewrap), %s",
                          cfg->local_bwrap, off_hint);
    int rc = sb->as_root ? find_user(sb, cfg, err) : GW_OK;
    if (rc != GW_OK)
        return rc;
    build_base(sb);
    if (sb->base.failed)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    char why[120];
    rc = probe(sb, why, sizeof(why));
    if (rc == GW_ENOMEM)
        return gw_err_set(err, rc, "out of memory");
    if (rc != GW_OK)
        return gw_err_set(err, rc, "no job sandbox: %s cannot make one here (%s); %s, %s",
                          sb->bwrap, why,
                          sb->as_root ? "check that bwrap and setpriv work as root"
                                      : "enable unprivileged user namespaces or run as root",
                          off_hint);
    return GW_OK;
}

void jobs_sandbox_dispose(struct jobs_sandbox *sb)
{
    jobs_strv_dispose(&sb->base);
}
