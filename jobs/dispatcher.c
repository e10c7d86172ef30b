/*
 * dispatcher.c — turns outbox rows into AWS calls, exactly once.
 *
 * A claimed submit is leased and marked in doubt before AWS is called, so a
 * crash at any point leaves a row the next dispatcher finishes: it first
 * looks the job up by name (ListJobs, JOB_NAME), because SubmitJob has no
 * client token. Transient failures back off with full jitter while the job
 * stays QUEUED; permanent ones end in DISPATCH_FAILED. A token bucket keeps
 * SubmitJob under the account's rate limit. Its own connection LISTENs for
 * the outbox trigger so work starts the moment it commits. Cancellations
 * go to Batch from here too.
 *
 * What a job runs with (name, environment) is jobs/jobenv.c's; catching up
 * with quiet Batch jobs is jobs/reconciler.c's, started and stopped with the
 * dispatchers.
 */
#include "jobs/dispatcher.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/batch.h"
#include "aws/sns.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/worker.h"
#include "db/outbox.h"
#include "jobs/jobenv.h"
#include "jobs/listener.h"
#include "jobs/presence.h"
#include "jobs/reconciler.h"

#include "common/poison.h"

enum { MAX_WORKERS = 32 };

struct bucket {
    pthread_mutex_t mu;
    double tokens, rate;
    int64_t last_ns;
};

struct jobs_dispatcher {
    struct jobs_app *app;
    struct aws_client *aws;
    struct gw_worker *workers[MAX_WORKERS];
    int nworkers;
    struct jobs_reconciler *reconciler;
    struct jobs_listener *listener;
    struct bucket submit_rate;
    char targets[32]; /* "{batch,sns}" */
};

/* ---- rate ---------------------------------------------------------------- */

