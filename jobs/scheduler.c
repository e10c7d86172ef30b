/*
 * scheduler.c — the local executor's first-in first-out queue and the
 * capacity fit (scheduler.h).
 *
 * The fit is arithmetic on what the running attempts hold; GPU slots are a
 * bit mask, the lowest free slots first. The queue itself is rows in
 * PostgreSQL (db/local.h): intake moves claimed outbox submits into it and
 * the head is read back from it, so two executors never start one job. What
 * happens to a head that fits (marking it RUNNING, forking) is the
 * executor's.
 */
#include "jobs/scheduler.h"

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "common/time.h"
#include "db/local.h"
#include "db/outbox.h"

#include "common/poison.h"

enum { INTAKE_BATCH = 64 };

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static int popcount64(uint64_t v)
{
    int n = 0;
    for (; v != 0; v &= v - 1)
        n++;
    return n;
}

/* ---- the fit ---------------------------------------------------------------- */

void jobs_sched_ask(struct jobs_ask *out, const json_t *job)
{
    out->vcpus = jint(job, "vcpus");
    out->memory_mib = jint(job, "memory");
    out->gpus = jint(job, "gpus");
}

int jobs_sched_misfits(const struct jobs_resources *cap, const struct jobs_ask *ask,
                       struct jobs_executor_misfit out[3])
{
    static const char *const field[] = {"vcpus", "memory", "gpus"};
    static const char *const unit[] = {"vCPUs", "MiB of memory", "GPUs"};
    const long long want[] = {ask->vcpus, ask->memory_mib, ask->gpus};
    const long long have[] = {cap->vcpus, cap->memory_mib, cap->gpus};
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (want[i] > have[i])
            out[n++] = (struct jobs_executor_misfit){field[i], unit[i], want[i], have[i]};
    return n;
}

void jobs_sched_misfit_reason(char *out, size_t outlen, const struct jobs_resources *cap,
                              const struct jobs_ask *ask)
{
    struct jobs_executor_misfit m[3];
    out[0] = '\0';
    if (jobs_sched_misfits(cap, ask, m) > 0)
        gw_fmt(out, outlen, "the job asks for %lld %s; this machine offers %lld", m[0].want,
               m[0].unit, m[0].have);
}

int jobs_sched_fits(const struct jobs_sched *s, const struct jobs_ask *ask)
{
    return s->used_vcpus + ask->vcpus <= s->cap.vcpus &&
           s->used_memory_mib + ask->memory_mib <= s->cap.memory_mib &&
           popcount64(s->used_gpus) + ask->gpus <= s->cap.gpus;
}

void jobs_sched_take(struct jobs_grant *out, struct jobs_sched *s, const struct jobs_ask *ask)
{
    out->vcpus = ask->vcpus;
    out->memory_mib = ask->memory_mib;
    out->gpu_mask = 0;
    out->visible[0] = '\0';
    size_t off = 0;
    long long n = ask->gpus;
    for (int i = 0; i < s->cap.gpus && n > 0; i++) {
        if (s->used_gpus & ((uint64_t)1 << i))
            continue;
        out->gpu_mask |= (uint64_t)1 << i;
        n--;
        int w = snprintf(out->visible + off, sizeof(out->visible) - off, "%s%s", off > 0 ? "," : "",
                         s->cap.gpu_names[i]);
        if (w > 0 && (size_t)w < sizeof(out->visible) - off)
            off += (size_t)w;
    }
    s->used_gpus |= out->gpu_mask;
    s->used_vcpus += out->vcpus;
    s->used_memory_mib += out->memory_mib;
}

void jobs_sched_release(struct jobs_sched *s, const struct jobs_grant *g)
{
    s->used_vcpus -= g->vcpus;
    s->used_memory_mib -= g->memory_mib;
    s->used_gpus &= ~g->gpu_mask;
}

int jobs_sched_gpus_used(const struct jobs_sched *s)
{
    return popcount64(s->used_gpus);
}

/* ---- the queue ---------------------------------------------------------------- */

/* Puts one claimed submit into node's queue, or fails it when it can never
 * run here. */
static void accept_one(const struct jobs_sched *s, struct jobs_reports *r, const char *node,
                       const struct db_outbox_item *it)
{
    struct jobs_ask ask;
    jobs_sched_ask(&ask, it->job);
    char why[256];
    jobs_sched_misfit_reason(why, sizeof(why), &s->cap, &ask);
    char reason[600];
    if (why[0] == '\0')
        gw_fmt(reason, sizeof(reason), "waiting for local resources on %s", node);
    else
        gw_fmt(reason, sizeof(reason), "cannot run locally: %s", why);
    struct db_job_event ev =
        jobs_report_event(r->app, it->job_id, why[0] == '\0' ? "RUNNABLE" : "FAILED", reason);
    if (why[0] != '\0')
        ev.stopped_ms = gw_now_ms();
    int accepted = 0;
    struct gw_err err = {0};
    if (db_local_accept(&accepted, r->app->pool, it, node, &ev, &err) != GW_OK)
        GW_LOG_WARN("local job %s: accepting it failed: %s", it->job_id, err.msg);
    else if (accepted && why[0] != '\0')
        GW_LOG_WARN("local job %s %s", it->job_id, reason);
}

int jobs_sched_intake(const struct jobs_sched *s, struct jobs_reports *r, const char *node)
{
    for (int n = 0; n < INTAKE_BATCH; n++) {
        struct db_outbox_item it;
        struct gw_err err = {0};
        int rc = db_outbox_claim(&it, r->app->pool, "{local}", (int)r->app->cfg->dispatch_lease_s,
                                 0, &err);
        if (rc == GW_ENOTFOUND)
            return GW_OK;
        if (rc != GW_OK) {
            GW_LOG_DEBUG("local executor: %s", err.msg);
            return rc;
        }
        accept_one(s, r, node, &it);
        db_outbox_item_dispose(&it);
    }
    return GW_OK;
}

int jobs_sched_head(json_t **job, const struct jobs_sched *s, struct jobs_reports *r,
                    const char *node, struct gw_err *err)
{
    *job = NULL;
    json_t *head = NULL;
    int rc = db_local_head(&head, r->app->pool, node, err);
    if (rc != GW_OK)
        return rc;
    if (head == NULL)
        return GW_ENOTFOUND;
    struct jobs_ask ask;
    jobs_sched_ask(&ask, head);
    char why[256];
    jobs_sched_misfit_reason(why, sizeof(why), &s->cap, &ask);
    if (why[0] != '\0') { /* the machine shrank since it was accepted */
        char reason[300];
        gw_fmt(reason, sizeof(reason), "cannot run locally: %s", why);
        struct db_job_event ev =
            jobs_report_event(r->app, gw_json_str(head, "id"), "FAILED", reason);
        ev.stopped_ms = gw_now_ms();
        (void)jobs_report_end(r, &ev, 0);
        json_decref(head);
        return GW_EINVAL;
    }
    if (!jobs_sched_fits(s, &ask)) {
        json_decref(head);
        return GW_EUNAVAIL;
    }
    *job = head;
    return GW_OK;
}
