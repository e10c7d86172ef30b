/*
 * jobs.c — POST /jobs, GET /jobs, GET /jobs/{id}, POST /jobs/{id}/cancel.
 * Parse, validate, call db/jobs.c, reply. Job JSON comes from the database
 * as text and goes to the client untouched.
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/time.h"
#include "common/utf8.h"
#include "db/api_keys.h"
#include "db/jobcache.h"
#include "db/jobs.h"
#include "db/outbox.h"
#include "jobs/app.h"
#include "jobs/executor.h"
#include "jobs/jobenv.h"
#include "routes/job_request.h"
#include "routes/params.h"
#include "routes/routes.h"

#include "common/poison.h"

static void reply_text_json(struct rt_reply *out, unsigned status, char *json /* steals */)
{
    rt_reply_bytes(out, status, "application/json; charset=utf-8", json, json ? strlen(json) : 0);
}

/* A job can only be accepted for a target this gateway can hand it to. */
void rt_job_check_dispatch(const struct gw_config *cfg, const struct rt_job_request *jr,
                           json_t *errors)
{
    const char *msg = NULL;
    int gpu = strcmp(jr->compute_type, "gpu") == 0;
    if (strcmp(jr->dispatch, "batch") == 0 &&
        ((gpu ? cfg->gpu_job_queue : cfg->cpu_job_queue) == NULL ||
         (gpu ? cfg->gpu_job_definition : cfg->cpu_job_definition) == NULL))
        msg = gpu ? "AWS Batch is not configured for gpu jobs on this gateway "
                    "(MLGW_GPU_JOB_QUEUE, MLGW_GPU_JOB_DEFINITION)"
                  : "AWS Batch is not configured for cpu jobs on this gateway "
                    "(MLGW_CPU_JOB_QUEUE, MLGW_CPU_JOB_DEFINITION)";
    else if (strcmp(jr->dispatch, "sns") == 0 && cfg->trigger_topic_arn == NULL)
        msg = "SNS dispatch is not configured on this gateway (MLGW_TRIGGER_TOPIC_ARN)";
    if (msg != NULL)
        json_array_append_new(errors, json_pack("{s:s,s:s}", "field", "dispatch", "message", msg));
}

/* A local job must fit this machine, or it would wait forever. */
void rt_job_check_local_fits(const struct jobs_executor *e, const struct rt_job_request *jr,
                             json_t *errors)
{
    if (e == NULL || strcmp(jr->dispatch, "local") != 0)
        return;
    struct jobs_executor_misfit m[3];
    int n = jobs_executor_misfits(e, jr->vcpus, jr->memory, jr->gpus, m);
    for (int i = 0; i < n; i++) {
        char msg[160];
        gw_fmt(msg, sizeof(msg), "is more than this machine's local executor offers (%lld)",
               m[i].have);
        json_array_append_new(errors, json_pack("{s:s,s:s}", "field", m[i].field, "message", msg));
    }
}

/* The row to insert for a valid request (strings borrowed from jr). */
static struct db_job_new job_row(const struct rt_job_request *jr, const char *api_key_id,
                                 const char *team)
{
    return (struct db_job_new){
        .script_key = jr->script_key,
        .compute_type = jr->compute_type,
        .vcpus = jr->vcpus,
        .memory = jr->memory,
        .gpus = jr->gpus,
        .args_json = jr->args_json,
        .env_json = jr->env_json,
        .timeout_seconds = jr->timeout_seconds,
        .max_attempts = jr->max_attempts,
        .operation = jr->operation,
        .metadata_json = jr->metadata_json,
        .notify_json = jr->notify_json,
        .dispatch = jr->dispatch,
        .api_key_id = api_key_id,
        .team = team,
    };
}

/* 202 with the job (or, for a replay, the original answer and its job). */
static void reply_created(struct rt_reply *out, const struct db_job_created *created,
                          const char *new_id)
{
    /* A replay answers with the original job, whose id is in its own body. */
    char location[64];
    json_t *parsed = created->replayed ? json_loads(created->json, 0, NULL) : NULL;
    const char *id = parsed ? json_string_value(json_object_get(parsed, "id")) : new_id;
    gw_fmt(location, sizeof(location), "/jobs/%s", id ? id : new_id);
    json_decref(parsed);
    reply_text_json(out, created->status, created->json);
    rt_reply_header(out, MHD_HTTP_HEADER_LOCATION, location);
    if (created->replayed)
        rt_reply_header(out, "Idempotent-Replayed", "true");
}

