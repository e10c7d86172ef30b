/*
 * cache.c — GET /cache, POST /cache/warm, POST /cache/cleanup (API.md, "The
 * model cache"). The status is the scanner's last snapshot (jobs/cache.h),
 * read from the database; warm and cleanup are ordinary jobs made by
 * rt_jobs_submit, with the cache operation recorded (and refused while
 * another runs) in the job's own transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "db/cache.h"
#include "db/jobs.h"
#include "jobs/app.h"
#include "jobs/cache.h"
#include "routes/routes.h"

#include "common/poison.h"

enum {
    OPERATIONS_SHOWN = 20,
    MAX_MODELS = 64,
    MAX_DAYS = 36500
}; /* models + "--models" fit a job's 100 args */

void rt_cache_get(struct rt_request *req, struct rt_reply *out)
{
    const struct gw_config *cfg = req->app->cfg;
    char *json = NULL;
    struct gw_err err = {0};
    int rc = db_cache_status(&json, req->app->request_pool, cfg->cache_dir, cfg->cache_max_bytes,
                             OPERATIONS_SHOWN, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    rt_reply_bytes(out, 200, "application/json; charset=utf-8", json, strlen(json));
}

static void field_error(json_t *errors, const char *field, const char *message)
{
    json_array_append_new(errors, json_pack("{s:s,s:s}", "field", field, "message", message));
}

/* models: 1–64 distinct cache entry names; each problem goes to errors. */
static void check_models(const json_t *models, json_t *errors)
{
    if (!json_is_array(models) || json_array_size(models) == 0 ||
        json_array_size(models) > MAX_MODELS) {
        field_error(errors, "models", "must be a list of 1 to 64 model names");
        return;
    }
    size_t i;
    const json_t *m;
    json_array_foreach(models, i, m)
    {
        char field[32];
        gw_fmt(field, sizeof(field), "models[%zu]", i);
        if (!json_is_string(m) || !jobs_cache_name_ok(json_string_value(m))) {
            field_error(errors, field,
                        "must be a model name: 1 to 128 of A-Z a-z 0-9 . _ -, starting with a "
                        "letter or digit");
            continue;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(json_string_value(json_array_get(models, k)), json_string_value(m)) == 0) {
                field_error(errors, field, "names a model already in the list");
                break;
            }
    }
}

/* Fields of body other than those in allowed go to errors. */
static void check_known(json_t *body, const char *const *allowed, json_t *errors)
{
    const char *key;
    const json_t *v;
    json_object_foreach(body, key, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] != NULL; i++)
            ok |= strcmp(key, allowed[i]) == 0;
        if (!ok)
            field_error(errors, key, "is not a known field");
    }
}

/* The job for a valid body, stored with its cache operation; errors → 422. */
static void submit(struct rt_request *req, struct rt_reply *out, const char *operation,
                   json_t *body, json_t *errors)
{
    if (json_array_size(errors) > 0) {
        rt_reply_problem(req, out, 422, "Unprocessable Content",
                         "the cache request is invalid; see errors", errors);
        return;
    }
    json_decref(errors);
    long long days = 0;
    if (!gw_json_whole(json_object_get(body, "older_than_days"), &days))
        days = 0;
    json_t *job =
        jobs_cache_request(req->app->cfg, operation, json_object_get(body, "models"), days);
    char *request = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    if (job == NULL || request == NULL) {
        rt_reply_error(req, out, GW_ENOMEM, NULL);
    } else {
        struct db_cache_op op = {operation, "api", request};
        struct db_job_guard guard = {db_cache_op_guard, &op};
        rt_jobs_submit(req, out, job, &guard);
    }
    json_decref(job);
    free(request);
}

void rt_cache_warm(struct rt_request *req, struct rt_reply *out)
{
    static const char *const fields[] = {"models", NULL};
    json_t *body = NULL;
    if (rt_body_json(&body, req, out) != GW_OK)
        return;
    json_t *errors = json_array();
    check_known(body, fields, errors);
    check_models(json_object_get(body, "models"), errors);
    submit(req, out, "warm-cache", body, errors);
    json_decref(body);
}

void rt_cache_cleanup(struct rt_request *req, struct rt_reply *out)
{
    static const char *const fields[] = {"models", "older_than_days", NULL};
    json_t *body = NULL;
    if (req->body.len == 0)
        body = json_object(); /* no body: everything, as the seed's cleanup does */
    else if (rt_body_json(&body, req, out) != GW_OK)
        return;
    json_t *errors = json_array();
    check_known(body, fields, errors);
    const json_t *models = json_object_get(body, "models");
    const json_t *days = json_object_get(body, "older_than_days");
    if (models != NULL && days != NULL)
        field_error(errors, "older_than_days", "cannot be given with models: choose one");
    if (models != NULL)
        check_models(models, errors);
    long long n = 0;
    if (days != NULL && (!gw_json_whole(days, &n) || n < 1 || n > MAX_DAYS))
        field_error(errors, "older_than_days", "must be a whole number of days from 1 to 36500");
    submit(req, out, "cleanup-cache", body, errors);
    json_decref(body);
}
