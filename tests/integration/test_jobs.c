/*
 * The jobs API over real HTTP against the real binary and PostgreSQL:
 * submission (native and the seed's SNS messages), validation with nothing
 * stored on failure, idempotency keys, the list with filters and cursor,
 * cancel, API-key auth and scopes, CORS.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/harness.h"
#include "common/err.h"

#include <libpq-fe.h>

static struct th_gw gw;
static char db[1024];
static char writer[128], reader[128], admin[128]; /* "Authorization: Bearer ..." */

static void bearer(char *out, const char *name, const char *scopes)
{
    char key[96];
    const char *args[] = {"--name", name, "--scopes", scopes, "--team", "qa", NULL};
    th_key_create_args(key, 96, db, args);
    snprintf(out, 128, "Authorization: Bearer %s", key);
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    /* Batch is configured so jobs may ask for it, but this gateway hands
     * nothing on (MLGW_DISPATCH_WORKERS=0): the API is tested on its own. */
    const char *env[] = {"MLGW_CORS_ORIGINS=https://app.example.test",
                         "ML_OUTPUT_BUCKET=ml-outputs",
                         "MLGW_AUTH_CACHE_SECONDS=0",
                         "MLGW_DISPATCH_WORKERS=0",
                         "MLGW_GPU_JOB_QUEUE=gpu-q",
                         "MLGW_GPU_JOB_DEFINITION=gpu-def",
                         "MLGW_CPU_JOB_QUEUE=cpu-q",
                         "MLGW_CPU_JOB_DEFINITION=cpu-def",
                         NULL};
    th_gw_start(&gw, db, env);
    bearer(writer, "writer", "jobs:read,jobs:write");
    bearer(reader, "reader", "jobs:read");
    bearer(admin, "admin", "admin");
}