static void bucket_take(struct bucket *b)
{
    for (;;) {
        pthread_mutex_lock(&b->mu);
        int64_t now = gw_monotonic_ns();
        b->tokens += (double)(now - b->last_ns) / 1e9 * b->rate;
        if (b->tokens > b->rate)
            b->tokens = b->rate; /* at most one second's burst */
        b->last_ns = now;
        double wait_s = b->tokens >= 1 ? 0 : (1 - b->tokens) / b->rate;
        if (wait_s == 0)
            b->tokens -= 1;
        pthread_mutex_unlock(&b->mu);
        if (wait_s == 0)
            return;
        struct timespec ts = {(time_t)wait_s, (long)((wait_s - (double)(time_t)wait_s) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* ---- helpers --------------------------------------------------------------- */

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

/* Before the next try: full jitter over base * 2^(attempt-1), at most 5 min;
 * none when this gateway is stopping, so that another takes the job now. */
static long retry_delay_ms(const struct gw_config *cfg, int attempt)
{
    if (gw_shutting_down())
        return 0;
    return 100 + (long)gw_jitter_ms(cfg->dispatch_retry_base_ms, 300000, attempt);
}

static void count(const char *target, const char *result, const char *reason)
{
    char labels[160];
    gw_fmt(labels, sizeof(labels), "target=\"%s\",result=\"%s\",reason=\"%s\"", target, result,
           reason);
    gw_metrics_add("mlgw_dispatch_total", labels, 1);
}

/* ---- submit to Batch --------------------------------------------------- */

/* Finds a job we may already have submitted: *found is 1 and id holds its
 * Batch id when ListJobs knows the name. GW_OK, or aws_batch_list_jobs's code
 * (the answer is then unknown). */
static int lookup_by_name(int *found, char id[128], struct aws_client *aws, const char *queue,
                          const char *name, struct aws_error *err)
{
    json_t *jobs = NULL;
    struct aws_batch_list l = {.job_queue = queue, .job_name = name};
    *found = 0;
    int rc = aws_batch_list_jobs(&jobs, aws, &l, err);
    if (rc == GW_OK && json_array_size(jobs) > 0) {
        const char *jid = gw_json_str(json_array_get(jobs, 0), "jobId");
        if (jid != NULL) {
            gw_fmt(id, 128, "%s", jid);
            *found = 1;
        }
    }
    json_decref(jobs);
    return rc;
}

static void finish_failure(struct jobs_dispatcher *d, const struct db_outbox_item *it, int rc,
                           const struct aws_error *err)
{
    const struct gw_config *cfg = d->app->cfg;
    char reason[700];
    gw_fmt(reason, sizeof(reason), "%s: %s", err->code, err->message);
    struct gw_err derr = {0};
    int permanent = rc == GW_EUPSTREAM || rc == GW_EINVAL;
    if (!permanent && it->attempts >= cfg->dispatch_max_attempts) {
        char gave_up[800];
        gw_fmt(gave_up, sizeof(gave_up), "gave up after %d attempts: %s", it->attempts, reason);
        permanent = 1;
        gw_fmt(reason, sizeof(reason), "%s", gave_up);
    }
    if (permanent) {
        GW_LOG_WARN("job %s cannot be dispatched to %s: %s", it->job_id, it->target, reason);
        count(it->target, "failed", err->code);
        if (db_outbox_failed(d->app->pool, it, reason, &derr) != GW_OK)
            GW_LOG_WARN("job %s: recording the failure: %s", it->job_id, derr.msg);
        return;
    }
    long delay = retry_delay_ms(cfg, it->attempts);
    GW_LOG_INFO("job %s: dispatch attempt %d failed (%s); retrying in %ld ms%s", it->job_id,
                it->attempts, reason, delay, err->ambiguous ? " after a look-up by name" : "");
    count(it->target, "retry", err->code);
    if (db_outbox_retry_later(d->app->pool, it, reason, err->ambiguous, delay, &derr) != GW_OK)
        GW_LOG_WARN("job %s: scheduling the retry: %s", it->job_id, derr.msg);
}

static void record_submitted(struct jobs_dispatcher *d, const struct db_outbox_item *it,
                             const char *status, const char *batch_id, const char *message_id)
{
    int cancelled = 0;
    struct gw_err derr = {0};
    int rc = db_outbox_submitted(&cancelled, d->app->pool, it, status, batch_id, message_id, &derr);
    if (rc != GW_OK) {
        /* The lease ran out or the database failed: the row stays in doubt
         * and the next dispatcher finds our job by name. */
        GW_LOG_WARN("job %s was handed on (%s) but recording it failed: %s", it->job_id,
                    batch_id ? batch_id : message_id, derr.msg);
        return;
    }
    count(it->target, "ok", "none");
    GW_LOG_INFO("job %s %s (%s)", it->job_id, status, batch_id ? batch_id : message_id);
    if (cancelled)
        GW_LOG_INFO("job %s was cancelled while it was submitted: cancelling %s at AWS", it->job_id,
                    batch_id);
}

static void submit_batch(struct jobs_dispatcher *d, const struct db_outbox_item *it)
{
    const struct gw_config *cfg = d->app->cfg;
    const json_t *job = it->job;
    int gpu = strcmp(gw_json_str(job, "compute_type"), "gpu") == 0;
    const char *queue = gpu ? cfg->gpu_job_queue : cfg->cpu_job_queue;
    const char *def = gpu ? cfg->gpu_job_definition : cfg->cpu_job_definition;
    struct aws_error err = {0};
    if (d->aws == NULL || queue == NULL || def == NULL) {
        gw_fmt(err.code, sizeof(err.code), "%s", "NotConfigured");
        gw_fmt(err.message, sizeof(err.message),
               "no AWS Batch queue or job definition for %s jobs on this gateway",
               gw_json_str(job, "compute_type"));
        finish_failure(d, it, GW_EINVAL, &err);
        return;
    }
    char name[160], batch_id[128] = "", arn[512];
    jobs_batch_job_name(name, gw_json_str(json_object_get(job, "metadata"), "project"),
                        gw_json_str(job, "id"));
    int rc, found = 0;
    if (it->was_in_doubt) {
        rc = lookup_by_name(&found, batch_id, d->aws, queue, name, &err);
        if (rc == GW_OK && found) {
            GW_LOG_INFO("job %s was already submitted as %s (found by name)", it->job_id, batch_id);
            record_submitted(d, it, "SUBMITTED", batch_id, NULL);
            return;
        }
        if (rc != GW_OK) { /* cannot tell: never submit blindly, try again later */
            err.ambiguous = 1;
            finish_failure(d, it, GW_EUNAVAIL, &err);
            return;
        }
    }
    json_t *env = jobs_environment(cfg, job, aws_client_region(d->aws), "/workspace/output");
    json_t *tags = json_pack("{s:s}", "mlgw:job-id", gw_json_str(job, "id"));
    const json_t *meta = json_object_get(job, "metadata");
    const char *mk[] = {"user", "project", "experiment"};
    for (size_t i = 0; i < 3; i++)
        if (gw_json_str(meta, mk[i]) != NULL) {
            char k[32];
            gw_fmt(k, sizeof(k), "mlgw:%s", mk[i]);
            json_object_set_new(tags, k, json_string(gw_json_str(meta, mk[i])));
        }
    struct aws_batch_submit in = {
        .job_name = name,
        .job_queue = queue,
        .job_definition = def,
        .vcpus = jint(job, "vcpus"),
        .memory_mib = jint(job, "memory"),
        .gpus = jint(job, "gpus"),
        .environment = env,
        .command = json_object_get(job, "args"),
        .attempt_duration_s = json_is_integer(json_object_get(job, "timeout_seconds"))
                                  ? jint(job, "timeout_seconds")
                                  : 0,
        .attempts = jint(job, "max_attempts"),
        .retry_spot_only = 1,
        .tags = tags,
        .propagate_tags = 1,
    };
    bucket_take(&d->submit_rate);
    int64_t t0 = gw_monotonic_ns();
    rc = aws_batch_submit_job(batch_id, arn, d->aws, &in, &err);
    gw_metrics_time("mlgw_batch_submit_seconds", "", (double)(gw_monotonic_ns() - t0) / 1e9);
    json_decref(env);
    json_decref(tags);
    if (rc == GW_OK)
        record_submitted(d, it, "SUBMITTED", batch_id, NULL);
    else
        finish_failure(d, it, rc, &err);
}

/* ---- publish to SNS ------------------------------------------------------ */

/* The original pipeline's trigger message, with the gateway's job id (new). */
static char *trigger_message(const json_t *job)
{
    json_t *data =
        json_pack("{s:s,s:s,s:I,s:I}", "script_key", gw_json_str(job, "script_key"), "compute_type",
                  gw_json_str(job, "compute_type"), "vcpus", (json_int_t)jint(job, "vcpus"),
                  "memory", (json_int_t)jint(job, "memory"));
    if (strcmp(gw_json_str(job, "compute_type"), "gpu") == 0)
        json_object_set_new(data, "gpus", json_integer(jint(job, "gpus")));
    if (gw_json_str(job, "operation") != NULL)
        json_object_set_new(data, "operation", json_string(gw_json_str(job, "operation")));
    json_object_set_new(data, "job_id", json_string(gw_json_str(job, "id")));
    /* What the seed's message cannot say is carried only when set. */
    if (json_array_size(json_object_get(job, "args")) > 0)
        json_object_set(data, "args", json_object_get(job, "args"));
    if (json_object_size(json_object_get(job, "env")) > 0)
        json_object_set(data, "env", json_object_get(job, "env"));
    if (json_is_integer(json_object_get(job, "timeout_seconds")))
        json_object_set(data, "timeout_seconds", json_object_get(job, "timeout_seconds"));
    if (jint(job, "max_attempts") > 1)
        json_object_set(data, "max_attempts", json_object_get(job, "max_attempts"));
    json_t *meta = json_object();
    const json_t *m = json_object_get(job, "metadata");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)m, k, v)
    {
        if (json_is_string(v))
            json_object_set(meta, k, v);
    }
    json_t *msg =
        json_pack("{s:s,s:o,s:o}", "trigger_type", "batch_job", "data", data, "metadata", meta);
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    return s;
}

static void publish_sns(struct jobs_dispatcher *d, const struct db_outbox_item *it)
{
    const struct gw_config *cfg = d->app->cfg;
    struct aws_error err = {0};
    if (d->aws == NULL || cfg->trigger_topic_arn == NULL) {
        gw_fmt(err.code, sizeof(err.code), "%s", "NotConfigured");
        gw_fmt(err.message, sizeof(err.message), "%s",
               "no SNS trigger topic (MLGW_TRIGGER_TOPIC_ARN) on this gateway");
        finish_failure(d, it, GW_EINVAL, &err);
        return;
    }
    char *msg = trigger_message(it->job);
    struct aws_sns_attribute attrs[] = {{"trigger_type", "batch_job"},
                                        {"compute_type", gw_json_str(it->job, "compute_type")}};
    struct aws_sns_publish in = {.topic_arn = cfg->trigger_topic_arn,
                                 .message = msg ? msg : "",
                                 .attributes = attrs,
                                 .nattributes = 2};
    char message_id[128];
    int rc = aws_sns_publish(message_id, d->aws, &in, &err);
    free(msg);
    if (rc == GW_OK)
        record_submitted(d, it, "DISPATCHED", NULL, message_id);
    else
        finish_failure(d, it, rc, &err);
}

/* ---- cancel at Batch ----------------------------------------------------- */

static void cancel_batch(struct jobs_dispatcher *d, const struct db_outbox_item *it)
{
    const char *status = gw_json_str(it->job, "status");
    const char *batch_id = gw_json_str(it->job, "batch_job_id");
    struct gw_err derr = {0};
    struct aws_error err = {0};
    int rc = GW_OK;
    if (batch_id != NULL && d->aws != NULL) {
        int early = strcmp(status, "SUBMITTED") == 0 || strcmp(status, "PENDING") == 0 ||
                    strcmp(status, "RUNNABLE") == 0 || strcmp(status, "CANCELLED") == 0;
        int running = strcmp(status, "STARTING") == 0 || strcmp(status, "RUNNING") == 0;
        /* CancelJob does nothing once a job is STARTING: TerminateJob then. */
        if (early)
            rc = aws_batch_cancel_job(d->aws, batch_id, "cancelled through ml-gateway", &err);
        else if (running)
            rc = aws_batch_terminate_job(d->aws, batch_id, "cancelled through ml-gateway", &err);
    }
    if (rc == GW_EUNAVAIL && it->attempts < d->app->cfg->dispatch_max_attempts) {
        (void)db_outbox_retry_later(d->app->pool, it, err.message, 0,
                                    retry_delay_ms(d->app->cfg, it->attempts), &derr);
        return;
    }
    if (rc != GW_OK)
        GW_LOG_WARN("job %s: cancelling %s at AWS failed: %s %s", it->job_id, batch_id, err.code,
                    err.message);
    else
        GW_LOG_INFO("job %s: cancellation sent to AWS Batch (%s)", it->job_id, batch_id);
    count("batch", rc == GW_OK ? "cancel-sent" : "cancel-failed", rc == GW_OK ? "none" : err.code);
    if (db_outbox_done(d->app->pool, it, &derr) != GW_OK)
        GW_LOG_WARN("job %s: %s", it->job_id, derr.msg);
}

/* ---- the workers ----------------------------------------------------------- */

static int dispatch_run(void *arg)
{
    struct jobs_dispatcher *d = arg;
    for (int n = 0; n < 1000; n++) { /* then a fresh run */
        if (gw_shutting_down())
            return 0; /* take nothing new: what is left stays for the next gateway */
        /* Without its presence lock this gateway's claims would look
         * abandoned to the others: claim nothing until it is back. */
        const struct jobs_presence *p = d->app->presence;
        if (p != NULL && !jobs_presence_held(p))
            return 0;
        struct db_outbox_item it;
        struct gw_err err = {0};
        int rc = db_outbox_claim(&it, d->app->pool, d->targets, (int)d->app->cfg->dispatch_lease_s,
                                 p != NULL ? jobs_presence_key(p) : 0, &err);
        if (rc == GW_ENOTFOUND)
            return 0;
        if (rc != GW_OK) {
            GW_LOG_DEBUG("dispatcher: %s", err.msg);
            return 0;
        }
        if (strcmp(it.action, "cancel") == 0)
            cancel_batch(d, &it);
        else if (strcmp(it.target, "batch") == 0)
            submit_batch(d, &it);
        else
            publish_sns(d, &it);
        db_outbox_item_dispose(&it);
    }
    return 0;
}

int jobs_dispatcher_start(struct jobs_dispatcher **out, struct jobs_app *app,
                          struct aws_client *aws, struct gw_err *err)
{
    *out = NULL;
    struct jobs_dispatcher *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    d->app = app;
    d->aws = aws;
    pthread_mutex_init(&d->submit_rate.mu, NULL);
    d->submit_rate.rate = (double)app->cfg->batch_submit_rate;
    d->submit_rate.tokens = d->submit_rate.rate;
    d->submit_rate.last_ns = gw_monotonic_ns();
    /* local jobs are the local executor's; this process hands on the rest. */
    gw_fmt(d->targets, sizeof(d->targets), "%s", "{batch,sns}");
    gw_metrics_describe("mlgw_dispatch_total", "counter",
                        "Dispatch outcomes by target, result and AWS error code.");
    gw_metrics_describe("mlgw_batch_submit_seconds", "histogram", "SubmitJob call latency.");
    int n = (int)app->cfg->dispatch_workers;
    if (n > MAX_WORKERS)
        n = MAX_WORKERS;
    for (int i = 0; i < n; i++) {
        if (gw_worker_start(&d->workers[i], "dispatcher", app->cfg->dispatch_poll_ms, dispatch_run,
                            d) != GW_OK)
            break;
        d->nworkers++;
    }
    if (n > 0) {
        (void)jobs_listener_start(&d->listener, app->cfg, "mlgw_outbox", d->workers, d->nworkers);
        (void)jobs_reconciler_start(&d->reconciler, app, aws, NULL);
    }
    *out = d;
    return GW_OK;
}

void jobs_dispatcher_stop(struct jobs_dispatcher *d)
{
    if (d == NULL)
        return;
    jobs_listener_stop(d->listener);
    jobs_reconciler_stop(d->reconciler);
    for (int i = 0; i < d->nworkers; i++)
        gw_worker_stop(d->workers[i]);
    pthread_mutex_destroy(&d->submit_rate.mu);
    free(d);
}
