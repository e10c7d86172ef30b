/*
 * Job-state callbacks and notifications: EventBridge "Batch Job State
 * Change" events in order, duplicated, out of order and concurrent; the
 * callback key; exactly one email per recipient (a real SMTP server) and one
 * signed webhook per endpoint; retries while the mail server fails. The
 * webhook receiver is a loopback server, so these gateways allow http and
 * 127.0.0.0/8 (MLGW_WEBHOOK_ALLOW_*); the tests of the defaults turn that
 * off and check that a webhook to this host is refused at submit (http) or
 * never connected to (https), and that metadata adds no line to a mail.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../harness/harness.h"
#include "../harness/mock_http.h"
#include "../harness/smtp.h"
#include "common/encode.h"
#include "common/err.h"

static char db[1024], writer[128];
static struct th_gw gw;
static struct th_smtp smtp;
static struct th_mock *hook;
static char env_smtp[96], env_hook_ok[64];

#define SECRET         "callback-secret-123"
#define WEBHOOK_SECRET "webhook-secret-xyz"

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    char key[96];
    th_key_create(key, sizeof(key), db, "writer", "jobs:read,jobs:write");
    snprintf(writer, sizeof(writer), "Authorization: Bearer %s", key);
    hook = th_mock_start();
    th_mock_push(hook, &(struct th_mock_reply){204, NULL, NULL, NULL, NULL, 0});
}

static void start_gateway(const char *const *more)
{
    snprintf(env_smtp, sizeof(env_smtp), "MLGW_SMTP_URL=%s", smtp.url);
    const char *env[24] = {"MLGW_CALLBACK_SECRET=" SECRET,
                           "MLGW_WEBHOOK_SECRET=" WEBHOOK_SECRET,
                           env_smtp,
                           "MLGW_SMTP_TLS=off",
                           "MLGW_SMTP_FROM=ml-gateway <noreply@ml.example>",
                           "MLGW_NOTIFY_EMAILS=ops@ml.example",
                           "MLGW_NOTIFY_RETRY_BASE_MS=100",
                           "MLGW_DISPATCH_WORKERS=0",
                           "MLGW_GPU_JOB_QUEUE=q",
                           "MLGW_GPU_JOB_DEFINITION=d",
                           "MLGW_CPU_JOB_QUEUE=q",
                           "MLGW_CPU_JOB_DEFINITION=d",
                           "MLGW_WEBHOOK_ALLOW_HTTP=on",
                           "MLGW_WEBHOOK_ALLOW_CIDRS=127.0.0.0/8"};
    size_t k = 14;
    for (size_t i = 0; more != NULL && more[i] != NULL && k < 23; i++)
        env[k++] = more[i];
    env[k] = NULL;
    th_gw_start(&gw, db, env);
}

static void teardown(void)
{
    cr_expect_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
    th_smtp_stop(&smtp);
    th_mock_stop(hook);
}

TestSuite(events, .init = setup, .fini = teardown);

/* POSTs body to /jobs; returns the status and, on 202, the job's id. */
static long submit_job(char id[37], const char *body, char *problem, size_t plen)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs", gw.base);
    const char *h[] = {"Content-Type: application/json", writer, NULL};
    struct th_resp r;
    th_http(&r, "POST", url, h, body, strlen(body));
    long status = r.status;
    json_t *j = th_resp_json(&r);
    if (status == 202)
        snprintf(id, 37, "%s", th_str(j, "id"));
    if (problem != NULL)
        snprintf(problem, plen, "%s", r.body ? r.body : "");
    json_decref(j);
    th_resp_dispose(&r);
    return status;
}

/* The job as the API would hold it after SubmitJob (the dispatcher is off). */
static void mark_submitted(const char *id, const char *batch_id)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE jobs SET status = 'SUBMITTED', batch_job_id = '%s' WHERE id = '%s'", batch_id,
             id);
    cr_assert_eq(th_db_exec(db, sql), 0);
}