static void teardown(void)
{
    cr_expect_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

TestSuite(jobs, .init = setup, .fini = teardown);

static void url_of(char *out, size_t n, const char *path)
{
    snprintf(out, n, "%s%s", gw.base, path);
}

static void post_as(struct th_resp *r, const char *auth, const char *path, const char *body,
                    const char *extra)
{
    char url[512];
    url_of(url, sizeof(url), path);
    const char *h[] = {"Content-Type: application/json", auth, extra, NULL};
    cr_assert_eq(th_http(r, "POST", url, h, body, body ? strlen(body) : 0), 0);
}

static void get_as(struct th_resp *r, const char *auth, const char *path)
{
    char url[1024];
    url_of(url, sizeof(url), path);
    const char *h[] = {auth, NULL};
    cr_assert_eq(th_http(r, "GET", url, h, NULL, 0), 0);
}

static long job_count(void)
{
    char *n = th_db_scalar(db, "SELECT count(*) FROM jobs");
    cr_assert(n != NULL);
    long v = strtol(n, NULL, 10);
    free(n);
    return v;
}

/* POSTs a job that must be accepted; returns the parsed job (json_decref it). */
static json_t *submit(const char *body)
{
    struct th_resp r;
    post_as(&r, writer, "/jobs", body, NULL);
    cr_assert_eq(r.status, 202, "%s -> %ld %s", body, r.status, r.body);
    json_t *j = th_resp_json(&r);
    cr_assert(j != NULL);
    char *loc = th_resp_header(&r, "Location");
    char want[64];
    snprintf(want, sizeof(want), "/jobs/%s", json_string_value(json_object_get(j, "id")));
    cr_assert(loc != NULL && strcmp(loc, want) == 0, "Location %s, want %s", loc, want);
    free(loc);
    th_resp_dispose(&r);
    return j;
}

static long res(json_t *job, const char *k)
{
    return (long)json_integer_value(json_object_get(json_object_get(job, "resources"), k));
}

/* ---- the seed's messages ---------------------------------------------------------------- */

Test(jobs, the_seeds_four_trigger_messages_are_accepted_with_the_seeds_defaults)
{
    struct {
        const char *body;
        const char *compute;
        long vcpus, memory, gpus;
    } cases[] = {
        {"{\"trigger_type\": \"batch_job\", \"data\": {\"script_key\": "
         "\"jobs/gpu_processing.py\"}, \"metadata\": {\"user\": \"ml-engineer\", \"project\": "
         "\"model-training\"}}",
         "gpu", 4, 16384, 1},
        {"{\"trigger_type\": \"batch_job\", \"data\": {\"script_key\": "
         "\"jobs/gpu_processing.py\", \"vcpus\": 16, \"memory\": 65536, \"gpus\": 4}, "
         "\"metadata\": {\"user\": \"ml-engineer\", \"project\": \"model-training\"}}",
         "gpu", 16, 65536, 4},
        {"{\"trigger_type\": \"batch_job\", \"data\": {\"script_key\": "
         "\"jobs/cpu_processing.py\", \"compute_type\": \"cpu\"}, \"metadata\": {\"user\": "
         "\"ml-engineer\", \"project\": \"data-pipeline\"}}",
         "cpu", 2, 4096, 0},
        {"{\"trigger_type\": \"batch_job\", \"data\": {\"script_key\": "
         "\"jobs/cpu_processing.py\", \"compute_type\": \"cpu\", \"vcpus\": 8, \"memory\": "
         "16384}, \"metadata\": {\"user\": \"ml-engineer\", \"project\": \"data-pipeline\"}}",
         "cpu", 8, 16384, 0},
    };
    for (size_t i = 0; i < 4; i++) {
        json_t *j = submit(cases[i].body);
        cr_assert_str_eq(th_str(j, "status"), "QUEUED");
        cr_assert_str_eq(th_str(j, "compute_type"), cases[i].compute);
        cr_assert_eq(res(j, "vcpus"), cases[i].vcpus, "case %zu", i);
        cr_assert_eq(res(j, "memory"), cases[i].memory, "case %zu", i);
        cr_assert_eq(res(j, "gpus"), cases[i].gpus, "case %zu", i);
        cr_assert_str_eq(th_str(json_object_get(j, "metadata"), "user"), "ml-engineer");
        cr_assert(json_is_null(json_object_get(json_object_get(j, "metadata"), "experiment")));
        cr_assert_str_eq(th_str(j, "dispatch"), "local", "the configured default");
        char want[128];
        snprintf(want, sizeof(want), "s3://ml-outputs/jobs/%s/", th_str(j, "id"));
        cr_assert_str_eq(th_str(j, "output_uri"), want);
        json_t *h = json_object_get(j, "history");
        cr_assert_eq(json_array_size(h), 1);
        cr_assert_str_eq(th_str(json_array_get(h, 0), "status"), "QUEUED");
        cr_assert_str_eq(th_str(json_array_get(h, 0), "source"), "api");
        json_decref(j);
    }
    cr_assert_eq(job_count(), 4);
}

Test(jobs, the_seeds_cache_cleanup_message_maps_data_operation)
{
    json_t *j = submit("{\"trigger_type\": \"batch_job\", \"data\": {\"script_key\": "
                       "\"jobs/cleanup_processor.py\", \"compute_type\": \"cpu\", "
                       "\"operation\": \"cleanup-cache\"}}");
    cr_assert_str_eq(th_str(j, "operation"), "cleanup-cache");
    cr_assert_str_eq(th_str(j, "compute_type"), "cpu");
    json_decref(j);
}

Test(jobs, the_native_body_round_trips_and_get_shows_it_with_history)
{
    const char *body =
        "{\"script_key\": \"jobs/train.py\", \"compute_type\": \"gpu\", \"vcpus\": 4, "
        "\"memory\": 16384, \"gpus\": 1, \"args\": [\"--epochs\", \"3\"], \"env\": "
        "{\"LEARNING_RATE\": \"0.001\"}, \"timeout_seconds\": 3600, \"max_attempts\": 3, "
        "\"operation\": \"cleanup-cache\", \"metadata\": {\"user\": \"ml-engineer\", "
        "\"project\": \"model-training\", \"experiment\": \"exp-7\"}, \"notify\": {\"emails\": "
        "[\"a@example.com\"], \"webhooks\": [\"https://hooks.example.com/ml\"]}, \"dispatch\": "
        "\"batch\"}";
    json_t *j = submit(body);
    char path[64];
    snprintf(path, sizeof(path), "/jobs/%s", th_str(j, "id"));
    json_decref(j);
    struct th_resp r;
    get_as(&r, reader, path);
    cr_assert_eq(r.status, 200, "%s", r.body);
    j = th_resp_json(&r);
    cr_assert_str_eq(th_str(j, "script_key"), "jobs/train.py");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "args"), 1)), "3");
    cr_assert_str_eq(th_str(json_object_get(j, "env"), "LEARNING_RATE"), "0.001");
    cr_assert_eq(json_integer_value(json_object_get(j, "timeout_seconds")), 3600);
    cr_assert_eq(json_integer_value(json_object_get(j, "max_attempts")), 3);
    cr_assert_str_eq(th_str(json_object_get(j, "metadata"), "experiment"), "exp-7");
    cr_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(j, "notify"), "webhooks"), 0)),
                     "https://hooks.example.com/ml");
    cr_assert_str_eq(th_str(j, "dispatch"), "batch");
    cr_assert(json_is_null(json_object_get(j, "batch_job_id")));
    cr_assert_eq(json_integer_value(json_object_get(j, "attempts")), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "history")), 1);
    json_decref(j);
    th_resp_dispose(&r);
}

