/*
 * GET /jobs/{id}/logs over real HTTP against the real binary: a local job's
 * log file (written here, in the gateway's MLGW_LOCAL_ROOT, while nothing
 * runs the job) and a Batch job's CloudWatch Logs stream in moto, paged with
 * limit and cursor to the end; invalid UTF-8, lines still being written,
 * polling a job that has not ended; bad cursors and limits, auth and scopes,
 * unknown jobs; CloudWatch refusing (502) or down (503), via a scripted peer.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../harness/harness.h"
#include "../harness/mock_http.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"
#include "common/time.h"

#define SECRET "logs-callback-secret"

static char db[1024], root[64];
static char reader[128], writer_only[128];
static char env_root[128], env_endpoint[300], env_group[300];
static struct th_gw gw;
static int gw_started;

static void bearer(char *out, const char *name, const char *scopes)
{
    char key[96];
    const char *args[] = {"--name", name, "--scopes", scopes, "--team", "ml", NULL};
    th_key_create_args(key, sizeof(key), db, args);
    snprintf(out, 128, "Authorization: Bearer %s", key);
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    bearer(reader, "reader", "jobs:read");
    bearer(writer_only, "writer-only", "jobs:write");
    snprintf(root, sizeof(root), "/tmp/mlgw-logs-XXXXXX");
    cr_assert(mkdtemp(root) != NULL);
    char logs[128];
    snprintf(logs, sizeof(logs), "%s/logs", root);
    cr_assert_eq(mkdir(logs, 0700), 0);
    snprintf(env_root, sizeof(env_root), "MLGW_LOCAL_ROOT=%s", root);
    gw_started = 0;
}

static void teardown(void)
{
    if (gw_started)
        cr_expect_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(logs, .init = setup, .fini = teardown);

/* The gateway: nothing runs jobs, callbacks accepted, AWS at endpoint (moto
 * unless a test points CloudWatch Logs elsewhere with more). */
static void start_gateway(const char *more)
{
    snprintf(env_endpoint, sizeof(env_endpoint), "AWS_ENDPOINT_URL=%s", th_moto_url());
    snprintf(env_group, sizeof(env_group), "MLGW_BATCH_LOG_GROUP=%s",
             th_moto_resource("log_group"));
    const char *env[] = {"MLGW_DISPATCH_WORKERS=0",
                         "MLGW_AUTH_CACHE_SECONDS=0",
                         "MLGW_CALLBACK_SECRET=" SECRET,
                         env_root,
                         env_endpoint,
                         env_group,
                         "AWS_REGION=us-east-1",
                         "AWS_ACCESS_KEY_ID=testing",
                         "AWS_SECRET_ACCESS_KEY=testing",
                         "AWS_EC2_METADATA_DISABLED=true",
                         "MLGW_AWS_TIMEOUT_MS=2000",
                         more,
                         NULL};
    th_gw_start(&gw, db, env);
    gw_started = 1;
}

/* ---- HTTP helpers ------------------------------------------------------- */

static void get_logs(struct th_resp *r, const char *auth, const char *id, const char *query)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s/jobs/%s/logs%s%s", gw.base, id, query ? "?" : "",
             query ? query : "");
    const char *h[] = {auth, NULL};
    cr_assert_eq(th_http(r, "GET", url, h, NULL, 0), 0);
}

/* GET with limit and (when not NULL) cursor; asserts 200 and the page's
 * shape, returns the body (json_decref it). */
static json_t *page(const char *id, int limit, const char *cursor)
{
    char q[1200];
    snprintf(q, sizeof(q), "limit=%d%s%s", limit, cursor ? "&cursor=" : "", cursor ? cursor : "");
    struct th_resp r;
    get_logs(&r, reader, id, q);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = th_resp_json(&r);
    th_resp_dispose(&r);
    cr_assert(json_is_array(json_object_get(j, "items")));
    json_t *next = json_object_get(j, "next_cursor");
    cr_assert(json_is_null(next) || (json_is_string(next) && json_string_length(next) > 0));
    return j;
}

