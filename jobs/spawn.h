/*
 * spawn.h — starting one attempt of a local job, and what an attempt is.
 *
 * An attempt runs the job entrypoint (MLGW_LOCAL_ENTRYPOINT, under
 * MLGW_LOCAL_PYTHON) with the job's args, in a fresh work directory
 * <root>/work/<job id> (output/ and tmp/ in it), in the job sandbox
 * (sandbox.h) unless MLGW_LOCAL_SANDBOX=off, with the job's environment:
 * the containers' variables, a short list of the gateway's own that are no
 * secrets, the operator's MLGW_LOCAL_JOB_AWS_* credentials, and JOB_ID.
 * Never the gateway's own AWS credentials, DATABASE_URL or MLGW_* secrets.
 * Sandboxed, the environment reaches the entrypoint through a descriptor,
 * and the attempt's processes end with its namespace; without the sandbox
 * every process of the attempt carries JOB_ID, by which it is found again
 * (supervise.h). stdout and stderr go to a pipe the supervisor reads into
 * the job's log. This module does not touch the database, the queue or the
 * attempt once it runs.
 *
 * Thread-safety: called from the executor's thread only (fork in a
 * threaded process: the child calls async-signal-safe functions alone).
 */
#ifndef MLGW_JOBS_SPAWN_H
#define MLGW_JOBS_SPAWN_H

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/err.h"
#include "jobs/sandbox.h"
#include "jobs/scheduler.h"

enum {
    JOBS_OUTPUT_LINE_MAX = 16384, /* bytes of one line of output; longer ones are split */
};

/* Why the gateway stops an attempt, if it does. */
enum jobs_stop { JOBS_STOP_NONE, JOBS_STOP_TIMEOUT, JOBS_STOP_CANCEL, JOBS_STOP_SHUTDOWN };

/* One attempt, from its start to its reaping (owned by the executor's list
 * of running attempts). */
struct jobs_attempt {
    struct jobs_attempt *next;
    char job_id[37];
    int attempt, max_attempts; /* attempt counts from 1 */
    long long timeout_s;       /* 0: none */
    struct jobs_grant grant;   /* what it holds of the machine */
    char work_dir[PATH_MAX];
    pid_t pid;          /* bwrap, or without the sandbox the entrypoint (its session) */
    int sandboxed;      /* its processes live in a PID namespace of their own */
    int term_pending;   /* SIGTERM asked for before the namespace had its process 1 */
    int out_fd, log_fd; /* its output pipe, the job's log; -1: closed */
    char line[JOBS_OUTPUT_LINE_MAX];
    size_t line_len;              /* output read but not yet a whole line */
    int64_t deadline_ns, kill_ns; /* monotonic; 0: none */
    enum jobs_stop stop;
};

/* The next attempt of job (its "attempts" + 1 of "max_attempts"), with
 * nothing open yet: *out is new (jobs_attempt_free). GW_ENOMEM. */
int jobs_attempt_new(struct jobs_attempt **out, const json_t *job);

/* Closes what a still has open and frees it; leaves its work directory and
 * its processes alone. NULL: no-op. */
void jobs_attempt_free(struct jobs_attempt *a);

/* Called by jobs_spawn once everything the attempt needs is open, just
 * before it forks: GW_OK lets it fork; any other code stops it (nothing is
 * left open or running, and jobs_spawn returns that code). */
typedef int (*jobs_spawn_commit_fn)(void *ctx, struct jobs_attempt *a);

/*
 * Starts a (from jobs_attempt_new, with its grant): makes a fresh work
 * directory (and, sandboxed, the output directory of a file:// output_uri),
 * opens the job's log (a->log_fd), the output pipe and the environment,
 * calls commit, and forks. On GW_OK a->pid and a->out_fd (non-blocking) are
 * set. Otherwise nothing is left open or running and the work directory is
 * gone:
 *   GW_EUNAVAIL  descriptors ran short (EMFILE, ENFILE) before commit, which
 *                was not called: the job is untouched; try again later;
 *   commit's code, when commit refused;
 *   GW_EIO, GW_ENOMEM  the attempt could not be started (a directory, the
 *                log, the pipe or fork failed), after commit: err says why
 *                in words for the job's owner ("cannot start attempt 2: No
 *                space left on device", public), also the log's last line.
 */
int jobs_spawn(struct jobs_attempt *a, const struct gw_config *cfg, const struct jobs_sandbox *sb,
               const json_t *job, jobs_spawn_commit_fn commit, void *ctx, struct gw_err *err);

/* fork() for a child that will exec: the gateway's signal handlers (a
 * SIGTERM starts its shutdown through a pipe the child still holds) never run
 * in the child. Every signal is blocked in the calling thread across the
 * fork; the child sets each to its default and unblocks them before
 * returning 0; the parent gets its mask back. Returns what fork() does. */
pid_t jobs_fork(void);

/* Makes cfg->local_root and its folders (input, output, logs, work) and the
 * model cache (cfg->cache_dir, else <root>/cache) where they are missing.
 * GW_EIO. */
int jobs_spawn_make_root(const struct gw_config *cfg, struct gw_err *err);

/* When sb drops to the jobs' user (the gateway runs as root): gives it the
 * model cache, and lets it through output/ and output/jobs/ (mode 0711) to
 * the job directories it owns. GW_EIO. */
int jobs_spawn_share_root(const struct gw_config *cfg, const struct jobs_sandbox *sb,
                          struct gw_err *err);

/* Empties <root>/work: what is there is a dead gateway's (the caller holds
 * the root's lock and runs nothing yet). */
void jobs_spawn_clear_work(const char *root);

/* Removes path and everything under it, not following links; errors are
 * ignored. */
void jobs_spawn_remove_tree(const char *path);

#endif