Test(jobs, sql_metacharacters_are_stored_verbatim)
{
    const char *evil = "x'); DROP TABLE jobs; --";
    char body[512];
    snprintf(body, sizeof(body),
             "{\"script_key\": \"jobs/a.py\", \"env\": {\"NOTE\": \"%s\"}, \"metadata\": "
             "{\"user\": \"%s\", \"project\": \"p\\\\q\\\"r\"}, \"args\": [\"%s\", \"$1\"]}",
             evil, evil, evil);
    json_t *j = submit(body);
    cr_assert_str_eq(th_str(json_object_get(j, "env"), "NOTE"), evil);
    cr_assert_str_eq(th_str(json_object_get(j, "metadata"), "user"), evil);
    cr_assert_str_eq(th_str(json_object_get(j, "metadata"), "project"), "p\\q\"r");
    json_decref(j);
    char *stored = th_db_scalar(db, "SELECT meta_user FROM jobs");
    cr_assert_str_eq(stored, evil);
    free(stored);
    cr_assert_eq(job_count(), 1, "the table is still there");
}

/* ---- refusals store nothing ------------------------------------------------------------- */

static void expect_422_field(const char *body, const char *field)
{
    long before = job_count();
    struct th_resp r;
    post_as(&r, writer, "/jobs", body, NULL);
    th_assert_problem(&r, 422);
    json_t *j = th_resp_json(&r);
    json_t *errs = json_object_get(j, "errors");
    int found = 0;
    size_t i;
    json_t *e;
    json_array_foreach(errs, i, e)
    {
        found |= strcmp(th_str(e, "field"), field) == 0;
    }
    cr_assert(found, "%s: no error for %s in %s", body, field, r.body);
    json_decref(j);
    th_resp_dispose(&r);
    cr_assert_eq(job_count(), before, "nothing stored for %s", body);
}

