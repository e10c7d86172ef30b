/*
 * supervise.h — watching the local executor's running attempts until they
 * end, and what their end means for the job.
 *
 * Each tick the supervisor copies what attempts wrote into their job's log,
 * line by line with the time; stops an attempt whose job timed out or was
 * cancelled, or when the gateway stops (SIGTERM to its entrypoint; after
 * MLGW_LOCAL_TERM_GRACE + 5 s SIGKILL to its sandbox's PID namespace, or
 * without the sandbox to every process carrying its JOB_ID); reaps the ones
 * that ended, kills whatever they left running, and reports
 * the job's end (or its next attempt) through report.h. At the start it
 * stops what a crashed gateway left running and retries or fails those jobs
 * ("gateway restarted"). Starting attempts is spawn.h's; the queue is
 * scheduler.h's.
 *
 * Thread-safety: the executor's thread only (and jobs_executor_stop once
 * that thread has ended).
 */
#ifndef MLGW_JOBS_SUPERVISE_H
#define MLGW_JOBS_SUPERVISE_H

#include "common/err.h"
#include "db/pool.h"
#include "jobs/report.h"
#include "jobs/scheduler.h"
#include "jobs/spawn.h"

enum {
    JOBS_KILL_MARGIN_S = 5, /* after the entrypoint's own grace, SIGKILL the session */
};

/* What an attempt's end means for its job. */
struct jobs_end {
    const char *status; /* static: SUCCEEDED, FAILED, CANCELLED, or RUNNABLE to run again */
    int requeue;        /* 1 with RUNNABLE: the job goes to the back of the queue */
    int exit_code;      /* 128 + the signal when a signal ended it */
    char how[64];       /* "exited with code 1", "was killed by signal 9" */
    char reason[400];   /* the job's status reason */
};

/* Maps a's waitpid status, its stop request, and the attempts it has left
 * to the job's end. A timed-out job is not retried (as on AWS Batch); an
 * attempt that exits 0 during shutdown succeeded. Pure. */
void jobs_supervise_end(struct jobs_end *out, const struct jobs_attempt *a, int wstatus);

/* Adds a, just started, to the running attempts and starts its timeout. */
void jobs_supervise_add(struct jobs_attempt **running, struct jobs_attempt *a);

/* Asks a to stop (SIGTERM to its entrypoint; SIGKILL to all of its
 * processes grace_s + 5 s later), saying why in the job's log. Once per
 * attempt: a later call is a no-op. */
void jobs_supervise_stop(struct jobs_attempt *a, enum jobs_stop why, long long grace_s);

/* Stops the attempts past their timeout; SIGKILLs, once a second, those
 * still running after their grace. */
void jobs_supervise_enforce(struct jobs_attempt *running, long long grace_s);

/* Stops the running attempts whose job has ended meanwhile in the database
 * (a user cancelled it). GW_OK, GW_ENOMEM, or the database's code. */
int jobs_supervise_cancel_ended(struct jobs_attempt *running, struct db_pool *pool,
                                long long grace_s);

/* Copies new output to the logs and collects the attempts that ended: each
 * one's leftover processes are killed, its end reported, its resources
 * released in s, its work directory removed, and it is freed. Returns how
 * many ended. */
int jobs_supervise_reap(struct jobs_attempt **running, struct jobs_sched *s,
                        struct jobs_reports *r);

/* Frees the attempts that would not stop (logged; the next start deals
 * with their jobs), leaving their processes and work directories. */
void jobs_supervise_abandon(struct jobs_attempt **running);

/* Crash recovery: for each job node had running when its last gateway
 * stopped, kills what is left of the attempt (waiting up to 2 s) and
 * reports the job RUNNABLE (attempts left) or FAILED; then frees the leases
 * of local submits a crashed gateway may hold. The caller holds the lock of
 * node's root. GW_OK, or the database's code (nothing was done past it: try
 * again later). */
int jobs_supervise_recover(struct jobs_reports *r, const char *node, struct gw_err *err);

#endif
