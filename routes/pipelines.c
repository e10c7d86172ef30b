/*
 * pipelines.c — /pipelines: definitions (POST, PUT, GET, list, versions,
 * DELETE) and runs (POST, list, GET, cancel). Parse, validate
 * (routes/pipeline_request.c), call db/pipelines.c or db/runs.c, reply.
 * JSON comes from the database as text and goes to the client untouched.
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"
#include "common/log.h"
#include "common/parse.h"
#include "db/api_keys.h"
#include "db/jobcache.h"
#include "db/jobs.h"
#include "db/pipelines.h"
#include "db/runs.h"
#include "jobs/app.h"
#include "routes/job_request.h"
#include "routes/params.h"
#include "routes/pipeline_request.h"
#include "routes/routes.h"

#include "common/poison.h"

static const char pipeline_cursor_tag[] = "p1:";
static const char run_cursor_tag[] = "r1:";

static void reply_text_json(struct rt_reply *out, unsigned status, char *json /* steals */)
{
    rt_reply_bytes(out, status, "application/json; charset=utf-8", json, json ? strlen(json) : 0);
}

/* The {name} path parameter when it can name a pipeline; else a 404. */
static const char *name_param(struct rt_request *req, struct rt_reply *out)
{
    const char *name = rt_param(req, "name");
    if (name == NULL || !rt_pipeline_name_ok(name)) {
        rt_reply_problem(req, out, 404, "Not Found", "no such pipeline", NULL);
        return NULL;
    }
    return name;
}

/* Whose pipelines the caller means: its team; for admin, ?team= or any.
 * Fills a 400 and returns -1 for a malformed ?team=. */
static int scope_of(struct db_pipeline_scope *s, struct rt_request *req, struct rt_reply *out)
{
    const char *team = rt_query(req, "team");
    if (team != NULL && !db_team_valid(team)) {
        rt_reply_problem(
            req, out, 400, "Bad Request", "invalid query parameters; see errors",
            json_pack("[{s:s,s:s}]", "field", "team", "message", "is not a team name"));
        return -1;
    }
    s->own_team = req->auth_team;
    s->team = rt_team(req) != NULL ? rt_team(req) : team;
    if (rt_team(req) != NULL && team != NULL && strcmp(team, rt_team(req)) != 0) {
        rt_reply_problem(req, out, 404, "Not Found", "no such pipeline", NULL);
        return -1;
    }
    return 0;
}

/* Only ?team= (admin) is accepted on single-resource reads and writes. */
static int query_ok(struct rt_request *req, struct rt_reply *out, const char *const *known)
{
    json_t *errors = json_array();
    rt_params_unknown(errors, req, known);
    if (json_array_size(errors) > 0) {
        rt_reply_problem(req, out, 400, "Bad Request", "invalid query parameters; see errors",
                         errors);
        return 0;
    }
    json_decref(errors);
    return 1;
}

static const char *const team_only[] = {"team", NULL};

/* The answer to a create: the problem of a reused key (422), another
 * failure, or the created (or replayed) resource with its Location. */
static void reply_create(struct rt_request *req, struct rt_reply *out, int rc,
                         const struct gw_err *err, struct db_job_created *created,
                         const char *location)
{
    if (rc == GW_EINVAL) {
        rt_reply_problem(req, out, 422, "Unprocessable Content", err->msg,
                         json_pack("[{s:s,s:s}]", "field", "Idempotency-Key", "message", err->msg));
        return;
    }
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, err);
        return;
    }
    reply_text_json(out, created->status, created->json);
    created->json = NULL;
    rt_reply_header(out, MHD_HTTP_HEADER_LOCATION, location);
    if (created->replayed)
        rt_reply_header(out, "Idempotent-Replayed", "true");
}

static void reply_definition_invalid(struct rt_request *req, struct rt_reply *out, json_t *errors)
{
    rt_reply_problem(req, out, 422, "Unprocessable Content",
                     "the pipeline definition is invalid; see errors", errors);
}