static const char *next_cursor(const json_t *p)
{
    return json_string_value(json_object_get(p, "next_cursor"));
}

static const char *item(const json_t *p, size_t i, const char *field)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(p, "items"), i), field));
}

static size_t count(const json_t *p)
{
    return json_array_size(json_object_get(p, "items"));
}

static void local_job(char id[37])
{
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs", gw.base);
    char auth[128];
    bearer(auth, "submitter", "jobs:read,jobs:write");
    const char *h[] = {"Content-Type: application/json", auth, NULL};
    const char *body = "{\"script_key\": \"jobs/train.py\", \"dispatch\": \"local\"}";
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, body, strlen(body)), 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *j = th_resp_json(&r);
    snprintf(id, 37, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    th_resp_dispose(&r);
}

static void set_status(const char *id, const char *status)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "UPDATE jobs SET status = '%s' WHERE id = '%s'", status, id);
    cr_assert_eq(th_db_exec(db, sql), 0);
}

static void write_log(const char *id, const char *mode, const char *data, size_t n)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/logs/%s.log", root, id);
    FILE *f = fopen(path, mode);
    cr_assert(f != NULL, "%s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

#define WRITE_LOG(id, mode, s) write_log(id, mode, s, sizeof(s) - 1)

/* Every item from cursor on, following next_cursor until a page comes back
 * empty (a job that has not ended always has a cursor) or without a cursor.
 * *last gets the last cursor seen (NULL when the last page had none). */
static json_t *read_all(const char *id, int limit, char *last, size_t lastlen, int *pages)
{
    json_t *all = json_array();
    char cursor[1024] = "";
    *pages = 0;
    for (int guard = 0; guard < 50; guard++) {
        json_t *p = page(id, limit, cursor[0] ? cursor : NULL);
        (*pages)++;
        cr_assert_leq(count(p), (size_t)limit);
        json_array_extend(all, json_object_get(p, "items"));
        const char *next = next_cursor(p);
        size_t n = count(p);
        if (next != NULL)
            snprintf(cursor, sizeof(cursor), "%s", next);
        json_decref(p);
        if (next == NULL) {
            snprintf(last, lastlen, "%s", "");
            return all;
        }
        if (n == 0) {
            snprintf(last, lastlen, "%s", cursor);
            return all;
        }
    }
    cr_assert_fail("the pages never ended");
    return NULL;
}

/* ---- local jobs ------------------------------------------------------------------- */

Test(logs, a_local_jobs_file_is_paged_with_limit_and_cursor_and_polled_until_the_job_ends)
{
    start_gateway(NULL);
    char id[37];
    local_job(id);

    /* Nothing written yet: no lines, but a cursor to poll with. */
    json_t *p = page(id, 10, NULL);
    cr_expect_eq(count(p), 0);
    cr_expect(next_cursor(p) != NULL, "a queued job's log may still grow");
    json_decref(p);

    WRITE_LOG(id, "wb",
              "2026-11-28T23:43:37.123Z epoch 1 loss 0.91\n"
              "2026-11-28T23:43:38.000Z Traceback (most recent call last):\n"
              "  File \"train.py\", line 7, in <module>\n"
              "2026-11-28T23:43:39.250Z caf\xc3\xa9 \xff\xfe bytes\n"
              "2026-11-28T23:43:40.000Z epoch 2 loss 0.42\n"
              "2026-11-28T23:43:41.000Z half written");
    char last[1024];
    int pages = 0;
    json_t *all = read_all(id, 2, last, sizeof(last), &pages);
    cr_assert_eq(json_array_size(all), 5, "the unfinished last line is not served yet");
    cr_expect_eq(pages, 4, "2 + 2 + 1, then an empty page");
    static const char *const want[][2] = {
        {"2026-11-28T23:43:37.123Z", "epoch 1 loss 0.91"},
        {"2026-11-28T23:43:38.000Z", "Traceback (most recent call last):"},
        {"2026-11-28T23:43:38.000Z", "  File \"train.py\", line 7, in <module>"},
        {"2026-11-28T23:43:39.250Z", "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd bytes"},
        {"2026-11-28T23:43:40.000Z", "epoch 2 loss 0.42"},
    };
    for (size_t i = 0; i < 5; i++) {
        const json_t *it = json_array_get(all, i);
        cr_expect_str_eq(json_string_value(json_object_get(it, "at")), want[i][0], "item %zu", i);
        cr_expect_str_eq(json_string_value(json_object_get(it, "message")), want[i][1], "item %zu",
                         i);
    }
    json_decref(all);
    cr_assert(last[0] != '\0', "a running job's last page still has a cursor");

    /* The job goes on writing: the saved cursor gets exactly the new lines. */
    WRITE_LOG(id, "ab", " at last\n2026-11-28T23:43:42.000Z done\n");
    p = page(id, 10, last);
    cr_assert_eq(count(p), 2);
    cr_expect_str_eq(item(p, 0, "message"), "half written at last");
    cr_expect_str_eq(item(p, 1, "message"), "done");
    cr_expect(next_cursor(p) != NULL);
    json_decref(p);

    /* Ended: the whole file in pages of 4, and no cursor after the last. */
    set_status(id, "SUCCEEDED");
    p = page(id, 4, NULL);
    cr_assert_eq(count(p), 4);
    cr_assert(next_cursor(p) != NULL, "3 more lines wait");
    char cursor[1024];
    snprintf(cursor, sizeof(cursor), "%s", next_cursor(p));
    json_decref(p);
    p = page(id, 4, cursor);
    cr_expect_eq(count(p), 3);
    cr_expect_str_eq(item(p, 2, "message"), "done");
    cr_expect(json_is_null(json_object_get(p, "next_cursor")), "an ended job read to the end");
    json_decref(p);

    /* The default page holds all seven. */
    struct th_resp r;
    get_logs(&r, reader, id, NULL);
    cr_assert_eq(r.status, 200);
    json_t *j = th_resp_json(&r);
    cr_expect_eq(count(j), 7);
    cr_expect(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    th_resp_dispose(&r);
}

Test(logs, an_ended_local_job_without_a_log_file_has_no_lines_and_no_cursor)
{
    start_gateway(NULL);
    char id[37];
    local_job(id);
    set_status(id, "CANCELLED");
    json_t *p = page(id, 50, NULL);
    cr_expect_eq(count(p), 0);
    cr_expect(json_is_null(json_object_get(p, "next_cursor")));
    json_decref(p);
}

static void expect_400_on(const char *id, const char *query, const char *field)
{
    struct th_resp r;
    get_logs(&r, reader, id, query);
    th_assert_problem(&r, 400);
    json_t *j = th_resp_json(&r);
    json_t *e = json_array_get(json_object_get(j, "errors"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(e, "field")), field, "%s: %s", query,
                     r.body);
    json_decref(j);
    th_resp_dispose(&r);
}

static void b64url(char *out, const char *raw)
{
    gw_base64url(out, (const unsigned char *)raw, strlen(raw));
}

Test(logs, bad_limits_cursors_and_parameters_are_400_naming_the_parameter)
{
    start_gateway(NULL);
    char id[37];
    local_job(id);
    WRITE_LOG(id, "wb", "2026-11-28T23:43:37.123Z one\n2026-11-28T23:43:38.000Z two\n");
    expect_400_on(id, "limit=0", "limit");
    expect_400_on(id, "limit=201", "limit");
    expect_400_on(id, "limit=ten", "limit");
    expect_400_on(id, "cursor=not-a-cursor", "cursor");
    expect_400_on(id, "level=debug", "level");

    char c[256], q[300];
    b64url(c, "l1:5:-1"); /* inside the first line */
    snprintf(q, sizeof(q), "cursor=%s", c);
    expect_400_on(id, q, "cursor");
    b64url(c, "l1:5000:-1"); /* past the end */
    snprintf(q, sizeof(q), "cursor=%s", c);
    expect_400_on(id, q, "cursor");
    b64url(c, "l1:29"); /* no time part */
    snprintf(q, sizeof(q), "cursor=%s", c);
    expect_400_on(id, q, "cursor");
    b64url(c, "c1:f/00000000000000000000000000000000000000000000000000000001");
    snprintf(q, sizeof(q), "cursor=%s", c);
    expect_400_on(id, q, "cursor"); /* a CloudWatch cursor for a local job */

    /* The same shape at a line's start is a cursor this API could issue. */
    b64url(c, "l1:29:-1");
    json_t *p = page(id, 5, c);
    cr_assert_eq(count(p), 1);
    cr_expect_str_eq(item(p, 0, "message"), "two");
    json_decref(p);
}

Test(logs, auth_scope_and_unknown_jobs)
{
    start_gateway(NULL);
    char id[37];
    local_job(id);
    struct th_resp r;
    get_logs(&r, NULL, id, NULL);
    th_assert_problem(&r, 401);
    th_resp_dispose(&r);
    get_logs(&r, "Authorization: Bearer mlgw_not_a_key", id, NULL);
    th_assert_problem(&r, 401);
    th_resp_dispose(&r);
    get_logs(&r, writer_only, id, NULL);
    th_assert_problem(&r, 403);
    th_resp_dispose(&r);
    get_logs(&r, reader, "01939f4e-0000-7000-8000-000000000000", NULL);
    th_assert_problem(&r, 404);
    th_resp_dispose(&r);
    get_logs(&r, reader, "not-a-job-id", NULL);
    th_assert_problem(&r, 404);
    th_resp_dispose(&r);
}

/* ---- Batch jobs: CloudWatch Logs in moto ------------------------------------------ */

static void unique(char *out, size_t n, const char *prefix)
{
    unsigned char raw[6];
    char hex[13];
    cr_assert_eq(gw_random_bytes(raw, sizeof(raw)), GW_OK);
    gw_hex(hex, raw, sizeof(raw));
    snprintf(out, n, "%s%s", prefix, hex);
}

/* Puts messages into a new stream of the moto log group; returns their
 * timestamps (json_decref). */
static json_t *put_events(const char *stream, const char *const *messages)
{
    char cmd[4096];
    int n =
        snprintf(cmd, sizeof(cmd), "'%s/bin/python' '%s' '%s' '%s' '%s'",
                 getenv("MLGW_VENV") && getenv("MLGW_VENV")[0] ? getenv("MLGW_VENV") : "build/venv",
                 th_source_path("tests/tools/logs_put.py"), th_moto_url(),
                 th_moto_resource("log_group"), stream);
    for (size_t i = 0; messages[i] != NULL; i++)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s'", messages[i]);
    cr_assert_lt((size_t)n, sizeof(cmd));
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    char buf[4096];
    size_t got = fread(buf, 1, sizeof(buf) - 1, p);
    buf[got] = '\0';
    cr_assert_eq(pclose(p), 0, "logs_put.py failed: %s", buf);
    json_t *stamps = json_loads(buf, 0, NULL);
    cr_assert(json_is_array(stamps), "%s", buf);
    return stamps;
}

/* Makes a Batch job known through its state-change callback; stream may be
 * NULL (no logStreamName yet). Writes the gateway's job id to id. */
static void batch_event(char id[37], const char *batch_id, const char *status, const char *stream)
{
    char ev_id[40], stream_field[300] = "";
    unique(ev_id, sizeof(ev_id), "ev-");
    if (stream != NULL)
        snprintf(stream_field, sizeof(stream_field), ", \"logStreamName\": \"%s\"", stream);
    int done = strcmp(status, "SUCCEEDED") == 0;
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"version\": \"0\", \"id\": \"%s\", \"detail-type\": \"Batch Job State Change\", "
             "\"source\": \"aws.batch\", \"account\": \"123456789012\", \"time\": "
             "\"2026-11-28T20:01:50Z\", \"region\": \"us-east-1\", \"resources\": [], \"detail\": "
             "{\"jobArn\": \"arn:aws:batch:us-east-1:123456789012:job/%s\", \"jobName\": "
             "\"console-job\", \"jobId\": \"%s\", \"jobQueue\": "
             "\"arn:aws:batch:us-east-1:123456789012:job-queue/ml-cpu-job-queue\", \"status\": "
             "\"%s\", \"attempts\": [], \"createdAt\": 1764360100000, \"startedAt\": "
             "1764360105000, %s \"container\": {\"vcpus\": 2, \"memory\": 4096, \"environment\": "
             "[{\"name\": \"SCRIPT_KEY\", \"value\": \"jobs/console.py\"}]%s%s}, \"tags\": {}}}",
             ev_id, batch_id, batch_id, status, done ? "\"stoppedAt\": 1764360110000," : "",
             done ? ", \"exitCode\": 0" : "", stream_field);
    char url[256];
    snprintf(url, sizeof(url), "%s/events/batch", gw.base);
    const char *h[] = {"Content-Type: application/json", "X-Callback-Key: " SECRET, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, body, strlen(body)), 0);
    cr_assert(r.status == 200 || r.status == 201 || r.status == 202, "%ld %s", r.status, r.body);
    json_t *j = th_resp_json(&r);
    const char *job_id = json_string_value(json_object_get(j, "job_id"));
    cr_assert(job_id != NULL, "%s", r.body);
    snprintf(id, 37, "%s", job_id);
    /* A job learnt of from a callback belongs to no team; this one is handed
     * to the test keys' team, as an operator would. */
    char sql[160];
    snprintf(sql, sizeof(sql), "UPDATE jobs SET team = 'ml' WHERE id = '%s'", id);
    cr_assert_eq(th_db_exec(db, sql), 0);
    json_decref(j);
    th_resp_dispose(&r);
}