Test(jobs, every_validation_rule_names_its_field_and_stores_nothing)
{
    struct {
        const char *body, *field;
    } cases[] = {
        {"{}", "script_key"},
        {"{\"script_key\": 7}", "script_key"},
        {"{\"script_key\": \"\"}", "script_key"},
        {"{\"script_key\": \"/etc/passwd\"}", "script_key"},
        {"{\"script_key\": \"jobs/../../etc/passwd\"}", "script_key"},
        {"{\"script_key\": \"jobs/./a.py\"}", "script_key"},
        {"{\"script_key\": \"jobs//a.py\"}", "script_key"},
        {"{\"script_key\": \"jobs/a.py/\"}", "script_key"},
        {"{\"script_key\": \"jobs/a b.py\"}", "script_key"},
        {"{\"script_key\": \"jobs/%2e%2e/a.py\"}", "script_key"},
        {"{\"script_key\": \"jobs\\\\a.py\"}", "script_key"},
        {"{\"script_key\": \"a.py\", \"compute_type\": \"tpu\"}", "compute_type"},
        {"{\"script_key\": \"a.py\", \"vcpus\": 0}", "vcpus"},
        {"{\"script_key\": \"a.py\", \"vcpus\": 257}", "vcpus"},
        {"{\"script_key\": \"a.py\", \"vcpus\": 2.5}", "vcpus"},
        {"{\"script_key\": \"a.py\", \"memory\": 0}", "memory"},
        {"{\"script_key\": \"a.py\", \"memory\": 2097153}", "memory"},
        {"{\"script_key\": \"a.py\", \"gpus\": 9}", "gpus"},
        {"{\"script_key\": \"a.py\", \"gpus\": -1}", "gpus"},
        {"{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", \"gpus\": 1}", "gpus"},
        {"{\"script_key\": \"a.py\", \"args\": \"--x\"}", "args"},
        {"{\"script_key\": \"a.py\", \"args\": [\"ok\", 3]}", "args[1]"},
        {"{\"script_key\": \"a.py\", \"env\": [1]}", "env"},
        {"{\"script_key\": \"a.py\", \"env\": {\"lower\": \"x\"}}", "env.lower"},
        {"{\"script_key\": \"a.py\", \"env\": {\"JOB_ID\": \"x\"}}", "env.JOB_ID"},
        {"{\"script_key\": \"a.py\", \"env\": {\"AWS_ACCESS_KEY_ID\": \"x\"}}",
         "env.AWS_ACCESS_KEY_ID"},
        {"{\"script_key\": \"a.py\", \"env\": {\"X\": 1}}", "env.X"},
        {"{\"script_key\": \"a.py\", \"timeout_seconds\": 59}", "timeout_seconds"},
        {"{\"script_key\": \"a.py\", \"max_attempts\": 0}", "max_attempts"},
        {"{\"script_key\": \"a.py\", \"max_attempts\": 11}", "max_attempts"},
        {"{\"script_key\": \"a.py\", \"operation\": \"rm -rf\"}", "operation"},
        {"{\"script_key\": \"a.py\", \"metadata\": [\"u\"]}", "metadata"},
        {"{\"script_key\": \"a.py\", \"metadata\": {\"user\": 5}}", "metadata.user"},
        {"{\"script_key\": \"a.py\", \"notify\": {\"emails\": [\"not-an-email\"]}}",
         "notify.emails[0]"},
        {"{\"script_key\": \"a.py\", \"notify\": {\"webhooks\": [\"http://evil.test/h\"]}}",
         "notify.webhooks[0]"},
        {"{\"script_key\": \"a.py\", \"notify\": {\"sms\": []}}", "notify.sms"},
        {"{\"script_key\": \"a.py\", \"dispatch\": \"lambda\"}", "dispatch"},
        {"{\"script_key\": \"a.py\", \"gpu\": 1}", "gpu"},
        {"{\"trigger_type\": \"cron\", \"data\": {\"script_key\": \"a.py\"}}", "trigger_type"},
        {"{\"trigger_type\": \"batch_job\"}", "data"},
        {"{\"trigger_type\": \"batch_job\", \"data\": {\"script_key\": \"a.py\", \"vcpus\": 0}}",
         "data.vcpus"},
        {"{\"trigger_type\": \"batch_job\", \"data\": {\"script_key\": \"a.py\"}, \"extra\": 1}",
         "extra"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++)
        expect_422_field(cases[i].body, cases[i].field);
}

Test(jobs, all_invalid_fields_are_reported_at_once)
{
    struct th_resp r;
    post_as(&r, writer, "/jobs",
            "{\"script_key\": \"../x\", \"vcpus\": 0, \"memory\": -1, \"dispatch\": \"x\", "
            "\"typo\": true}",
            NULL);
    th_assert_problem(&r, 422);
    json_t *j = th_resp_json(&r);
    cr_assert_eq(json_array_size(json_object_get(j, "errors")), 5, "%s", r.body);
    json_decref(j);
    th_resp_dispose(&r);
}

Test(jobs, malformed_huge_deep_and_mistyped_bodies_are_4xx_and_store_nothing)
{
    struct th_resp r;
    post_as(&r, writer, "/jobs", "{\"script_key\": ", NULL);
    th_assert_problem(&r, 400);
    th_resp_dispose(&r);
    post_as(&r, writer, "/jobs", "{\"script_key\": \"a.py\", \"script_key\": \"b.py\"}", NULL);
    th_assert_problem(&r, 400);
    th_resp_dispose(&r);
    post_as(&r, writer, "/jobs", "{\"script_key\": \"a\xc3\x28.py\"}", NULL);
    th_assert_problem(&r, 400);
    th_resp_dispose(&r);
    /* NUL inside strings never reaches validation: the parser refuses it. */
    post_as(&r, writer, "/jobs", "{\"script_key\": \"a.py\", \"args\": [\"a\\u0000b\"]}", NULL);
    th_assert_problem(&r, 400);
    th_resp_dispose(&r);

    char deep[512] = "{\"script_key\": \"a.py\", \"metadata\": ";
    size_t k = strlen(deep);
    for (int i = 0; i < 100; i++)
        deep[k++] = '[';
    for (int i = 0; i < 100; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    deep[k] = '\0';
    post_as(&r, writer, "/jobs", deep, NULL);
    th_assert_problem(&r, 400);
    th_resp_dispose(&r);

    size_t n = 2 * 1024 * 1024;
    char *huge = malloc(n + 1);
    memset(huge, ' ', n);
    memcpy(huge, "{\"script_key\": \"a.py\"", 21);
    huge[n - 1] = '}';
    huge[n] = '\0';
    post_as(&r, writer, "/jobs", huge, NULL);
    th_assert_problem(&r, 413);
    th_resp_dispose(&r);
    free(huge);

    char url[256];
    url_of(url, sizeof(url), "/jobs");
    const char *h[] = {"Content-Type: text/plain", writer, NULL};
    th_http(&r, "POST", url, h, "{\"script_key\": \"a.py\"}", 22);
    th_assert_problem(&r, 415);
    th_resp_dispose(&r);
    cr_assert_eq(job_count(), 0);
}

/* ---- idempotency ------------------------------------------------------------------------ */

static const char one_job[] = "{\"script_key\": \"jobs/once.py\", \"compute_type\": \"cpu\"}";

Test(jobs, idempotency_key_replays_the_first_answer)
{
    struct th_resp a, b;
    post_as(&a, writer, "/jobs", one_job, "Idempotency-Key: order-42");
    cr_assert_eq(a.status, 202);
    char *replayed = th_resp_header(&a, "Idempotent-Replayed");
    cr_assert_null(replayed);
    /* Same JSON, different spacing and key order: the same request. */
    post_as(&b, writer, "/jobs", "{ \"compute_type\":\"cpu\",  \"script_key\":\"jobs/once.py\" }",
            "Idempotency-Key: order-42");
    cr_assert_eq(b.status, 202, "%s", b.body);
    replayed = th_resp_header(&b, "Idempotent-Replayed");
    cr_assert(replayed != NULL && strcmp(replayed, "true") == 0);
    free(replayed);
    cr_assert_str_eq(a.body, b.body, "the original body again");
    char *la = th_resp_header(&a, "Location"), *lb = th_resp_header(&b, "Location");
    cr_assert_str_eq(la, lb);
    free(la);
    free(lb);
    th_resp_dispose(&a);
    th_resp_dispose(&b);
    cr_assert_eq(job_count(), 1);
}

Test(jobs, idempotency_key_with_a_different_body_is_422)
{
    struct th_resp a, b;
    post_as(&a, writer, "/jobs", one_job, "Idempotency-Key: k1");
    cr_assert_eq(a.status, 202);
    post_as(&b, writer, "/jobs", "{\"script_key\": \"jobs/other.py\"}", "Idempotency-Key: k1");
    th_assert_problem(&b, 422);
    cr_assert(strstr(b.body, "Idempotency-Key") != NULL, "%s", b.body);
    th_resp_dispose(&a);
    th_resp_dispose(&b);
    cr_assert_eq(job_count(), 1);
}

Test(jobs, idempotency_key_in_flight_is_409)
{
    /* Play the first request: hold the key's lock the way the gateway does. */
    char *key_id = th_db_scalar(db, "SELECT id FROM api_keys WHERE name = 'writer'");
    cr_assert(key_id != NULL);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT pg_advisory_lock(hashtextextended('%s' || chr(31) || 'busy-key', 0))", key_id);
    free(key_id);
    PGconn *holder = PQconnectdb(db);
    PGresult *pr = PQexec(holder, sql);
    cr_assert_eq(PQresultStatus(pr), PGRES_TUPLES_OK);
    PQclear(pr);
    struct th_resp r;
    post_as(&r, writer, "/jobs", one_job, "Idempotency-Key: busy-key");
    th_assert_problem(&r, 409);
    th_resp_dispose(&r);
    /* The first request ends (unlock is synchronous; a closing session's
     * locks are released a moment after the client has gone). */
    PQclear(PQexec(holder, "SELECT pg_advisory_unlock_all()"));
    PQfinish(holder);
    post_as(&r, writer, "/jobs", one_job, "Idempotency-Key: busy-key");
    cr_assert_eq(r.status, 202, "%s", r.body);
    th_resp_dispose(&r);
}

Test(jobs, idempotency_keys_belong_to_one_api_key_and_expire)
{
    struct th_resp a, b, c;
    post_as(&a, writer, "/jobs", one_job, "Idempotency-Key: shared");
    post_as(&b, admin, "/jobs", one_job, "Idempotency-Key: shared");
    cr_assert_eq(a.status, 202);
    cr_assert_eq(b.status, 202);
    cr_assert_str_neq(a.body, b.body, "another API key's key is another key");
    cr_assert_eq(job_count(), 2);
    cr_assert_eq(th_db_exec(db, "UPDATE idempotency_keys SET created_at = now() - interval "
                                "'25 hours'"),
                 0);
    post_as(&c, writer, "/jobs", one_job, "Idempotency-Key: shared");
    cr_assert_eq(c.status, 202);
    char *rep = th_resp_header(&c, "Idempotent-Replayed");
    cr_assert_null(rep, "expired: a new job");
    cr_assert_eq(job_count(), 3);
    th_resp_dispose(&a);
    th_resp_dispose(&b);
    th_resp_dispose(&c);
}

Test(jobs, a_malformed_idempotency_key_is_400)
{
    char longkey[300] = "Idempotency-Key: ";
    memset(longkey + 17, 'k', 256);
    longkey[273] = '\0';
    struct th_resp r;
    post_as(&r, writer, "/jobs", one_job, longkey);
    th_assert_problem(&r, 400);
    th_resp_dispose(&r);
    cr_assert_eq(job_count(), 0);
}

/* ---- list, get, cancel ------------------------------------------------------------------ */

static void ids_of(char ids[][37], size_t *n, const struct th_resp *r, char *cursor,
                   size_t cursor_len)
{
    json_t *j = th_resp_json(r);
    cr_assert(j != NULL, "%s", r->body);
    json_t *items = json_object_get(j, "items");
    *n = json_array_size(items);
    for (size_t i = 0; i < *n; i++) {
        json_t *it = json_array_get(items, i);
        cr_assert_null(json_object_get(it, "history"), "lists omit history");
        snprintf(ids[i], 37, "%s", th_str(it, "id"));
    }
    json_t *nc = json_object_get(j, "next_cursor");
    snprintf(cursor, cursor_len, "%s", json_is_string(nc) ? json_string_value(nc) : "");
    json_decref(j);
}

Test(jobs, pages_are_newest_first_and_stable_when_jobs_arrive_between_pages)
{
    char made[5][37];
    for (size_t i = 0; i < 5; i++) {
        json_t *j = submit(one_job);
        snprintf(made[i], 37, "%s", th_str(j, "id"));
        json_decref(j);
    }
    struct th_resp r;
    char ids[10][37], cursor[128], path[256];
    size_t n;
    get_as(&r, reader, "/jobs?limit=2");
    cr_assert_eq(r.status, 200, "%s", r.body);
    ids_of(ids, &n, &r, cursor, sizeof(cursor));
    th_resp_dispose(&r);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ids[0], made[4]);
    cr_assert_str_eq(ids[1], made[3]);
    cr_assert(cursor[0] != '\0');

    for (size_t i = 0; i < 2; i++) /* newcomers must not shift the next page */
        json_decref(submit(one_job));

    snprintf(path, sizeof(path), "/jobs?limit=2&cursor=%s", cursor);
    get_as(&r, reader, path);
    ids_of(ids, &n, &r, cursor, sizeof(cursor));
    th_resp_dispose(&r);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ids[0], made[2]);
    cr_assert_str_eq(ids[1], made[1]);

    snprintf(path, sizeof(path), "/jobs?limit=2&cursor=%s", cursor);
    get_as(&r, reader, path);
    ids_of(ids, &n, &r, cursor, sizeof(cursor));
    th_resp_dispose(&r);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ids[0], made[0]);
    cr_assert_str_eq(cursor, "", "no next page");
}