void rt_pipelines_create(struct rt_request *req, struct rt_reply *out)
{
    json_t *body = NULL, *stored = NULL, *errors = NULL;
    char *def = NULL;
    int key_ok;
    const char *ikey = rt_idempotency_key(&key_ok, req, out);
    if (!key_ok || rt_body_json(&body, req, out) != GW_OK)
        goto cleanup;
    errors = json_array();
    if (errors == NULL || rt_pipeline_def_parse(&stored, body, NULL, req->app->cfg, errors) > 0) {
        reply_definition_invalid(req, out, errors);
        errors = NULL;
        goto cleanup;
    }
    const char *name = json_string_value(json_object_get(body, "name"));
    struct db_idempotency idem = {.api_key_id = req->auth_key_id,
                                  .key = ikey,
                                  .ttl_hours = req->app->cfg->idempotency_ttl_hours};
    struct gw_err err = {0};
    struct db_job_created created = {0};
    int rc = (def = json_dumps(stored, JSON_COMPACT)) == NULL ||
                     (ikey != NULL && rt_request_hash(idem.request_hash, req, body) != GW_OK)
                 ? GW_ENOMEM
                 : GW_OK;
    if (rc == GW_OK)
        rc = db_pipeline_create(&created, req->app->request_pool, req->auth_team, name, def,
                                req->auth_key_id, ikey ? &idem : NULL, &err);
    char location[128];
    gw_fmt(location, sizeof(location), "/pipelines/%s", name);
    reply_create(req, out, rc, &err, &created, location);
    free(created.json);
    if (rc == GW_OK && !created.replayed)
        GW_LOG_INFO("pipeline %s created (API key %s)", name, req->auth_key_id);
cleanup:
    json_decref(errors);
    json_decref(stored);
    json_decref(body);
    free(def);
}

void rt_pipelines_update(struct rt_request *req, struct rt_reply *out)
{
    json_t *body = NULL, *stored = NULL, *errors = NULL;
    char *def = NULL, *json = NULL;
    struct db_pipeline_scope scope;
    const char *name = name_param(req, out);
    if (name == NULL || !query_ok(req, out, team_only) || scope_of(&scope, req, out) != 0 ||
        rt_body_json(&body, req, out) != GW_OK)
        goto cleanup;
    errors = json_array();
    if (errors == NULL || rt_pipeline_def_parse(&stored, body, name, req->app->cfg, errors) > 0) {
        reply_definition_invalid(req, out, errors);
        errors = NULL;
        goto cleanup;
    }
    struct gw_err err = {0};
    int rc = (def = json_dumps(stored, JSON_COMPACT)) == NULL ? GW_ENOMEM : GW_OK;
    if (rc == GW_OK)
        rc = db_pipeline_update(&json, req->app->request_pool, &scope, name, def, req->auth_key_id,
                                &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        goto cleanup;
    }
    reply_text_json(out, 200, json);
    json = NULL;
    GW_LOG_INFO("pipeline %s has a new version (API key %s)", name, req->auth_key_id);
cleanup:
    json_decref(errors);
    json_decref(stored);
    json_decref(body);
    free(def);
    free(json);
}