/* A job as the API would hold it after SubmitJob (the dispatcher is off). */
static void make_dispatched_job(char id[37], const char *batch_id)
{
    snprintf(env_hook_ok, sizeof(env_hook_ok), "%s/hook", th_mock_url(hook));
    char body[512];
    snprintf(body, sizeof(body),
             "{\"script_key\": \"jobs/train.py\", \"dispatch\": \"batch\", \"notify\": "
             "{\"emails\": [\"ann@ml.example\", \"ops@ml.example\"], \"webhooks\": [\"%s\"]}}",
             env_hook_ok);
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs", gw.base);
    const char *h[] = {"Content-Type: application/json", writer, NULL};
    struct th_resp r;
    th_http(&r, "POST", url, h, body, strlen(body));
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *j = th_resp_json(&r);
    snprintf(id, 37, "%s", th_str(j, "id"));
    json_decref(j);
    th_resp_dispose(&r);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE jobs SET status = 'SUBMITTED', batch_job_id = '%s' WHERE id = '%s'", batch_id,
             id);
    cr_assert_eq(th_db_exec(db, sql), 0);
}

static char *event(const char *event_id, const char *batch_id, const char *status,
                   const char *tag_id)
{
    char tags[128] = "{}";
    if (tag_id != NULL)
        snprintf(tags, sizeof(tags), "{\"mlgw:job-id\": \"%s\"}", tag_id);
    char *out = malloc(4096);
    snprintf(out, 4096,
             "{\"version\": \"0\", \"id\": \"%s\", \"detail-type\": \"Batch Job State Change\", "
             "\"source\": \"aws.batch\", \"account\": \"123456789012\", \"time\": "
             "\"2026-11-28T20:01:50Z\", \"region\": \"us-east-1\", \"resources\": [], \"detail\": "
             "{\"jobArn\": \"arn:aws:batch:us-east-1:123456789012:job/%s\", \"jobName\": "
             "\"console-job\", \"jobId\": \"%s\", \"jobQueue\": "
             "\"arn:aws:batch:us-east-1:123456789012:job-queue/ml-cpu-job-queue\", \"status\": "
             "\"%s\", \"statusReason\": \"%s\", \"attempts\": [%s], \"createdAt\": 1764360100000, "
             "\"startedAt\": 1764360105000, %s \"container\": {\"vcpus\": 2, \"memory\": 4096, "
             "\"logStreamName\": \"ml-job/default/abc\", \"environment\": [{\"name\": "
             "\"SCRIPT_KEY\", \"value\": \"jobs/console.py\"}], \"exitCode\": %s}, \"tags\": %s, "
             "\"unknownField\": {\"x\": 1}}}",
             event_id, batch_id, batch_id, status,
             strcmp(status, "FAILED") == 0 ? "Essential container in task exited" : "",
             strcmp(status, "SUCCEEDED") == 0
                 ? "{\"container\": {\"exitCode\": 0, \"logStreamName\": \"ml-job/default/abc\"}}"
             : strcmp(status, "FAILED") == 0
                 ? "{\"container\": {\"exitCode\": 3, \"logStreamName\": \"ml-job/default/abc\"}}"
                 : "",
             strcmp(status, "SUCCEEDED") == 0 || strcmp(status, "FAILED") == 0
                 ? "\"stoppedAt\": 1764360110000,"
                 : "",
             strcmp(status, "FAILED") == 0 ? "3" : "0", tags);
    return out;
}

static long post_event(const char *body, const char *key, char *result, size_t rlen)
{
    char url[256], hdr[128];
    snprintf(url, sizeof(url), "%s/events/batch", gw.base);
    snprintf(hdr, sizeof(hdr), "X-Callback-Key: %s", key);
    const char *h[] = {"Content-Type: application/json", key ? hdr : NULL, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, body, strlen(body)), 0);
    long status = r.status;
    if (result != NULL) {
        json_t *j = th_resp_json(&r);
        snprintf(result, rlen, "%s", j ? (th_str(j, "result") ? th_str(j, "result") : "") : "");
        json_decref(j);
    }
    th_resp_dispose(&r);
    return status;
}

static json_t *get_job(const char *id)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs/%s", gw.base, id);
    return th_get_json(url, writer);
}

static void wait_sent(const char *id, size_t want)
{
    for (int i = 0; i < 150; i++) {
        json_t *j = get_job(id);
        size_t sent = 0, k;
        json_t *n;
        json_array_foreach(json_object_get(j, "notifications"), k, n)
        {
            sent += strcmp(th_str(n, "state"), "sent") == 0;
        }
        json_decref(j);
        if (sent >= want)
            return;
        th_sleep_ms(100);
    }
    char *log = th_gw_log(&gw);
    cr_assert_fail("notifications of %s not all sent; log:\n%s", id, log);
}