Test(jobs, filters_select_by_status_compute_type_metadata_and_creation_time)
{
    json_decref(submit("{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", \"metadata\": "
                       "{\"user\": \"ann\", \"project\": \"p1\", \"experiment\": \"e1\"}}"));
    json_decref(submit("{\"script_key\": \"b.py\", \"metadata\": {\"user\": \"bob\", "
                       "\"project\": \"p1\"}}"));
    json_t *c = submit("{\"script_key\": \"c.py\", \"metadata\": {\"user\": \"bob\"}}");
    char cancel[80];
    snprintf(cancel, sizeof(cancel), "/jobs/%s/cancel", th_str(c, "id"));
    json_decref(c);
    struct th_resp r;
    post_as(&r, writer, cancel, NULL, NULL);
    cr_assert_eq(r.status, 202);
    th_resp_dispose(&r);

    struct {
        const char *query;
        size_t want;
    } cases[] = {
        {"/jobs?compute_type=cpu", 1},
        {"/jobs?compute_type=gpu", 2},
        {"/jobs?user=bob", 2},
        {"/jobs?project=p1", 2},
        {"/jobs?experiment=e1", 1},
        {"/jobs?user=bob&project=p1", 1},
        {"/jobs?status=CANCELLED", 1},
        {"/jobs?status=QUEUED", 2},
        {"/jobs?created_after=2000-01-01T00:00:00Z", 3},
        {"/jobs?created_before=2000-01-01T00:00:00Z", 0},
        {"/jobs?created_after=2000-01-01T00:00:00%2B02:00&created_before=2999-01-01T00:00:00.5Z",
         3},
        {"/jobs?user=nobody", 0},
        /* Offsets past PostgreSQL's ±15:59 and years it does not have (0, past 9999
         * once in UTC) are still RFC 3339 instants. */
        {"/jobs?created_before=0360-09-04T02:30:26-18:40", 0},
        {"/jobs?created_after=0000-01-01T00:00:00Z", 3},
        {"/jobs?created_before=9999-12-31T23:59:59-23:59", 3},
        {"/jobs?created_after=2000-01-01T00:00:00.123456789%2B23:59", 3},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(cases); i++) {
        char ids[10][37], cursor[128];
        size_t n;
        get_as(&r, reader, cases[i].query);
        cr_assert_eq(r.status, 200, "%s: %s", cases[i].query, r.body);
        ids_of(ids, &n, &r, cursor, sizeof(cursor));
        cr_assert_eq(n, cases[i].want, "%s gave %zu", cases[i].query, n);
        th_resp_dispose(&r);
    }
}