static void get_version(struct rt_request *req, struct rt_reply *out, long long version)
{
    struct db_pipeline_scope scope;
    const char *name = name_param(req, out);
    if (name == NULL || !query_ok(req, out, team_only) || scope_of(&scope, req, out) != 0)
        return;
    char *json = NULL;
    struct gw_err err = {0};
    int rc = db_pipeline_get(&json, req->app->request_pool, &scope, name, version, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    reply_text_json(out, 200, json);
}

void rt_pipelines_get(struct rt_request *req, struct rt_reply *out)
{
    get_version(req, out, 0);
}

void rt_pipelines_version(struct rt_request *req, struct rt_reply *out)
{
    long long v = 0;
    const char *s = rt_param(req, "version");
    if (s == NULL || gw_parse_ll(&v, s, 1, 1000000000) != GW_OK) {
        rt_reply_problem(req, out, 404, "Not Found", "no such pipeline version", NULL);
        return;
    }
    get_version(req, out, v);
}

void rt_pipelines_delete(struct rt_request *req, struct rt_reply *out)
{
    struct db_pipeline_scope scope;
    const char *name = name_param(req, out);
    if (name == NULL || !query_ok(req, out, team_only) || scope_of(&scope, req, out) != 0)
        return;
    struct gw_err err = {0};
    int rc = db_pipeline_delete(req->app->request_pool, &scope, name, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    GW_LOG_INFO("pipeline %s deleted (API key %s)", name, req->auth_key_id);
    rt_reply_bytes(out, 204, NULL, strdup(""), 0);
}

/* {"items": items, "next_cursor": ...} from a list and its last id. */
static void reply_page(struct rt_request *req, struct rt_reply *out, char *items /* steals */,
                       const char *next_id, const char *tag)
{
    struct gw_buf b;
    gw_buf_init(&b, strlen(items) + 256);
    char cursor[96] = "";
    if (next_id[0] != '\0' && rt_cursor_encode(cursor, sizeof(cursor), tag, next_id) != 0)
        cursor[0] = '\0';
    int rc =
        gw_buf_printf(&b, "{\"items\":%s,\"next_cursor\":%s%s%s}", items, cursor[0] ? "\"" : "",
                      cursor[0] ? cursor : "null", cursor[0] ? "\"" : "");
    free(items);
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return;
    }
    reply_text_json(out, 200, gw_buf_steal(&b));
}

/* ?limit=, ?cursor= (tag) and ?team= of a list; problems go to errors. */
static void page_params(int *limit, char cursor_id[37], const char **team, struct rt_request *req,
                        const char *tag, json_t *errors)
{
    rt_param_limit(limit, req, errors);
    const char *v = rt_query(req, "cursor");
    if (v != NULL && (rt_cursor_decode(cursor_id, 37, tag, v) != 36 || !gw_uuid_valid(cursor_id)))
        rt_param_error(errors, "cursor", "is not a cursor this API issued");
    *team = rt_query(req, "team");
    if (*team != NULL && !db_team_valid(*team))
        rt_param_error(errors, "team", "is not a team name");
}

void rt_pipelines_list(struct rt_request *req, struct rt_reply *out)
{
    static const char *const known[] = {"limit", "cursor", "team", NULL};
    json_t *errors = json_array();
    int limit = RT_LIMIT_DEFAULT;
    char cursor_id[37] = "";
    const char *team = NULL;
    rt_params_unknown(errors, req, known);
    page_params(&limit, cursor_id, &team, req, pipeline_cursor_tag, errors);
    if (json_array_size(errors) > 0) {
        rt_reply_problem(req, out, 400, "Bad Request", "invalid query parameters; see errors",
                         errors);
        return;
    }
    json_decref(errors);
    if (rt_team(req) != NULL && team != NULL && strcmp(team, rt_team(req)) != 0) {
        rt_reply_json(out, 200, json_pack("{s:[],s:n}", "items", "next_cursor"));
        return;
    }
    char *items = NULL, next_id[37];
    struct gw_err err = {0};
    int rc = db_pipeline_list(&items, next_id, req->app->request_pool,
                              rt_team(req) ? rt_team(req) : team, cursor_id[0] ? cursor_id : NULL,
                              limit, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    reply_page(req, out, items, next_id, pipeline_cursor_tag);
}

/* The definition a run starts from: the latest version, or the one the run
 * names (a version that does not exist is the request's problem: 422). *def
 * is new. Replies and returns non-zero on failure. */
static int run_definition(json_t **def, struct rt_request *req, struct rt_reply *out,
                          const struct db_pipeline_scope *scope, const char *name,
                          long long version)
{
    char *text = NULL;
    struct gw_err err = {0};
    int rc = db_pipeline_get(&text, req->app->request_pool, scope, name, 0, &err);
    if (rc == GW_OK && version > 0) {
        json_t *latest = json_loads(text, 0, NULL);
        long long have = json_integer_value(json_object_get(latest, "version"));
        json_decref(latest);
        if (have != version) {
            free(text);
            text = NULL;
            rc = db_pipeline_get(&text, req->app->request_pool, scope, name, version, &err);
            if (rc == GW_ENOTFOUND) {
                rt_reply_problem(req, out, 422, "Unprocessable Content", err.msg,
                                 json_pack("[{s:s,s:s}]", "field", "version", "message",
                                           "is not a version of this pipeline"));
                return rc;
            }
        }
    }
    if (rc == GW_OK && (*def = json_loads(text, 0, NULL)) == NULL)
        rc = GW_ENOMEM;
    free(text);
    if (rc != GW_OK)
        rt_reply_error(req, out, rc, &err);
    return rc;
}

/* What POST /jobs checks beyond the body, for every planned step. */
static void check_targets(struct rt_request *req, json_t *steps, json_t *errors)
{
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        json_t *spec = json_object_get(s, "spec");
        struct rt_job_request jr = {
            .compute_type = json_string_value(json_object_get(spec, "compute_type")),
            .dispatch = json_string_value(json_object_get(spec, "dispatch")),
            .vcpus = json_integer_value(json_object_get(spec, "vcpus")),
            .memory = json_integer_value(json_object_get(spec, "memory")),
            .gpus = json_integer_value(json_object_get(spec, "gpus")),
        };
        json_t *mine = json_array();
        rt_job_check_dispatch(req->app->cfg, &jr, mine);
        rt_job_check_local_fits(req->app->executor, &jr, mine);
        size_t k;
        json_t *e;
        json_array_foreach(mine, k, e)
        {
            char field[128];
            gw_fmt(field, sizeof(field), "steps[%zu].%s", i,
                   json_string_value(json_object_get(e, "field")));
            json_array_append_new(errors, json_pack("{s:s,s:O}", "field", field, "message",
                                                    json_object_get(e, "message")));
        }
        json_decref(mine);
    }
}

static char *output_base(const struct gw_config *cfg)
{
    struct gw_buf b;
    gw_buf_init(&b, 8192);
    int rc = cfg->output_bucket != NULL
                 ? gw_buf_printf(&b, "s3://%s/jobs/", cfg->output_bucket)
                 : gw_buf_printf(&b, "file://%s/output/jobs/", cfg->local_root);
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        return NULL;
    }
    return gw_buf_steal(&b);
}