Test(events, the_documented_sample_event_for_an_unknown_job_records_it)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(NULL);
    char *ev = event("ev-sample-1", "4c7599ae-0a82-49aa-ba5a-4727fcce14a8", "RUNNING", NULL);
    char result[32];
    cr_assert_eq(post_event(ev, SECRET, result, sizeof(result)), 200);
    cr_assert_str_eq(result, "created");
    free(ev);
    char *src = th_db_scalar(db, "SELECT source || ' ' || script_key || ' ' || vcpus || ' ' || "
                                 "memory || ' ' || status FROM jobs");
    cr_assert_str_eq(src, "eventbridge jobs/console.py 2 4096 RUNNING");
    free(src);
}

/* GET path with an admin key (the only scope that sees jobs without a team). */
static json_t *admin_get(const char *path)
{
    static char auth[160];
    if (auth[0] == '\0') {
        char key[128];
        th_key_create(key, sizeof(key), db, "events-admin", "admin");
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    }
    char url[512];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    return th_get_json(url, auth);
}

Test(events, a_job_learnt_of_from_a_bare_event_has_nulls_not_placeholders_until_told_more)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(NULL);
    const char *bare = "{\"id\": \"ev-bare-1\", \"detail-type\": \"Batch Job State Change\", "
                       "\"source\": \"aws.batch\", \"detail\": {\"jobId\": \"b-bare-1\", "
                       "\"status\": \"RUNNABLE\"}}";
    char result[32];
    cr_assert_eq(post_event(bare, SECRET, result, sizeof(result)), 200);
    cr_assert_str_eq(result, "created");
    char *id = th_db_scalar(db, "SELECT id FROM jobs WHERE batch_job_id = 'b-bare-1'");
    cr_assert(id != NULL);
    char path[128];
    snprintf(path, sizeof(path), "/jobs/%s", id);
    json_t *j = admin_get(path);
    const json_t *res = json_object_get(j, "resources"), *meta = json_object_get(j, "metadata");
    cr_expect(json_is_null(json_object_get(j, "script_key")), "script_key is not null");
    cr_expect(json_is_null(json_object_get(j, "compute_type")), "compute_type is not null");
    cr_expect(json_is_null(json_object_get(res, "vcpus")) &&
                  json_is_null(json_object_get(res, "memory")) &&
                  json_is_null(json_object_get(res, "gpus")),
              "resources are not null");
    /* The documented keys are there (null), no other key is null. */
    cr_expect(json_is_null(json_object_get(meta, "user")));
    cr_expect_eq(json_object_size(meta), 3, "metadata has more than user/project/experiment");
    json_decref(j);
    j = admin_get("/jobs?limit=5"); /* checked against openapi.yaml with every exchange */
    cr_expect_eq(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);

    /* A later event that carries the container fills in what was unknown. */
    const char *told = "{\"id\": \"ev-bare-2\", \"detail-type\": \"Batch Job State Change\", "
                       "\"source\": \"aws.batch\", \"detail\": {\"jobId\": \"b-bare-1\", "
                       "\"jobName\": \"bare\", \"status\": \"RUNNING\", \"container\": "
                       "{\"vcpus\": 2, \"memory\": 2048, \"environment\": [{\"name\": "
                       "\"SCRIPT_KEY\", \"value\": \"jobs/bare.py\"}]}}}";
    cr_assert_eq(post_event(told, SECRET, result, sizeof(result)), 200);
    cr_assert_str_eq(result, "applied");
    j = admin_get(path);
    res = json_object_get(j, "resources");
    cr_expect_str_eq(th_str(j, "script_key"), "jobs/bare.py");
    cr_expect_str_eq(th_str(j, "compute_type"), "cpu");
    cr_expect_eq(json_integer_value(json_object_get(res, "vcpus")), 2);
    cr_expect_eq(json_integer_value(json_object_get(res, "memory")), 2048);
    cr_expect_eq(json_integer_value(json_object_get(res, "gpus")), 0);
    json_decref(j);
    free(id);
}