Test(jobs, bad_query_parameters_are_400_naming_each)
{
    struct th_resp r;
    get_as(&r, reader,
           "/jobs?limit=0&status=DONE&compute_type=tpu&created_after=yesterday&cursor=zzz&"
           "colour=red");
    th_assert_problem(&r, 400);
    json_t *j = th_resp_json(&r);
    cr_assert_eq(json_array_size(json_object_get(j, "errors")), 6, "%s", r.body);
    json_decref(j);
    th_resp_dispose(&r);
    get_as(&r, reader, "/jobs?limit=201");
    th_assert_problem(&r, 400);
    th_resp_dispose(&r);
}

Test(jobs, unknown_and_malformed_job_ids_are_404)
{
    struct th_resp r;
    get_as(&r, reader, "/jobs/01890000-0000-7000-8000-000000000000");
    th_assert_problem(&r, 404);
    th_resp_dispose(&r);
    get_as(&r, reader, "/jobs/not-a-uuid");
    th_assert_problem(&r, 404);
    th_resp_dispose(&r);
    post_as(&r, writer, "/jobs/01890000-0000-7000-8000-000000000000/cancel", NULL, NULL);
    th_assert_problem(&r, 404);
    th_resp_dispose(&r);
}

Test(jobs, cancel_before_dispatch_ends_the_job_and_a_second_cancel_is_409)
{
    json_t *j = submit(one_job);
    char path[80];
    snprintf(path, sizeof(path), "/jobs/%s/cancel", th_str(j, "id"));
    json_decref(j);
    struct th_resp r;
    post_as(&r, writer, path, NULL, NULL);
    cr_assert_eq(r.status, 202, "%s", r.body);
    j = th_resp_json(&r);
    cr_assert_str_eq(th_str(j, "status"), "CANCELLED");
    cr_assert(json_is_string(json_object_get(j, "stopped_at")));
    json_t *h = json_object_get(j, "history");
    cr_assert_eq(json_array_size(h), 2);
    cr_assert_str_eq(th_str(json_array_get(h, 1), "status"), "CANCELLED");
    json_decref(j);
    th_resp_dispose(&r);
    post_as(&r, writer, path, NULL, NULL);
    th_assert_problem(&r, 409);
    th_resp_dispose(&r);
}