/* The strings a run row is made of (new: run_texts_dispose). */
struct run_texts {
    char *steps, *metadata, *notify, *base;
};

static void run_texts_dispose(struct run_texts *t)
{
    free(t->steps);
    free(t->metadata);
    free(t->notify);
    free(t->base);
}

static int run_texts_make(struct run_texts *t, const struct gw_config *cfg, json_t *steps,
                          const struct rt_run_request *run)
{
    json_t *notify = json_pack("{s:[],s:[]}", "emails", "webhooks");
    if (notify != NULL && json_is_object(run->notify))
        json_object_update(notify, run->notify);
    t->steps = json_dumps(steps, JSON_COMPACT);
    t->metadata =
        json_is_object(run->metadata) ? json_dumps(run->metadata, JSON_COMPACT) : strdup("{}");
    t->notify = notify ? json_dumps(notify, JSON_COMPACT) : NULL;
    t->base = output_base(cfg);
    json_decref(notify);
    return t->steps && t->metadata && t->notify && t->base ? GW_OK : GW_ENOMEM;
}

/* Parses and checks the run body and plans its steps; on failure the reply
 * is filled. */
static int run_plan(json_t **def, json_t **steps, struct rt_run_request *run, json_t *body,
                    struct rt_request *req, struct rt_reply *out, const char *name)
{
    const struct gw_config *cfg = req->app->cfg;
    struct db_pipeline_scope scope;
    json_t *errors = json_array();
    if (errors == NULL || rt_run_request_parse(run, body, cfg, errors) > 0) {
        rt_reply_problem(req, out, 422, "Unprocessable Content",
                         "the run request is invalid; see errors", errors);
        return GW_EINVAL;
    }
    if (scope_of(&scope, req, out) != 0 ||
        run_definition(def, req, out, &scope, name, run->version) != GW_OK) {
        json_decref(errors);
        return GW_EINVAL;
    }
    if (rt_run_plan(steps, *def, run, cfg, errors) == 0)
        check_targets(req, *steps, errors);
    if (json_array_size(errors) > 0) {
        rt_reply_problem(req, out, 422, "Unprocessable Content",
                         "the run request is invalid for this pipeline; see errors", errors);
        return GW_EINVAL;
    }
    json_decref(errors);
    return GW_OK;
}