Test(logs, a_batch_jobs_cloudwatch_stream_is_paged_with_forward_tokens)
{
    start_gateway(NULL);
    char stream[96], batch_id[64], id[37];
    unique(stream, sizeof(stream), "ml-job/default/");
    unique(batch_id, sizeof(batch_id), "batch-");
    const char *const messages[] = {"loading data",     "epoch 1 loss 0.9",
                                    "epoch 2 loss 0.5", "caf\xc3\xa9 \xe2\x82\xac",
                                    "saved model",      NULL};
    json_t *stamps = put_events(stream, messages);
    batch_event(id, batch_id, "RUNNING", stream);

    char last[1024];
    int pages = 0;
    json_t *all = read_all(id, 2, last, sizeof(last), &pages);
    cr_assert_eq(json_array_size(all), 5);
    cr_expect_eq(pages, 4, "2 + 2 + 1, then the same token: at the end for now");
    for (size_t i = 0; i < 5; i++) {
        const json_t *it = json_array_get(all, i);
        char want_at[32];
        gw_format_time_ms(want_at, sizeof(want_at),
                          (int64_t)json_integer_value(json_array_get(stamps, i)));
        cr_expect_str_eq(json_string_value(json_object_get(it, "message")), messages[i]);
        cr_expect_str_eq(json_string_value(json_object_get(it, "at")), want_at);
    }
    json_decref(all);
    json_decref(stamps);
    cr_assert(last[0] != '\0', "a running job keeps a cursor");

    /* The job ends: from the saved cursor, nothing new, and no cursor. */
    batch_event(id, batch_id, "SUCCEEDED", stream);
    json_t *p = page(id, 2, last);
    cr_expect_eq(count(p), 0);
    cr_expect(json_is_null(json_object_get(p, "next_cursor")));
    json_decref(p);

    /* Read again from the start, now that it has ended: the same lines, then
     * a page at the same token that ends the cursors. */
    all = read_all(id, 2, last, sizeof(last), &pages);
    cr_expect_eq(json_array_size(all), 5);
    cr_expect_eq(pages, 4);
    cr_expect_str_eq(last, "", "the last page has no cursor");
    json_decref(all);

    /* A token CloudWatch does not know is a bad cursor. */
    char c[128], q[200];
    b64url(c, "c1:zz");
    snprintf(q, sizeof(q), "cursor=%s", c);
    expect_400_on(id, q, "cursor");
    b64url(c, "l1:0:-1");
    snprintf(q, sizeof(q), "cursor=%s", c);
    expect_400_on(id, q, "cursor"); /* a local cursor for a Batch job */
}