Test(events, in_order_duplicated_and_out_of_order_events_leave_a_true_history)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(NULL);
    char id[37];
    make_dispatched_job(id, "b-100");
    const char *seq[][3] = {
        {"e1", "RUNNABLE", "applied"},  {"e2", "STARTING", "applied"},
        {"e3", "RUNNING", "applied"},   {"e3", "RUNNING", "duplicate"},
        {"e4", "SUCCEEDED", "applied"}, {"e4", "SUCCEEDED", "duplicate"},
        {"e2b", "RUNNING", "ignored"},  {"e1b", "RUNNABLE", "ignored"},
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(seq); i++) {
        char *ev = event(seq[i][0], "b-100", seq[i][1], NULL);
        char result[32];
        cr_assert_eq(post_event(ev, SECRET, result, sizeof(result)), 200);
        cr_assert_str_eq(result, seq[i][2], "event %zu (%s %s)", i, seq[i][0], seq[i][1]);
        free(ev);
    }
    json_t *j = get_job(id);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED");
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 0);
    cr_assert_str_eq(th_str(j, "log_stream"), "ml-job/default/abc");
    cr_assert(th_str(j, "stopped_at") != NULL);
    json_t *h = json_object_get(j, "history");
    /* QUEUED (api) + 8 reports, of which 4 were applied. */
    cr_assert_eq(json_array_size(h), 9);
    int applied = 0;
    size_t k;
    json_t *e;
    json_array_foreach(h, k, e)
    {
        applied += json_is_true(json_object_get(e, "applied"));
    }
    cr_assert_eq(applied, 5, "QUEUED and four transitions");
    json_decref(j);

    wait_sent(id, 3);
    cr_assert_eq(th_smtp_count(&smtp, "ann@ml.example"), 1, "exactly one email to ann");
    cr_assert_eq(th_smtp_count(&smtp, "ops@ml.example"), 1,
                 "one email to ops, though both the job and the global list name it");
    char *mail = th_smtp_message(&smtp, "ann@ml.example");
    cr_assert(mail != NULL);
    cr_assert(strstr(mail, id) != NULL && strstr(mail, "SUCCEEDED") != NULL, "%s", mail);
    cr_assert(strstr(mail, "jobs/train.py") != NULL);
    cr_assert(strstr(mail, "Message-ID:") != NULL || strstr(mail, "Message-Id:") != NULL);
    free(mail);

    cr_assert_eq(th_mock_count(hook), 1, "one webhook");
    struct th_mock_request r;
    th_mock_request(&r, hook, 0);
    char *sig = th_mock_header(&r, "x-signature");
    cr_assert(sig != NULL && strncmp(sig, "t=", 2) == 0, "%s", sig ? sig : "(none)");
    long long t = strtoll(sig + 2, NULL, 10);
    const char *v1 = strstr(sig, ",v1=");
    cr_assert(v1 != NULL);
    char msg[65536];
    int n = snprintf(msg, sizeof(msg), "%lld.%s", t, r.body);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), WEBHOOK_SECRET, (int)strlen(WEBHOOK_SECRET), (unsigned char *)msg, (size_t)n,
         mac, &maclen);
    char hex[65];
    gw_hex(hex, mac, 32);
    cr_assert_str_eq(v1 + 4, hex, "the signature verifies");
    json_t *body = json_loads(r.body, 0, NULL);
    cr_assert_str_eq(th_str(body, "id"), id);
    cr_assert_str_eq(th_str(body, "status"), "SUCCEEDED");
    json_decref(body);
    free(sig);
    th_mock_request_dispose(&r);
}

Test(events, a_wrong_or_missing_key_is_403_and_changes_nothing)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(NULL);
    char id[37];
    make_dispatched_job(id, "b-200");
    char *ev = event("e-x", "b-200", "SUCCEEDED", NULL);
    cr_assert_eq(post_event(ev, "wrong-secret-1234567", NULL, 0), 403);
    cr_assert_eq(post_event(ev, "callback-secret-12", NULL, 0), 403, "a prefix is not the key");
    cr_assert_eq(post_event(ev, NULL, NULL, 0), 403);
    free(ev);
    char *st = th_db_scalar(db, "SELECT status FROM jobs");
    cr_assert_str_eq(st, "SUBMITTED");
    free(st);
    char *n = th_db_scalar(db, "SELECT count(*) FROM job_events");
    cr_assert_str_eq(n, "0");
    free(n);
}