/* A run's creation in flight: what its write borrows, kept until it is
 * answered. */
struct run_create {
    json_t *body, *def; /* the run's strings point into them */
    struct run_texts t;
    struct db_run_write rw;
};

static void run_create_free(struct run_create *x)
{
    db_run_write_dispose(&x->rw);
    run_texts_dispose(&x->t);
    json_decref(x->def);
    json_decref(x->body);
    free(x);
}

/* The run's write is over: 202 with its Location, or why not. */
static void run_create_reply(struct rt_request *req, struct rt_reply *out, void *ctx)
{
    struct run_create *x = ctx;
    const struct db_run_new *r = &x->rw.run;
    struct db_job_created *created = &x->rw.out;
    int rc = x->rw.w.rc;
    /* a replay answers with the original run, whose id is in its own body */
    json_t *parsed = created->replayed ? json_loads(created->json, 0, NULL) : NULL;
    const char *id = parsed ? json_string_value(json_object_get(parsed, "id")) : NULL;
    char location[160];
    gw_fmt(location, sizeof(location), "/pipelines/%s/runs/%s", r->pipeline, id ? id : r->id);
    json_decref(parsed);
    int replayed = created->replayed;
    reply_create(req, out, rc, &x->rw.w.err, created, location);
    if (rc == GW_OK && !replayed)
        GW_LOG_INFO("pipeline %s run %s queued (version %lld)", r->pipeline, r->id, r->version);
    run_create_free(x);
}

void rt_pipeline_runs_create(struct rt_request *req, struct rt_reply *out)
{
    const struct gw_config *cfg = req->app->cfg;
    json_t *steps = NULL;
    struct rt_run_request run;
    int key_ok = 0;
    const char *name = name_param(req, out);
    const char *ikey = name ? rt_idempotency_key(&key_ok, req, out) : NULL;
    if (name == NULL || !key_ok || !query_ok(req, out, team_only))
        return;
    struct run_create *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return;
    }
    if (req->body.len == 0 ? (x->body = json_object()) == NULL
                           : rt_body_json(&x->body, req, out) != GW_OK)
        goto fail;
    if (run_plan(&x->def, &steps, &run, x->body, req, out, name) != GW_OK)
        goto fail;

    struct db_run_new r = {
        .team = json_string_value(json_object_get(x->def, "team")),
        .pipeline = name,
        .version = json_integer_value(json_object_get(x->def, "version")),
        .dispatch = run.dispatch,
        .notify_topic = cfg->notify_topic_arn,
        .api_key_id = req->auth_key_id,
    };
    struct db_idempotency idem = {
        .api_key_id = req->auth_key_id, .key = ikey, .ttl_hours = cfg->idempotency_ttl_hours};
    if (gw_uuid7(r.id) != GW_OK || run_texts_make(&x->t, cfg, steps, &run) != GW_OK ||
        (ikey != NULL && rt_request_hash(idem.request_hash, req, x->body) != GW_OK)) {
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        goto fail;
    }
    json_decref(steps);
    r.steps_json = x->t.steps;
    r.metadata_json = x->t.metadata;
    r.notify_json = x->t.notify;
    r.output_base = x->t.base;
    db_run_write_init(&x->rw, &r, ikey ? &idem : NULL);
    rt_write(req, out, &x->rw.w, run_create_reply, x);
    return;
fail:
    json_decref(steps);
    run_create_free(x);
}