Test(logs, a_batch_job_without_a_stream_yet_or_with_one_cloudwatch_lacks_has_no_lines)
{
    start_gateway(NULL);
    char batch_id[64], id[37], stream[96];
    unique(batch_id, sizeof(batch_id), "batch-");
    batch_event(id, batch_id, "RUNNING", NULL);
    json_t *p = page(id, 10, NULL);
    cr_expect_eq(count(p), 0);
    cr_expect(next_cursor(p) != NULL, "it may still start logging");
    json_decref(p);

    unique(batch_id, sizeof(batch_id), "batch-");
    unique(stream, sizeof(stream), "never/created/");
    batch_event(id, batch_id, "SUCCEEDED", stream);
    p = page(id, 10, NULL);
    cr_expect_eq(count(p), 0);
    cr_expect(json_is_null(json_object_get(p, "next_cursor")), "ended, and nothing to read");
    json_decref(p);
}

Test(logs, a_batch_job_on_a_gateway_without_aws_is_503_saying_so_not_502)
{
    start_gateway("AWS_REGION=");
    char batch_id[64], id[37];
    unique(batch_id, sizeof(batch_id), "batch-");
    batch_event(id, batch_id, "RUNNING", "ml-job/default/y");
    struct th_resp r;
    get_logs(&r, reader, id, NULL);
    th_assert_problem(&r, 503);
    cr_expect(strstr(r.body, "not configured") != NULL, "%s", r.body);
    th_resp_dispose(&r);
}