Test(events, malformed_events_are_4xx_and_store_nothing)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(NULL);
    const char *bad[] = {
        "{\"id\": \"x\", \"detail-type\": \"EC2 Instance State-change Notification\", "
        "\"source\": \"aws.ec2\", \"detail\": {}}",
        "{\"id\": \"x\", \"detail-type\": \"Batch Job State Change\", \"source\": \"aws.batch\", "
        "\"detail\": {\"jobId\": \"b\", \"status\": \"EXPLODED\"}}",
        "{\"detail-type\": \"Batch Job State Change\", \"source\": \"aws.batch\", \"detail\": "
        "{\"jobId\": \"b\", \"status\": \"RUNNING\"}}",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++)
        cr_assert_eq(post_event(bad[i], SECRET, NULL, 0), 422, "case %zu", i);
    cr_assert_eq(post_event("{not json", SECRET, NULL, 0), 400);
    char *n = th_db_scalar(db, "SELECT (SELECT count(*) FROM job_events) + (SELECT count(*) "
                               "FROM jobs)");
    cr_assert_str_eq(n, "0");
    free(n);
}

struct racer {
    char body[4096];
    long status;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    r->status = post_event(r->body, SECRET, NULL, 0);
    return NULL;
}

Test(events, concurrent_terminal_callbacks_on_one_job_notify_once)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(NULL);
    char id[37];
    make_dispatched_job(id, "b-300");
    enum { N = 8 };
    struct racer rs[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        char eid[32];
        snprintf(eid, sizeof(eid), "race-%d", i);
        char *ev = event(eid, "b-300", i % 2 ? "SUCCEEDED" : "RUNNING", NULL);
        snprintf(rs[i].body, sizeof(rs[i].body), "%s", ev);
        free(ev);
        pthread_create(&t[i], NULL, race, &rs[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(rs[i].status, 200);
    }
    char *st = th_db_scalar(db, "SELECT status FROM jobs");
    cr_assert_str_eq(st, "SUCCEEDED");
    free(st);
    wait_sent(id, 3);
    th_sleep_ms(300);
    cr_assert_eq(th_smtp_count(&smtp, "ann@ml.example"), 1);
    cr_assert_eq(th_mock_count(hook), 1);
}

Test(events, first_events_racing_for_one_unknown_job_create_it_once)
{
    /* Each first event tries to create the job: the losers' unique
     * violations are retried (through the group-commit writers, in separate
     * batches) and find the job the winner made. */
    start_gateway(NULL);
    enum { N = 16 };
    struct racer rs[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        char eid[32];
        snprintf(eid, sizeof(eid), "first-%d", i);
        char *ev = event(eid, "b-unknown-race", "RUNNABLE", NULL);
        snprintf(rs[i].body, sizeof(rs[i].body), "%s", ev);
        free(ev);
        cr_assert_eq(pthread_create(&t[i], NULL, race, &rs[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++)
        cr_assert_eq(rs[i].status, 200, "event %d: %ld", i, rs[i].status);
    char *n = th_db_scalar(db, "SELECT count(*) FROM jobs WHERE batch_job_id = 'b-unknown-race'");
    cr_assert_str_eq(n, "1", "one job for all the events");
    free(n);
    n = th_db_scalar(db, "SELECT count(*) FROM job_events");
    cr_assert_str_eq(n, "16", "every event recorded once");
    free(n);
}

Test(events, a_failing_mail_server_is_retried_and_mails_once_when_it_recovers)
{
    const char *tempfail[] = {"--tempfail", "2", NULL};
    th_smtp_start(&smtp, tempfail, 0);
    start_gateway(NULL);
    char id[37];
    make_dispatched_job(id, "b-400");
    char *ev = event("e-400", "b-400", "FAILED", NULL);
    cr_assert_eq(post_event(ev, SECRET, NULL, 0), 200);
    free(ev);
    wait_sent(id, 3);
    cr_assert_eq(th_smtp_count(&smtp, "ann@ml.example"), 1);
    json_t *j = get_job(id);
    cr_assert_str_eq(th_str(j, "status"), "FAILED");
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 3);
    size_t k;
    json_t *n;
    int retried = 0;
    json_array_foreach(json_object_get(j, "notifications"), k, n)
    {
        retried |= strcmp(th_str(n, "channel"), "email") == 0 &&
                   json_integer_value(json_object_get(n, "attempts")) > 1;
    }
    cr_assert(retried, "an email needed more than one attempt");
    json_decref(j);
}

Test(events, a_permanently_refused_webhook_is_recorded_as_failed_on_the_job)
{
    th_smtp_start(&smtp, NULL, 0);
    th_mock_set(hook, &(struct th_mock_reply){410, "text/plain", "gone", NULL, NULL, 0});
    start_gateway(NULL);
    char id[37];
    make_dispatched_job(id, "b-500");
    char *ev = event("e-500", "b-500", "SUCCEEDED", NULL);
    cr_assert_eq(post_event(ev, SECRET, NULL, 0), 200);
    free(ev);
    int failed = 0;
    for (int64_t end = th_deadline(30000); !failed && th_before(end);) {
        json_t *j = get_job(id);
        size_t k;
        json_t *n;
        json_array_foreach(json_object_get(j, "notifications"), k, n)
        {
            if (strcmp(th_str(n, "channel"), "webhook") == 0 &&
                strcmp(th_str(n, "state"), "failed") == 0) {
                failed = 1;
                cr_assert(strstr(th_str(n, "error"), "410") != NULL);
            }
        }
        json_decref(j);
        th_sleep_ms(100);
    }
    cr_assert(failed, "the webhook failure shows on the job");
    cr_assert_eq(th_mock_count(hook), 1, "a 4xx is not retried");
}

Test(events, the_gateway_job_id_in_tags_matches_a_job_submitted_through_sns)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(NULL);
    char id[37];
    make_dispatched_job(id, "ignored");
    cr_assert_eq(th_db_exec(db, "UPDATE jobs SET status = 'DISPATCHED', batch_job_id = NULL"), 0);
    char *ev = event("e-sns-1", "b-new-from-lambda", "RUNNING", id);
    char result[32];
    cr_assert_eq(post_event(ev, SECRET, result, sizeof(result)), 200);
    cr_assert_str_eq(result, "applied");
    free(ev);
    json_t *j = get_job(id);
    cr_assert_str_eq(th_str(j, "status"), "RUNNING");
    cr_assert_str_eq(th_str(j, "batch_job_id"), "b-new-from-lambda");
    json_decref(j);
}

Test(events, a_mail_server_that_is_down_gets_the_mail_once_it_is_back)
{
    /* Learn a free port, then start the gateway pointing at it with nothing there. */
    th_smtp_start(&smtp, NULL, 0);
    unsigned port = smtp.port;
    th_smtp_stop(&smtp);
    snprintf(smtp.url, sizeof(smtp.url), "smtp://127.0.0.1:%u", port);
    start_gateway(NULL);
    char id[37];
    make_dispatched_job(id, "b-600");
    char *ev = event("e-600", "b-600", "SUCCEEDED", NULL);
    cr_assert_eq(post_event(ev, SECRET, NULL, 0), 200, "the callback does not wait for mail");
    free(ev);
    th_sleep_ms(800); /* a few failed tries */
    th_smtp_start(&smtp, NULL, port);
    wait_sent(id, 3);
    cr_assert_eq(th_smtp_count(&smtp, "ann@ml.example"), 1);
    cr_assert_eq(th_smtp_count(&smtp, "ops@ml.example"), 1);
}

Test(events, a_job_dispatched_to_batch_on_moto_is_driven_to_success_by_callbacks)
{
    th_smtp_start(&smtp, NULL, 0);
    char ep[300], q[300], d[300];
    snprintf(ep, sizeof(ep), "AWS_ENDPOINT_URL=%s", th_moto_url());
    snprintf(q, sizeof(q), "MLGW_CPU_JOB_QUEUE=%s", th_moto_resource("cpu_queue"));
    snprintf(d, sizeof(d), "MLGW_CPU_JOB_DEFINITION=%s", th_moto_resource("job_definition"));
    /* Later entries win: this gateway does dispatch, to moto. */
    const char *more[] = {ep,
                          "AWS_REGION=us-east-1",
                          "AWS_ACCESS_KEY_ID=testing",
                          "AWS_SECRET_ACCESS_KEY=testing",
                          "AWS_EC2_METADATA_DISABLED=true",
                          "MLGW_DISPATCH_WORKERS=2",
                          "MLGW_DISPATCH_POLL_MS=200",
                          q,
                          d,
                          NULL};
    start_gateway(more);
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs", gw.base);
    const char *h[] = {"Content-Type: application/json", writer, NULL};
    const char *body = "{\"script_key\": \"jobs/cpu_processing.py\", \"compute_type\": \"cpu\", "
                       "\"dispatch\": \"batch\", \"notify\": {\"emails\": [\"ann@ml.example\"]}}";
    struct th_resp r;
    th_http(&r, "POST", url, h, body, strlen(body));
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *j = th_resp_json(&r);
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(j, "id"));
    json_decref(j);
    th_resp_dispose(&r);
    char batch_id[128] = "";
    for (int64_t end = th_deadline(30000); batch_id[0] == '\0' && th_before(end);) {
        j = get_job(id);
        if (th_str(j, "batch_job_id") != NULL)
            snprintf(batch_id, sizeof(batch_id), "%s", th_str(j, "batch_job_id"));
        json_decref(j);
        th_sleep_ms(100);
    }
    cr_assert(batch_id[0] != '\0', "dispatched to moto");
    /* EventBridge: in order, a duplicate, one out of order, one with a wrong key. */
    const char *seq[][3] = {{"m1", "RUNNABLE", SECRET},  {"m2", "RUNNING", SECRET},
                            {"m3", "SUCCEEDED", SECRET}, {"m3", "SUCCEEDED", SECRET},
                            {"m4", "RUNNING", SECRET},   {"m5", "FAILED", "not-the-key-xxxx"}};
    for (size_t i = 0; i < GW_ARRAY_LEN(seq); i++) {
        char *ev = event(seq[i][0], batch_id, seq[i][1], id);
        long want = strcmp(seq[i][2], SECRET) == 0 ? 200 : 403;
        cr_assert_eq(post_event(ev, seq[i][2], NULL, 0), want, "event %zu", i);
        free(ev);
    }
    j = get_job(id);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED");
    json_t *hist = json_object_get(j, "history");
    const char *want_status[] = {"QUEUED",    "SUBMITTED", "RUNNABLE", "RUNNING",
                                 "SUCCEEDED", "SUCCEEDED", "RUNNING"};
    const int want_applied[] = {1, 1, 1, 1, 1, 0, 0};
    cr_assert_eq(json_array_size(hist), GW_ARRAY_LEN(want_status), "a true history");
    for (size_t i = 0; i < GW_ARRAY_LEN(want_status); i++) {
        json_t *e = json_array_get(hist, i);
        cr_assert_str_eq(th_str(e, "status"), want_status[i], "history[%zu]", i);
        cr_assert_eq(json_is_true(json_object_get(e, "applied")), want_applied[i], "history[%zu]",
                     i);
    }
    json_decref(j);
    wait_sent(id, 2);
    cr_assert_eq(th_smtp_count(&smtp, "ann@ml.example"), 1);
    cr_assert_eq(th_smtp_count(&smtp, "ops@ml.example"), 1);
}

/* ---- what users may not do with notifications ---------------------------------- */

/* Undo start_gateway's test allowances: the gateway's defaults. */
static const char *const webhook_defaults[] = {"MLGW_WEBHOOK_ALLOW_HTTP",
                                               "MLGW_WEBHOOK_ALLOW_CIDRS", NULL};

/* A TCP listener on 127.0.0.1 that nobody serves: a connection to it waits
 * in the backlog, so accept() afterwards tells whether one ever came. */
static int listener_start(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    cr_assert_eq(inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr), 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(listen(fd, 16), 0);
    socklen_t len = sizeof(sin);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

static int listener_connections(int fd)
{
    int n = 0, c;
    while ((c = accept(fd, NULL, NULL)) >= 0) {
        n++;
        close(c);
    }
    cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "accept: %s", strerror(errno));
    return n;
}

Test(events, a_plain_http_webhook_to_this_host_is_refused_at_submit)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(webhook_defaults);
    unsigned port;
    int fd = listener_start(&port);
    char body[512], id[37], problem[4096];
    snprintf(body, sizeof(body),
             "{\"script_key\": \"jobs/train.py\", \"dispatch\": \"batch\", \"notify\": "
             "{\"webhooks\": [\"https://hooks.example.com/ml\", \"http://127.0.0.1:%u/admin\"]}}",
             port);
    cr_assert_eq(submit_job(id, body, problem, sizeof(problem)), 422, "%s", problem);
    json_t *p = json_loads(problem, 0, NULL);
    cr_assert_not_null(p, "%s", problem);
    json_t *errs = json_object_get(p, "errors");
    cr_assert_eq(json_array_size(errs), 1, "%s", problem);
    cr_assert_str_eq(th_str(json_array_get(errs, 0), "field"), "notify.webhooks[1]");
    json_decref(p);
    char *n = th_db_scalar(db, "SELECT count(*) FROM jobs");
    cr_assert_str_eq(n, "0", "nothing stored");
    free(n);
    cr_assert_eq(listener_connections(fd), 0, "the listener saw no connection");
    close(fd);
}