/* Validates body into jr; on failure the reply is filled (422 naming every
 * field) and a negative code returned. */
static int check_request(struct rt_job_request *jr, json_t *body, struct rt_request *req,
                         struct rt_reply *out)
{
    const struct gw_config *cfg = req->app->cfg;
    json_t *errors = json_array();
    if (errors == NULL) {
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return GW_ENOMEM;
    }
    if (rt_job_request_parse(jr, body, cfg, errors) == 0) {
        rt_job_check_dispatch(cfg, jr, errors);
        rt_job_check_local_fits(req->app->executor, jr, errors);
    }
    if (json_array_size(errors) > 0) {
        rt_reply_problem(req, out, 422, "Unprocessable Content",
                         "the job request is invalid; see errors", errors);
        return GW_EINVAL;
    }
    json_decref(errors);
    return GW_OK;
}

/* A POST /jobs in flight: what its write borrows, kept until it is answered. */
struct submit {
    json_t *body; /* jr's strings point into it */
    struct rt_job_request jr;
    struct db_job_write jw;
    char uri[4200];
};

static void submit_free(struct submit *sb)
{
    db_job_write_dispose(&sb->jw);
    rt_job_request_dispose(&sb->jr);
    json_decref(sb->body);
    free(sb);
}

/* The job's write is over: 202, or why not. */
static void submit_reply(struct rt_request *req, struct rt_reply *out, void *ctx)
{
    struct submit *sb = ctx;
    struct db_job_write *jw = &sb->jw;
    int rc = jw->w.rc;
    if (rc == GW_EINVAL) { /* the key was used for another request */
        const char *msg = jw->w.err.msg;
        rt_reply_problem(req, out, 422, "Unprocessable Content", msg,
                         json_pack("[{s:s,s:s}]", "field", "Idempotency-Key", "message", msg));
    } else if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &jw->w.err);
    } else {
        reply_created(out, &jw->out, jw->job.id);
        jw->out.json = NULL; /* the reply has it */
        if (!jw->out.replayed)
            GW_LOG_INFO("job %s queued: %s on %s (%s)", jw->job.id, sb->jr.script_key,
                        sb->jr.compute_type, sb->jr.dispatch);
    }
    submit_free(sb);
}

void rt_jobs_submit(struct rt_request *req, struct rt_reply *out, json_t *body,
                    const struct db_job_guard *guard)
{
    const struct gw_config *cfg = req->app->cfg;
    int key_ok = 0;
    const char *ikey = rt_idempotency_key(&key_ok, req, out);
    if (!key_ok)
        return;
    struct submit *sb = calloc(1, sizeof(*sb));
    if (sb == NULL) {
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return;
    }
    sb->body = json_incref(body);
    if (check_request(&sb->jr, body, req, out) != GW_OK) {
        submit_free(sb);
        return;
    }
    struct db_job_new job = job_row(&sb->jr, req->auth_key_id, req->auth_team);
    job.guard = guard;
    struct db_idempotency idem = {
        .api_key_id = req->auth_key_id,
        .key = ikey,
        .ttl_hours = cfg->idempotency_ttl_hours,
    };
    if (gw_uuid7(job.id) != GW_OK || jobs_output_uri(sb->uri, sizeof(sb->uri), cfg, job.id) != 0 ||
        (ikey != NULL && rt_request_hash(idem.request_hash, req, body) != GW_OK)) {
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        submit_free(sb);
        return;
    }
    job.output_uri = sb->uri;
    db_job_write_init(&sb->jw, &job, ikey ? &idem : NULL);
    if (guard != NULL) {
        /* The guard is the caller's, for this call only: no deferring. */
        (void)db_write_now(req->app->request_pool, &sb->jw.w);
        submit_reply(req, out, sb);
        return;
    }
    rt_write(req, out, &sb->jw.w, submit_reply, sb);
}

void rt_jobs_create(struct rt_request *req, struct rt_reply *out)
{
    json_t *body = NULL;
    if (rt_body_json(&body, req, out) != GW_OK)
        return;
    rt_jobs_submit(req, out, body, NULL);
    json_decref(body);
}

/* One job, looked up or acted on by fn for the caller's team, answered with
 * status; 404 for an unknown job or another team's, 409 with the reason for a
 * state conflict. */
typedef int (*job_fn)(char **out, struct db_pool *pool, const char *id, const char *team,
                      struct gw_err *err);

