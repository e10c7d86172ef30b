/*
 * scheduler.h — the local executor's queue and what fits the machine.
 *
 * The database is the queue: local submits are taken from the outbox into
 * this executor's first-in first-out queue (jobs_sched_intake), and the
 * head starts only when its vCPUs, memory and GPUs fit what the running
 * attempts leave free (jobs_sched_head); a job that asks for more than the
 * machine has at all fails at once instead (a misfit). struct jobs_sched
 * counts what running attempts hold and hands out GPU slots. Starting an
 * attempt is spawn.h's; this module never forks.
 *
 * Thread-safety: a struct jobs_sched belongs to the executor's thread; its
 * cap is fixed once the thread runs, so other threads may read cap alone.
 */
#ifndef MLGW_JOBS_SCHEDULER_H
#define MLGW_JOBS_SCHEDULER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "jobs/executor.h"
#include "jobs/report.h"
#include "jobs/resources.h"

/* What a job asks for: its "vcpus", "memory" (MiB) and "gpus". */
struct jobs_ask {
    long long vcpus, memory_mib, gpus;
};

/* What one attempt holds while it runs. */
struct jobs_grant {
    long long vcpus, memory_mib;
    uint64_t gpu_mask;                               /* bit i: GPU slot i */
    char visible[JOBS_MAX_GPUS * JOBS_GPU_NAME_MAX]; /* its CUDA_VISIBLE_DEVICES ("" none) */
};

struct jobs_sched {
    struct jobs_resources cap; /* the machine */
    long long used_vcpus, used_memory_mib;
    uint64_t used_gpus; /* bit i: GPU slot i is taken */
};

/* job's ask (missing fields count as 0). */
void jobs_sched_ask(struct jobs_ask *out, const json_t *job);

/* The resources ask wants beyond what cap has at all, in the order vcpus,
 * memory, gpus; returns how many (0: it fits an idle machine). Pure. */
int jobs_sched_misfits(const struct jobs_resources *cap, const struct jobs_ask *ask,
                       struct jobs_executor_misfit out[3]);

/* Why ask can never run on cap ("the job asks for 8 vCPUs; this machine
 * offers 4", the first misfit), or "" when it can. Pure. */
void jobs_sched_misfit_reason(char *out, size_t outlen, const struct jobs_resources *cap,
                              const struct jobs_ask *ask);

/* Whether ask fits what is free now. Pure. */
int jobs_sched_fits(const struct jobs_sched *s, const struct jobs_ask *ask);

/* Counts ask as held by a new attempt and gives it the lowest free GPU
 * slots (the caller checked jobs_sched_fits). */
void jobs_sched_take(struct jobs_grant *out, struct jobs_sched *s, const struct jobs_ask *ask);

/* Frees what g held. */
void jobs_sched_release(struct jobs_sched *s, const struct jobs_grant *g);

/* How many GPU slots are taken. */
int jobs_sched_gpus_used(const struct jobs_sched *s);

/* Takes up to 64 local submits from the outbox into node's queue: each
 * becomes RUNNABLE ("waiting for local resources on <node>"), or FAILED when
 * it can never run on s->cap. GW_OK when the outbox has no more of them or
 * the batch is done; otherwise the claim's code (logged at debug level).
 * A job whose acceptance fails is logged and left to the outbox's retry. */
int jobs_sched_intake(const struct jobs_sched *s, struct jobs_reports *r, const char *node);

/*
 * Looks at the head of node's queue:
 *   GW_OK        *job (new: json_decref) is the head and fits what is free now;
 *   GW_EINVAL    the head can never run here (the machine shrank since it was
 *                accepted): it has been reported FAILED; look again;
 *   GW_EUNAVAIL  the head waits for room (first in, first out);
 *   GW_ENOTFOUND the queue is empty;
 *   otherwise    the database's code, with err.
 * *job is NULL unless GW_OK.
 */
int jobs_sched_head(json_t **job, const struct jobs_sched *s, struct jobs_reports *r,
                    const char *node, struct gw_err *err);

#endif
