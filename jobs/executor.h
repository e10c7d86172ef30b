/*
 * executor.h — the local executor, dispatch "local": jobs run on this
 * machine through the same job entrypoint as the containers.
 *
 * One thread accepts local submits from the outbox into a first-in
 * first-out queue (RUNNABLE), starts the head whenever its vCPUs, memory
 * and GPUs fit what is free, supervises the attempts (timeout, cancel,
 * retries, per-job log files) and reports every state change through
 * mlgw_apply_job_event with source "local". Each attempt runs in the job
 * sandbox (sandbox.h: bubblewrap, a user that is not the gateway's, PID and
 * mount namespaces of its own); a restarted gateway stops what a crashed one
 * left behind before it retries or fails those jobs ("gateway restarted").
 *
 * Its parts, internal to jobs/: scheduler.h (the queue and the fit),
 * spawn.h (starting an attempt), sandbox.h (the job sandbox), supervise.h
 * (running attempts and their ends), resources.h (the machine), report.h
 * (recording ends) and joblog.h (the per-job log files).
 *
 * Thread-safety: start and stop from one thread; capacity, misfits and
 * usage from any thread while the executor runs. The executor is owned by
 * whoever started it and freed by jobs_executor_stop.
 */
#ifndef MLGW_EXECUTOR_H
#define MLGW_EXECUTOR_H

#include "jobs/app.h"

struct jobs_executor;

struct jobs_executor_capacity {
    long long vcpus, memory_mib, gpus;
};

/* Takes the lock of cfg->local_root (one executor per root), makes the job
 * sandbox ready (sandbox.h), detects the machine's resources and starts the
 * thread. GW_ECONFLICT when another process holds the root; GW_EUNAVAIL when
 * no job sandbox can be had here and MLGW_LOCAL_SANDBOX is not off (err is
 * one line saying why and how to fix it). */
int jobs_executor_start(struct jobs_executor **out, struct jobs_app *app, struct gw_err *err);

/* What jobs may ask of this executor at most. */
void jobs_executor_capacity(const struct jobs_executor *e, struct jobs_executor_capacity *out);

/* The resources a job asks for beyond what this executor has at all, in
 * the order vcpus, memory, gpus; returns how many (0: it fits an idle
 * machine). */
struct jobs_executor_misfit {
    const char *field; /* the job request's field */
    const char *unit;  /* "vCPUs", "MiB of memory", "GPUs" */
    long long want, have;
};
int jobs_executor_misfits(const struct jobs_executor *e, long long vcpus, long long memory_mib,
                          long long gpus, struct jobs_executor_misfit out[3]);

/* What the running attempts hold now (for /metrics; any thread). */
struct jobs_executor_usage {
    long long vcpus, memory_mib, gpus;
    int running;
};
void jobs_executor_usage(struct jobs_executor *e, struct jobs_executor_usage *out);

/* Stops accepting work, sends SIGTERM to running attempts, waits up to
 * MLGW_LOCAL_TERM_GRACE (+5 s) for them, records how they ended (retried at
 * the next start while attempts remain), and releases the root. NULL: no-op. */
void jobs_executor_stop(struct jobs_executor *e);

#endif