Test(events, an_https_webhook_to_this_host_is_never_connected_and_reads_refused)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(webhook_defaults);
    unsigned port;
    int fd = listener_start(&port);
    char body[512], id[37], problem[4096];
    snprintf(body, sizeof(body),
             "{\"script_key\": \"jobs/train.py\", \"dispatch\": \"batch\", \"notify\": "
             "{\"webhooks\": [\"https://127.0.0.1:%u/internal\"]}}",
             port);
    cr_assert_eq(submit_job(id, body, problem, sizeof(problem)), 202, "valid syntax: %s", problem);
    mark_submitted(id, "b-ssrf");
    char *ev = event("e-ssrf", "b-ssrf", "SUCCEEDED", NULL);
    cr_assert_eq(post_event(ev, SECRET, NULL, 0), 200);
    free(ev);
    const char *error = NULL;
    json_t *j = NULL;
    for (int64_t end = th_deadline(30000); error == NULL && th_before(end);) {
        json_decref(j);
        th_sleep_ms(100);
        j = get_job(id);
        size_t k;
        json_t *it;
        json_array_foreach(json_object_get(j, "notifications"), k, it)
        {
            if (strcmp(th_str(it, "channel"), "webhook") == 0 &&
                strcmp(th_str(it, "state"), "failed") == 0)
                error = th_str(it, "error");
        }
    }
    cr_assert_not_null(error, "the webhook failure shows on the job");
    cr_assert_str_eq(error, "refused", "only the class, never the transport's text");
    json_decref(j);
    cr_assert_eq(listener_connections(fd), 0, "the listener saw no connection");
    close(fd);
    char *log = th_gw_log(&gw);
    cr_assert_not_null(strstr(log, "127.0.0.1"), "the log has the detail");
    free(log);
}