static void job_action(struct rt_request *req, struct rt_reply *out, job_fn fn, unsigned status,
                       const char *done)
{
    const char *id = rt_job_id_param(req, out);
    if (id == NULL)
        return;
    char *json = NULL;
    struct gw_err err = {0};
    int rc = fn(&json, req->app->request_pool, id, rt_team(req), &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    /* Committed: later reads here must not see the cached copy (other
     * gateways drop theirs at their next poll of job_changes). */
    db_jobcache_forget(req->app->jobcache, id);
    if (done != NULL)
        GW_LOG_INFO("job %s %s (API key %s)", id, done, req->auth_key_id);
    reply_text_json(out, status, json);
}

static int cancel_by_user(char **out, struct db_pool *pool, const char *id, const char *team,
                          struct gw_err *err)
{
    return db_job_cancel(out, pool, id, team, "cancelled by user", err);
}

/* Retry is for admin keys alone (the route's scope), which see every team. */
static int requeue(char **out, struct db_pool *pool, const char *id, const char *team,
                   struct gw_err *err)
{
    (void)team;
    return db_job_requeue(out, pool, id, err);
}

/* The job's document from the cache, or from the database (and then into
 * the cache); with its ETag. 0, or a negative code with out filled. */
static int job_document(char **json, size_t *len, char etag[DB_JOBCACHE_ETAG_LEN + 1],
                        struct rt_request *req, struct rt_reply *out, const char *id)
{
    struct db_jobcache *jc = req->app->jobcache;
    if (db_jobcache_get(jc, id, rt_team(req), json, len, etag))
        return GW_OK;
    uint64_t ticket = db_jobcache_ticket(jc, id);
    char job_team[65];
    struct gw_err err = {0};
    int rc = db_job_read(json, job_team, req->app->request_pool, id, rt_team(req), &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return rc;
    }
    *len = strlen(*json);
    db_jobcache_etag(etag, *json, *len);
    db_jobcache_put(jc, ticket, id, job_team[0] != '\0' ? job_team : NULL, *json, *len, etag);
    return GW_OK;
}

void rt_jobs_get(struct rt_request *req, struct rt_reply *out)
{
    const char *id = rt_job_id_param(req, out);
    if (id == NULL)
        return;
    char *json = NULL, etag[DB_JOBCACHE_ETAG_LEN + 1];
    size_t len = 0;
    if (job_document(&json, &len, etag, req, out, id) != GW_OK)
        return;
    rt_reply_document(req, out, json, len, etag);
}

void rt_jobs_cancel(struct rt_request *req, struct rt_reply *out)
{
    job_action(req, out, cancel_by_user, 202, "cancelled");
}

void rt_jobs_retry(struct rt_request *req, struct rt_reply *out)
{
    job_action(req, out, requeue, 202, "queued again for dispatch");
}

/* An RFC 3339 time (gw_parse_rfc3339, the whole value; a space after the
 * seconds is a '+' decoded from a query string), written into out as the
 * same instant in UTC, to the millisecond. PostgreSQL takes a narrower range
 * than RFC 3339 (offsets up to 15:59, no year 0), so it gets UTC, and an
 * instant before year 1 or after 9999 becomes the first or last millisecond
 * of that range (no job was created outside it). */
static int rfc3339_ok(char *out, size_t outlen, const char *s)
{
    enum { SECONDS_END = 19 };                         /* "YYYY-MM-DDTHH:MM:SS" */
    static const int64_t FIRST_MS = -62135596800000LL; /* 0001-01-01T00:00:00Z */
    static const int64_t LAST_MS = 253402300799999LL;  /* 9999-12-31T23:59:59.999Z */
    char text[256];
    size_t n = strlen(s);
    int64_t ms;
    if (n >= sizeof(text) || n <= SECONDS_END)
        return 0;
    memcpy(text, s, n + 1);
    for (size_t i = SECONDS_END; i < n; i++)
        if (text[i] == ' ')
            text[i] = '+';
    if (gw_parse_rfc3339(&ms, text, n) != n)
        return 0;
    gw_format_time_ms(out, outlen, ms < FIRST_MS ? FIRST_MS : ms > LAST_MS ? LAST_MS : ms);
    return out[0] != '\0';
}

static const char cursor_tag[] = "j1:";

static const char *const list_params[] = {
    "status",         "compute_type", "user",   "project", "experiment", "created_after",
    "created_before", "limit",        "cursor", "team",    NULL,
};

/* A list request's filters, with the buffers they point into. */
struct list_query {
    struct db_job_filter f;
    char after[64], before[64], cursor_id[37];
    const char *team; /* the team the query named, or NULL */
};

/* Reads GET /jobs's query into q; every invalid parameter goes to errors. */
static void list_query_read(struct list_query *q, struct rt_request *req, json_t *errors)
{
    static const char *const statuses[] = {
        "QUEUED",  "DISPATCHED", "SUBMITTED", "PENDING",   "RUNNABLE",        "STARTING",
        "RUNNING", "SUCCEEDED",  "FAILED",    "CANCELLED", "DISPATCH_FAILED", NULL,
    };
    struct db_job_filter *f = &q->f;
    rt_params_unknown(errors, req, list_params);
    f->limit = RT_LIMIT_DEFAULT;
    f->status = rt_query(req, "status");
    if (f->status != NULL) {
        int ok = 0;
        for (size_t i = 0; statuses[i] != NULL; i++)
            ok |= strcmp(f->status, statuses[i]) == 0;
        if (!ok)
            rt_param_error(errors, "status", "is not a job status");
    }
    f->compute_type = rt_query(req, "compute_type");
    if (f->compute_type != NULL && strcmp(f->compute_type, "gpu") != 0 &&
        strcmp(f->compute_type, "cpu") != 0)
        rt_param_error(errors, "compute_type", "must be gpu or cpu");
    f->user = rt_query(req, "user");
    f->project = rt_query(req, "project");
    f->experiment = rt_query(req, "experiment");
    const char *const meta[][2] = {
        {"user", f->user}, {"project", f->project}, {"experiment", f->experiment}};
    for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
        if (meta[i][1] != NULL && gw_utf8_chars(meta[i][1], strlen(meta[i][1])) > 256)
            rt_param_error(errors, meta[i][0], "must be at most 256 characters");

    const char *v = rt_query(req, "created_after");
    if (v != NULL && !rfc3339_ok(q->after, sizeof(q->after), v))
        rt_param_error(errors, "created_after", "must be an RFC 3339 date-time");
    else if (v != NULL)
        f->created_after = q->after;
    v = rt_query(req, "created_before");
    if (v != NULL && !rfc3339_ok(q->before, sizeof(q->before), v))
        rt_param_error(errors, "created_before", "must be an RFC 3339 date-time");
    else if (v != NULL)
        f->created_before = q->before;
    rt_param_limit(&f->limit, req, errors);
    v = rt_query(req, "cursor");
    if (v != NULL && (rt_cursor_decode(q->cursor_id, sizeof(q->cursor_id), cursor_tag, v) != 36 ||
                      !gw_uuid_valid(q->cursor_id)))
        rt_param_error(errors, "cursor", "is not a cursor this API issued");
    else if (v != NULL)
        f->before_id = q->cursor_id;

    /* A key sees its own team; admin sees every team, or the one it names. */
    q->team = rt_query(req, "team");
    if (q->team != NULL && !db_team_valid(q->team))
        rt_param_error(errors, "team", "is not a team name");
    f->team = rt_team(req) != NULL ? rt_team(req) : q->team;
}

void rt_jobs_list(struct rt_request *req, struct rt_reply *out)
{
    json_t *errors = json_array();
    struct list_query q;
    memset(&q, 0, sizeof(q));
    list_query_read(&q, req, errors);
    if (json_array_size(errors) > 0) {
        rt_reply_problem(req, out, 400, "Bad Request", "invalid query parameters; see errors",
                         errors);
        return;
    }
    json_decref(errors);
    if (q.team != NULL && q.f.team != NULL && strcmp(q.team, q.f.team) != 0) {
        /* another team's jobs: none of them is visible to this key */
        rt_reply_json(out, 200, json_pack("{s:[],s:n}", "items", "next_cursor"));
        return;
    }
    const struct db_job_filter *fp = &q.f;
    char *items = NULL, next_id[37];
    struct gw_err err = {0};
    int rc = db_job_list(&items, next_id, req->app->request_pool, fp, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    struct gw_buf b;
    gw_buf_init(&b, strlen(items) + 256);
    char cursor[96] = "";
    if (next_id[0] != '\0' && rt_cursor_encode(cursor, sizeof(cursor), cursor_tag, next_id) != 0)
        cursor[0] = '\0';
    rc = gw_buf_printf(&b, "{\"items\":%s,\"next_cursor\":%s%s%s}", items, cursor[0] ? "\"" : "",
                       cursor[0] ? cursor : "null", cursor[0] ? "\"" : "");
    free(items);
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return;
    }
    reply_text_json(out, 200, gw_buf_steal(&b));
}
