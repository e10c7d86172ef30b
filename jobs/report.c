/*
 * report.c — the local executor's reports of job ends (report.h).
 *
 * A report the database does not take waits in a singly linked list, oldest
 * first, with fixed-size copies of its texts; it is retried at most once a
 * second and in order, so that a job's ends are recorded in the order they
 * happened. Does not decide what a job's end is, nor talk to processes.
 */
#include "jobs/report.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "db/local.h"

#include "common/poison.h"

/* A job's end (or return to the queue) the database has not taken yet. */
struct jobs_pending {
    struct jobs_pending *next;
    char job_id[37], status[16], reason[700];
    int exit_code, attempts, requeue;
    long long stopped_ms;
};

void jobs_reports_init(struct jobs_reports *r, struct jobs_app *app)
{
    r->app = app;
    r->head = NULL;
    r->tail = &r->head;
    r->last_flush_ns = 0;
}

struct db_job_event jobs_report_event(const struct jobs_app *app, const char *job_id,
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
    jobs_event_policy(&ev, app);
    return ev;
}

static int apply_end(const struct jobs_reports *r, const struct db_job_event *ev, int requeue)
{
    struct db_job_event_result res = {0};
    struct gw_err err = {0};
    int rc = db_local_finish(&res, r->app->pool, ev, requeue, &err);
    if (rc != GW_OK) {
        GW_LOG_WARN("local job %s: recording %s failed (kept, tried again): %s", ev->gateway_id,
                    ev->status, err.msg);
        return rc;
    }
    if (strcmp(res.result, "applied") == 0)
        GW_LOG_INFO("local job %s is %s: %s", ev->gateway_id, ev->status, ev->reason);
    return GW_OK;
}

int jobs_report_end(struct jobs_reports *r, const struct db_job_event *ev, int requeue)
{
    if (r->head == NULL && apply_end(r, ev, requeue) == GW_OK)
        return GW_OK;
    struct jobs_pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        GW_LOG_ERROR("local job %s: out of memory: %s is lost until a restart", ev->gateway_id,
                     ev->status);
        return GW_ENOMEM;
    }
    gw_fmt(p->job_id, sizeof(p->job_id), "%s", ev->gateway_id);
    gw_fmt(p->status, sizeof(p->status), "%s", ev->status);
    gw_fmt(p->reason, sizeof(p->reason), "%s", ev->reason ? ev->reason : "");
    p->exit_code = ev->exit_code;
    p->attempts = ev->attempts;
    p->stopped_ms = ev->stopped_ms;
    p->requeue = requeue;
    *r->tail = p;
    r->tail = &p->next;
    return GW_OK;
}

int jobs_reports_flush(struct jobs_reports *r, int now)
{
    int64_t t = gw_monotonic_ns();
    if (r->head == NULL)
        return GW_OK;
    if (!now && t - r->last_flush_ns < 1000000000LL)
        return GW_EUNAVAIL;
    r->last_flush_ns = t;
    while (r->head != NULL) {
        struct jobs_pending *p = r->head;
        struct db_job_event ev = jobs_report_event(r->app, p->job_id, p->status, p->reason);
        ev.exit_code = p->exit_code;
        ev.attempts = p->attempts;
        ev.stopped_ms = p->stopped_ms;
        int rc = apply_end(r, &ev, p->requeue);
        if (rc != GW_OK)
            return rc;
        r->head = p->next;
        if (r->head == NULL)
            r->tail = &r->head;
        free(p);
    }
    return GW_OK;
}

void jobs_report_attempt(const char *result)
{
    char labels[64];
    gw_fmt(labels, sizeof(labels), "result=\"%s\"", result);
    gw_metrics_add("mlgw_local_attempts_total", labels, 1);
}

void jobs_report_describe_metrics(void)
{
    gw_metrics_describe("mlgw_local_attempts_total", "counter",
                        "Local job attempts by how they ended.");
}

int jobs_reports_waiting(const struct jobs_reports *r)
{
    return r->head != NULL;
}

void jobs_reports_dispose(struct jobs_reports *r)
{
    for (struct jobs_pending *p = r->head, *next; p != NULL; p = next) {
        next = p->next;
        GW_LOG_ERROR("local job %s: %s could not be recorded; the next start treats the job as "
                     "interrupted",
                     p->job_id, p->status);
        free(p);
    }
    r->head = NULL;
    r->tail = &r->head;
}