Test(events, control_characters_in_metadata_add_no_line_to_the_mail)
{
    th_smtp_start(&smtp, NULL, 0);
    start_gateway(NULL);
    char id[37], problem[4096];
    const char *body =
        "{\"script_key\": \"jobs/train.py\", \"dispatch\": \"batch\", \"notify\": {\"emails\": "
        "[\"ann@ml.example\"]}, \"metadata\": {\"user\": \"ann\\r\\nBcc: evil@x.example\", "
        "\"project\": \"p\\nStatus:       SUCCEEDED-FORGED\\u0007\\u2028x\", "
        "\"experiment\": \"e\\u0085\\u001b[31m\"}}";
    cr_assert_eq(submit_job(id, body, problem, sizeof(problem)), 202, "%s", problem);
    mark_submitted(id, "b-meta");
    char *ev = event("e-meta", "b-meta", "SUCCEEDED", NULL);
    cr_assert_eq(post_event(ev, SECRET, NULL, 0), 200);
    free(ev);
    wait_sent(id, 2);
    char *mail = th_smtp_message(&smtp, "ann@ml.example");
    cr_assert_not_null(mail);
    cr_assert_null(strstr(mail, "\nBcc:"), "%s", mail);
    cr_assert_null(strstr(mail, "\nStatus:       SUCCEEDED-FORGED"), "%s", mail);
    cr_assert_null(strchr(mail, '\a'), "%s", mail);
    cr_assert_null(strchr(mail, '\x1b'), "%s", mail);
    cr_assert_null(strstr(mail, "\xe2\x80\xa8"), "%s", mail);
    cr_assert_null(strstr(mail, "\xc2\x85"), "%s", mail);
    cr_assert_not_null(strstr(mail, "User:         ann  Bcc: evil@x.example\r\n"), "%s", mail);
    free(mail);
}