void rt_pipeline_runs_list(struct rt_request *req, struct rt_reply *out)
{
    static const char *const known[] = {"limit", "cursor", "team", "status", NULL};
    static const char *const statuses[] = {"QUEUED", "RUNNING",   "SUCCEEDED",
                                           "FAILED", "CANCELLED", NULL};
    const char *name = name_param(req, out);
    if (name == NULL)
        return;
    json_t *errors = json_array();
    struct db_run_filter f = {.pipeline = name};
    char cursor_id[37] = "";
    const char *team = NULL;
    rt_params_unknown(errors, req, known);
    page_params(&f.limit, cursor_id, &team, req, run_cursor_tag, errors);
    f.status = rt_query(req, "status");
    int ok = f.status == NULL;
    for (size_t i = 0; !ok && statuses[i] != NULL; i++)
        ok = strcmp(f.status, statuses[i]) == 0;
    if (!ok)
        rt_param_error(errors, "status", "is not a run status");
    if (json_array_size(errors) > 0) {
        rt_reply_problem(req, out, 400, "Bad Request", "invalid query parameters; see errors",
                         errors);
        return;
    }
    json_decref(errors);
    if (rt_team(req) != NULL && team != NULL && strcmp(team, rt_team(req)) != 0) {
        rt_reply_json(out, 200, json_pack("{s:[],s:n}", "items", "next_cursor"));
        return;
    }
    f.team = rt_team(req) ? rt_team(req) : team;
    f.before_id = cursor_id[0] ? cursor_id : NULL;
    char *items = NULL, next_id[37];
    struct gw_err err = {0};
    int rc = db_run_list(&items, next_id, req->app->request_pool, &f, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    reply_page(req, out, items, next_id, run_cursor_tag);
}

/* The {id} of a run path when it is a UUID; else a 404. */
static const char *run_id_param(struct rt_request *req, struct rt_reply *out)
{
    const char *id = rt_param(req, "id");
    if (id == NULL || !gw_uuid_valid(id)) {
        rt_reply_problem(req, out, 404, "Not Found", "no such run", NULL);
        return NULL;
    }
    return id;
}

void rt_pipeline_runs_get(struct rt_request *req, struct rt_reply *out)
{
    const char *name = name_param(req, out);
    const char *id = name ? run_id_param(req, out) : NULL;
    if (id == NULL)
        return;
    char *json = NULL;
    struct gw_err err = {0};
    int rc = db_run_get(&json, req->app->request_pool, rt_team(req), name, id, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    rt_reply_document(req, out, json, strlen(json), NULL);
}

/* Cancels each job still active ("{id,id}", a PostgreSQL array text) as
 * POST /jobs/{id}/cancel would; one that ended meanwhile is fine. */
static void cancel_jobs(struct rt_request *req, const char *ids)
{
    char id[37];
    for (const char *p = ids; *p != '\0';) {
        while (*p == '{' || *p == ',' || *p == '}')
            p++;
        size_t n = strcspn(p, ",}");
        if (n != 36)
            break;
        memcpy(id, p, 36);
        id[36] = '\0';
        p += n;
        char *json = NULL;
        struct gw_err err = {0};
        int rc =
            db_job_cancel(&json, req->app->request_pool, id, NULL, "pipeline run cancelled", &err);
        free(json);
        db_jobcache_forget(req->app->jobcache, id); /* seen at once through this gateway */
        if (rc != GW_OK && rc != GW_ECONFLICT && rc != GW_ENOTFOUND)
            GW_LOG_WARN("run cancel: job %s: %s", id, err.msg);
    }
}

void rt_pipeline_runs_cancel(struct rt_request *req, struct rt_reply *out)
{
    const char *name = name_param(req, out);
    const char *id = name ? run_id_param(req, out) : NULL;
    if (id == NULL)
        return;
    PGresult *jobs = NULL;
    struct gw_err err = {0};
    int rc = db_run_cancel(&jobs, req->app->request_pool, rt_team(req), name, id, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    cancel_jobs(req, PQgetvalue(jobs, 0, 1));
    PQclear(jobs);
    GW_LOG_INFO("pipeline %s run %s cancelled (API key %s)", name, id, req->auth_key_id);
    char *json = NULL;
    rc = db_run_get(&json, req->app->request_pool, rt_team(req), name, id, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    reply_text_json(out, 202, json);
}