Test(logs, cloudwatch_refusing_is_502_and_cloudwatch_down_is_503_with_retry_after)
{
    struct th_mock *cw = th_mock_start();
    th_mock_push(cw, &(struct th_mock_reply){
                         400, "application/x-amz-json-1.1",
                         "{\"__type\": \"AccessDeniedException\", \"message\": \"User: "
                         "arn:aws:sts::123456789012:assumed-role/gw is not authorized\"}",
                         NULL, NULL, 0});
    char env_cw[128];
    snprintf(env_cw, sizeof(env_cw), "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=%s", th_mock_url(cw));
    start_gateway(env_cw);
    char batch_id[64], id[37];
    unique(batch_id, sizeof(batch_id), "batch-");
    batch_event(id, batch_id, "RUNNING", "ml-job/default/x");

    struct th_resp r;
    get_logs(&r, reader, id, NULL);
    th_assert_problem(&r, 502);
    cr_expect(strstr(r.body, "not authorized") == NULL, "AWS's answer stays in the log: %s",
              r.body);
    th_resp_dispose(&r);
    cr_assert_geq(th_mock_count(cw), 1);
    struct th_mock_request seen;
    th_mock_request(&seen, cw, 0);
    char *target = th_mock_header(&seen, "x-amz-target");
    cr_expect_str_eq(target ? target : "", "Logs_20140328.GetLogEvents");
    cr_expect(strstr(seen.body, "\"logStreamName\":\"ml-job/default/x\"") != NULL, "%s", seen.body);
    free(target);
    th_mock_request_dispose(&seen);

    th_mock_set(cw, &(struct th_mock_reply){
                        503, "application/x-amz-json-1.1",
                        "{\"__type\": \"ServiceUnavailableException\", \"message\": \"down\"}",
                        NULL, NULL, 0});
    get_logs(&r, reader, id, NULL);
    th_assert_problem(&r, 503);
    char *retry = th_resp_header(&r, "Retry-After");
    cr_expect(retry != NULL);
    free(retry);
    th_resp_dispose(&r);
    th_mock_stop(cw);
}
