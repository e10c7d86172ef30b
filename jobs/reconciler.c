/*
 * reconciler.c — brings quiet AWS Batch jobs up to date (reconciler.h).
 *
 * Each run takes up to RECONCILE_BATCH non-terminal Batch jobs nobody has
 * heard of for a while, asks DescribeJobs about all of them in one call and
 * applies each answer as an ordinary job event (source "reconciler"), so
 * the same state machine and notification policy decide what changes. A job
 * Batch no longer knows is left alone (Batch keeps jobs about 7 days); a
 * failed call waits for the next run. It submits and cancels nothing.
 */
#include "jobs/reconciler.h"

#include <stdlib.h>
#include <string.h>

#include "aws/batch.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/worker.h"
#include "db/events.h"
#include "db/jobs.h"

#include "common/poison.h"

enum { RECONCILE_BATCH = 100 };

struct jobs_reconciler {
    struct jobs_app *app;
    struct aws_client *aws;
    struct gw_worker *worker;
};

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* The element of DescribeJobs' jobs with this jobId (borrowed), or NULL. */
static const json_t *find_job(const json_t *jobs, const char *batch_id)
{
    const json_t *found = NULL;
    size_t k;
    json_t *v;
    json_array_foreach(jobs, k, v)
    {
        if (gw_json_str(v, "jobId") != NULL && strcmp(gw_json_str(v, "jobId"), batch_id) == 0)
            found = v;
    }
    return found;
}

/* The job event DescribeJobs' bj says (strings borrowed from bj and the ids). */
static void batch_event(struct db_job_event *ev, const json_t *bj, const char *batch_id,
                        const char *gateway_id)
{
    const json_t *attempts = json_object_get(bj, "attempts");
    const json_t *last = json_array_get(attempts, json_array_size(attempts) - 1);
    const json_t *ctr = json_object_get(bj, "container");
    const json_t *ec = json_object_get(json_object_get(last, "container"), "exitCode");
    if (ec == NULL)
        ec = json_object_get(ctr, "exitCode");
    *ev = (struct db_job_event){
        .source = "reconciler",
        .batch_job_id = batch_id,
        .gateway_id = gateway_id,
        .status = gw_json_str(bj, "status"),
        .reason = gw_json_str(bj, "statusReason"),
        .exit_code = json_is_integer(ec) ? (int)json_integer_value(ec) : -1,
        .attempts = (int)json_array_size(attempts),
        .log_stream = gw_json_str(ctr, "logStreamName"),
        .started_ms = jint(bj, "startedAt"),
        .stopped_ms = jint(bj, "stoppedAt"),
        .vcpus = -1,
        .memory = -1,
        .gpus = -1,
    };
}

/* Applies what Batch says (jobs) to each stale row of res: (id, batch_job_id). */
static void apply_all(struct jobs_reconciler *r, PGresult *res, const json_t *jobs)
{
    struct gw_err err = {0};
    for (int i = 0; i < PQntuples(res); i++) {
        const char *batch_id = PQgetvalue(res, i, 1);
        const json_t *bj = find_job(jobs, batch_id);
        if (bj == NULL)
            continue; /* Batch forgot it (jobs are kept ~7 days): leave it to a human */
        struct db_job_event ev;
        batch_event(&ev, bj, batch_id, PQgetvalue(res, i, 0));
        jobs_event_policy(&ev, r->app);
        if (ev.status == NULL)
            continue;
        struct db_job_event_result out;
        if (db_job_event_apply(&out, r->app->pool, &ev, &err) == GW_OK &&
            strcmp(out.result, "applied") == 0)
            GW_LOG_INFO("reconciler: job %s is %s (AWS Batch %s)", out.job_id, out.status,
                        batch_id);
    }
}

static int reconcile_run(void *arg)
{
    struct jobs_reconciler *r = arg;
    PGresult *res = NULL;
    json_t *jobs = NULL;
    struct gw_err err = {0};
    if (gw_shutting_down())
        return 0;
    if (r->aws == NULL || db_jobs_stale_batch(&res, r->app->pool, r->app->cfg->reconcile_after_s,
                                              RECONCILE_BATCH, &err) != GW_OK)
        return 0;
    int n = PQntuples(res);
    if (n > 0) {
        const char *ids[RECONCILE_BATCH];
        for (int i = 0; i < n; i++)
            ids[i] = PQgetvalue(res, i, 1);
        struct aws_error aerr;
        if (aws_batch_describe_jobs(&jobs, r->aws, ids, (size_t)n, &aerr) != GW_OK)
            GW_LOG_WARN("reconciler: DescribeJobs failed: %s %s", aerr.code, aerr.message);
        else
            apply_all(r, res, jobs);
    }
    json_decref(jobs);
    PQclear(res);
    return 0;
}

int jobs_reconciler_start(struct jobs_reconciler **out, struct jobs_app *app,
                          struct aws_client *aws, struct gw_err *err)
{
    *out = NULL;
    struct jobs_reconciler *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    r->app = app;
    r->aws = aws;
    int rc = gw_worker_start(&r->worker, "reconciler", app->cfg->reconcile_interval_s * 1000,
                             reconcile_run, r);
    if (rc != GW_OK) {
        free(r);
        return gw_err_set(err, rc, "cannot start the reconciler's thread");
    }
    *out = r;
    return GW_OK;
}

void jobs_reconciler_stop(struct jobs_reconciler *r)
{
    if (r == NULL)
        return;
    gw_worker_stop(r->worker);
    free(r);
}
