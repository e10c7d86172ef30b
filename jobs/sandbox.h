/*
 * sandbox.h — the job sandbox of local attempts: bubblewrap (bwrap) runs
 * each attempt as a user that is not the gateway's, in PID, mount, IPC and
 * UTS namespaces of its own, with a file system narrowed to what the job
 * needs (API.md, "Jobs are untrusted code").
 *
 * The job's process 1 is the entrypoint itself (--as-pid-1): when it ends,
 * the kernel ends every process of the namespace, whatever session or
 * environment they made for themselves; --die-with-parent ends it with the
 * gateway. Inside: /usr (and the /lib*, /bin, /sbin links) and a few files
 * of /etc read-only, a /proc of its own, a minimal /dev (the NVIDIA devices
 * for a job with GPUs), /sys read-only, the input directory and the
 * entrypoint read-only, the interpreter's environment read-only, the
 * outputs jobs published read-only (a job reads another's checkpoint, as it
 * would on S3), and writable: the attempt's work directory, its own output
 * directory and the model cache; /tmp is the attempt's own. The network is the host's.
 *
 * Running as root, the gateway has bwrap drop to MLGW_LOCAL_SANDBOX_USER
 * through setpriv; running unprivileged, bwrap maps the job to uid 65534 in
 * a user namespace of its own. The job's environment never appears in an
 * argument list nor in the environment of bwrap or setpriv: the entrypoint
 * reads it from descriptor JOBS_SANDBOX_ENV_FD (MLGW_ENV_FD).
 *
 * This module builds command lines, finds programs and the namespace's
 * process 1, and probes at start; it forks nothing for an attempt (spawn.c
 * does) and never signals one (supervise.c does).
 *
 * Thread-safety: jobs_sandbox_init and _dispose from one thread; a ready
 * struct jobs_sandbox is only read afterwards, from any thread.
 */
#ifndef MLGW_JOBS_SANDBOX_H
#define MLGW_JOBS_SANDBOX_H

#include <limits.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/err.h"

enum {
    JOBS_SANDBOX_ENV_FD = 3,               /* the descriptor the job's environment is read from */
    JOBS_SANDBOX_NOBODY = 65534,           /* the uid and gid inside an unprivileged sandbox */
    JOBS_SANDBOX_NPROC = 4096,             /* RLIMIT_NPROC of an attempt */
    JOBS_SANDBOX_NOFILE = 65536,           /* RLIMIT_NOFILE of an attempt at most */
    JOBS_SANDBOX_DATA_HEADROOM_MIB = 1024, /* RLIMIT_DATA: 2 x memory + this */
};

/* A growable NULL-terminated list of strings (new ones: jobs_strv_dispose). */
struct jobs_strv {
    char **v;
    size_t n, cap;
    int failed; /* an allocation failed: the list is incomplete */
};

/* Appends a copy of s (or the printf-style text); failures set failed. */
void jobs_strv_add(struct jobs_strv *sv, const char *s);
void jobs_strv_addf(struct jobs_strv *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void jobs_strv_dispose(struct jobs_strv *sv);

struct jobs_sandbox {
    int on;      /* 0: MLGW_LOCAL_SANDBOX=off: attempts run as the gateway's user */
    int as_root; /* the gateway is root: setpriv drops each attempt to uid/gid */
    uid_t uid;   /* the job's user outside (as_root), else JOBS_SANDBOX_NOBODY inside */
    gid_t gid;
    char bwrap[PATH_MAX], setpriv[PATH_MAX];
    struct jobs_strv base; /* bwrap and the options every attempt shares */
};

/*
 * Makes sb ready for cfg: with MLGW_LOCAL_SANDBOX=off, sb->on = 0 and GW_OK.
 * Otherwise finds bwrap (MLGW_LOCAL_BWRAP), and when the gateway is root,
 * setpriv and MLGW_LOCAL_SANDBOX_USER; then runs one empty sandbox to prove
 * it can be had. GW_EUNAVAIL when it cannot, err then being one line that
 * says why and how to fix it; GW_ENOMEM. The caller disposes sb either way.
 */
int jobs_sandbox_init(struct jobs_sandbox *sb, const struct gw_config *cfg, struct gw_err *err);
void jobs_sandbox_dispose(struct jobs_sandbox *sb);

/* What one attempt sees (all absolute paths, borrowed). */
struct jobs_sandbox_attempt {
    const char *job_id;
    const char *work_dir;    /* writable; its tmp/ is also the job's /tmp */
    const char *outputs_dir; /* read-only: what jobs published (<root>/output), as on S3 */
    const char *output_dir;  /* writable, below it; NULL: none (outputs go to S3) */
    const char *input_dir;   /* read-only */
    const char *cache_dir;   /* writable (MODEL_CACHE_DIR) */
    const char *entrypoint;  /* read-only */
    const char *python;      /* the interpreter, found (jobs_sandbox_find) */
    const char *ro_files[3]; /* more read-only files (CA bundles, AWS config); NULL ends */
    int gpus;                /* > 0: the NVIDIA devices are there */
};

/* Appends to out the whole command of an attempt, the job's args aside:
 * bwrap, its options, [setpriv ...], the interpreter and the entrypoint.
 * Reads /dev for a job with GPUs. Failures set out->failed. */
void jobs_sandbox_command(struct jobs_strv *out, const struct jobs_sandbox *sb,
                          const struct jobs_sandbox_attempt *at);

/* The limits of an attempt of memory_mib MiB: RLIMIT_DATA, RLIMIT_NPROC,
 * RLIMIT_NOFILE (never above hard_nofile, the gateway's own) and RLIMIT_CORE
 * (0), in out[0..3] with their resources in res[0..3]. Pure. */
void jobs_sandbox_limits(int res[4], struct rlimit out[4], long long memory_mib,
                         rlim_t hard_nofile);

/* Finds name as execvp would (PATH when it has no '/'): its absolute path
 * into out. GW_ENOTFOUND when there is no such executable. */
int jobs_sandbox_find(char *out, size_t outlen, const char *name);

/* The host pid of the namespace's process 1 of the sandbox whose bwrap is
 * pid (the entrypoint), or 0 while it has none (yet, or any more). */
pid_t jobs_sandbox_init_pid(pid_t bwrap);

#endif