/* ---- auth ------------------------------------------------------------------------------- */

Test(jobs, no_unknown_and_malformed_keys_are_401_with_a_challenge)
{
    const char *auths[] = {NULL, "Authorization: Bearer mlgw_not-a-real-key",
                           "Authorization: Basic dXNlcjpwYXNz", "Authorization: Bearer "};
    for (size_t i = 0; i < GW_ARRAY_LEN(auths); i++) {
        struct th_resp r;
        get_as(&r, auths[i], "/jobs");
        th_assert_problem(&r, 401);
        char *ch = th_resp_header(&r, "WWW-Authenticate");
        cr_assert(ch != NULL && strncmp(ch, "Bearer", 6) == 0);
        free(ch);
        th_resp_dispose(&r);
    }
}

Test(jobs, a_key_without_the_scope_is_403_and_admin_may_do_everything)
{
    struct th_resp r;
    post_as(&r, reader, "/jobs", one_job, NULL);
    th_assert_problem(&r, 403);
    th_resp_dispose(&r);
    cr_assert_eq(job_count(), 0);
    post_as(&r, admin, "/jobs", one_job, NULL);
    cr_assert_eq(r.status, 202);
    th_resp_dispose(&r);
    get_as(&r, admin, "/jobs");
    cr_assert_eq(r.status, 200);
    th_resp_dispose(&r);
}

Test(jobs, a_revoked_key_is_refused_and_use_is_recorded)
{
    struct th_resp r;
    get_as(&r, reader, "/jobs");
    cr_assert_eq(r.status, 200);
    th_resp_dispose(&r);
    char *used = th_db_scalar(db, "SELECT last_used_at IS NOT NULL FROM api_keys WHERE name = "
                                  "'reader'");
    cr_assert_str_eq(used, "t", "last use recorded");
    free(used);
    const char *args[] = {"keys", "revoke", NULL, NULL};
    char *prefix = th_db_scalar(db, "SELECT prefix FROM api_keys WHERE name = 'reader'");
    args[2] = prefix;
    cr_assert_eq(th_gw_run(NULL, args, db, NULL, 30), 0);
    free(prefix);
    get_as(&r, reader, "/jobs");
    th_assert_problem(&r, 401);
    cr_assert(strstr(r.body, "revoked") != NULL);
    th_resp_dispose(&r);
}

Test(jobs, keys_cli_refuses_bad_input)
{
    const char *bad_scope[] = {"keys", "create", "--name", "x", "--scopes", "jobs:delete", NULL};
    cr_assert_eq(th_gw_run(NULL, bad_scope, db, NULL, 30), 2);
    const char *no_name[] = {"keys", "create", "--scopes", "admin", NULL};
    cr_assert_eq(th_gw_run(NULL, no_name, db, NULL, 30), 2);
    const char *unknown[] = {"keys", "revoke", "key_000000000000", NULL};
    cr_assert_eq(th_gw_run(NULL, unknown, db, NULL, 30), 1);
    char *n = th_db_scalar(db, "SELECT count(*) FROM api_keys");
    cr_assert_str_eq(n, "3");
    free(n);
    char *h = th_db_scalar(db, "SELECT count(*) FROM api_keys WHERE length(key_hash) = 32");
    cr_assert_str_eq(h, "3", "only hashes are stored");
    free(h);
}

/* ---- CORS ------------------------------------------------------------------------------- */

Test(jobs, cors_preflight_needs_no_key_and_allowed_origins_get_headers)
{
    char url[256];
    url_of(url, sizeof(url), "/jobs");
    const char *pre[] = {"Origin: https://app.example.test", "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: authorization, content-type", NULL};
    struct th_resp r;
    th_http(&r, "OPTIONS", url, pre, NULL, 0);
    cr_assert_eq(r.status, 204);
    char *ao = th_resp_header(&r, "Access-Control-Allow-Origin");
    char *am = th_resp_header(&r, "Access-Control-Allow-Methods");
    char *ah = th_resp_header(&r, "Access-Control-Allow-Headers");
    cr_assert_str_eq(ao, "https://app.example.test");
    cr_assert(am && strstr(am, "POST") && strstr(am, "GET"));
    cr_assert(ah && strstr(ah, "Authorization") && strstr(ah, "Idempotency-Key"));
    free(ao);
    free(am);
    free(ah);
    th_resp_dispose(&r);

    const char *get[] = {"Origin: https://app.example.test", reader, NULL};
    th_http(&r, "GET", url, get, NULL, 0);
    ao = th_resp_header(&r, "Access-Control-Allow-Origin");
    cr_assert_str_eq(ao, "https://app.example.test");
    free(ao);
    th_resp_dispose(&r);

    const char *evil[] = {"Origin: https://evil.example.test", reader, NULL};
    th_http(&r, "GET", url, evil, NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_null(th_resp_header(&r, "Access-Control-Allow-Origin"));
    th_resp_dispose(&r);
}
