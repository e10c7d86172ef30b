/*
 * Dispatch through the outbox, against moto in server mode and a scripted
 * peer: jobs reach the right queue with the right overrides, the seed's
 * message reaches the topic, and outages, crashes and two gateways on one
 * database leave nothing lost and nothing doubled.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../harness/harness.h"
#include "../harness/mock_http.h"
#include "aws/batch.h"
#include "aws/credentials.h"
#include "common/err.h"

static char db[1024];
static char writer[128], admin[128];
static char env_endpoint[300], env_gpu_q[300], env_cpu_q[300], env_gpu_def[300], env_cpu_def[300],
    env_topic[300];

static void bearer(char *out, const char *name, const char *scopes)
{
    char key[96];
    th_key_create(key, sizeof(key), db, name, scopes);
    snprintf(out, 128, "Authorization: Bearer %s", key);
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    bearer(writer, "writer", "jobs:read,jobs:write");
    bearer(admin, "admin", "admin");
    snprintf(env_endpoint, sizeof(env_endpoint), "AWS_ENDPOINT_URL=%s", th_moto_url());
    snprintf(env_gpu_q, sizeof(env_gpu_q), "MLGW_GPU_JOB_QUEUE=%s", th_moto_resource("gpu_queue"));
    snprintf(env_cpu_q, sizeof(env_cpu_q), "MLGW_CPU_JOB_QUEUE=%s", th_moto_resource("cpu_queue"));
    snprintf(env_gpu_def, sizeof(env_gpu_def), "MLGW_GPU_JOB_DEFINITION=%s",
             th_moto_resource("job_definition"));
    snprintf(env_cpu_def, sizeof(env_cpu_def), "MLGW_CPU_JOB_DEFINITION=%s",
             th_moto_resource("job_definition"));
    snprintf(env_topic, sizeof(env_topic), "MLGW_TRIGGER_TOPIC_ARN=%s",
             th_moto_resource("topic_arn"));
}

TestSuite(dispatch, .init = setup);

/* The gateway's environment for AWS: endpoint first (may be overridden). */
#define AWS_ENV(endpoint)                                                                          \
    endpoint, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=testing",                                 \
        "AWS_SECRET_ACCESS_KEY=testing", "AWS_EC2_METADATA_DISABLED=true", env_gpu_q, env_cpu_q,   \
        env_gpu_def, env_cpu_def, env_topic, "MLGW_DISPATCH_POLL_MS=200",                          \
        "MLGW_DISPATCH_RETRY_BASE_MS=100", "MLGW_AWS_TIMEOUT_MS=1000", "MLGW_DISPATCH_LEASE=5",    \
        "ML_INPUT_BUCKET=ml-inputs", "ML_OUTPUT_BUCKET=ml-outputs"

static json_t *post_job(const struct th_gw *gw, const char *body)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs", gw->base);
    const char *h[] = {"Content-Type: application/json", writer, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, body, strlen(body)), 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *j = th_resp_json(&r);
    th_resp_dispose(&r);
    return j;
}

static json_t *get_job(const struct th_gw *gw, const char *id)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs/%s", gw->base, id);
    return th_get_json(url, writer);
}

/* Polls until the job has status; returns the job (json_decref it). */
static json_t *wait_status(const struct th_gw *gw, const char *id, const char *status, int secs)
{
    json_t *j = NULL;
    for (int i = 0; i < secs * 10; i++) {
        json_decref(j);
        j = get_job(gw, id);
        if (strcmp(th_str(j, "status"), status) == 0)
            return j;
        th_sleep_ms(100);
    }
    char *dump = json_dumps(j, 0);
    char *log = th_gw_log(gw);
    cr_assert_fail("job %s never became %s: %s\nlog:\n%s", id, status, dump, log);
    return NULL;
}

static long scalar(const char *sql)
{
    char *s = th_db_scalar(db, sql);
    cr_assert(s != NULL, "%s", sql);
    long v = strtol(s, NULL, 10);
    free(s);
    return v;
}

/* ---- AWS Batch -------------------------------------------------------------------------- */

Test(dispatch, a_batch_job_is_submitted_with_exactly_the_requested_overrides)
{
    struct th_mock *mock = th_mock_start();
    th_mock_push(mock, &(struct th_mock_reply){200, "application/json",
                                               "{\"jobId\": \"b-%N%\", \"jobArn\": \"arn:b\"}",
                                               NULL, NULL, 0});
    char ep[128];
    snprintf(ep, sizeof(ep), "AWS_ENDPOINT_URL=%s", th_mock_url(mock));
    const char *env[] = {AWS_ENV(ep), NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    json_t *j = post_job(&gw, "{\"script_key\": \"jobs/train.py\", \"compute_type\": \"gpu\", "
                              "\"vcpus\": 8, \"memory\": 32768, \"gpus\": 2, \"args\": "
                              "[\"--epochs\", \"3\"], \"env\": {\"LEARNING_RATE\": \"0.001\"}, "
                              "\"timeout_seconds\": 3600, \"max_attempts\": 3, \"operation\": "
                              "\"train\", \"metadata\": {\"user\": \"ann\", \"project\": "
                              "\"model training!\", \"experiment\": \"e7\"}, \"dispatch\": "
                              "\"batch\"}");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(j, "id"));
    json_decref(j);
    j = wait_status(&gw, id, "SUBMITTED", 20);
    cr_assert_str_eq(th_str(j, "batch_job_id"), "b-1");
    json_t *h = json_object_get(j, "history");
    cr_assert_eq(json_array_size(h), 2);
    cr_assert_str_eq(th_str(json_array_get(h, 1), "source"), "dispatcher");
    json_decref(j);

    cr_assert_eq(th_mock_count(mock), 1, "submitted exactly once");
    struct th_mock_request r;
    th_mock_request(&r, mock, 0);
    cr_assert_str_eq(r.path, "/v1/submitjob");
    json_t *b = json_loads(r.body, 0, NULL);
    char name[80];
    snprintf(name, sizeof(name), "model-training--%s", id);
    cr_assert_str_eq(th_str(b, "jobName"), name, "project sanitised, id kept");
    cr_assert_str_eq(th_str(b, "jobQueue"), th_moto_resource("gpu_queue"));
    cr_assert_str_eq(th_str(b, "jobDefinition"), th_moto_resource("job_definition"));
    json_t *co = json_object_get(b, "containerOverrides");
    json_t *rr = json_object_get(co, "resourceRequirements");
    cr_assert_str_eq(th_str(json_array_get(rr, 0), "value"), "8");
    cr_assert_str_eq(th_str(json_array_get(rr, 1), "value"), "32768");
    cr_assert_str_eq(th_str(json_array_get(rr, 2), "type"), "GPU");
    cr_assert_str_eq(th_str(json_array_get(rr, 2), "value"), "2");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(co, "command"), 0)),
                     "--epochs");
    json_t *envs = json_object_get(co, "environment");
    const char *want[][2] = {
        {"LEARNING_RATE", "0.001"},      {"JOB_ID", id},
        {"COMPUTE_TYPE", "gpu"},         {"SCRIPT_KEY", "jobs/train.py"},
        {"TRIGGER_USER", "ann"},         {"TRIGGER_EXPERIMENT", "e7"},
        {"OPERATION", "train"},          {"ML_OUTPUT_DIR", "/workspace/output"},
        {"ML_INPUT_BUCKET", "ml-inputs"}};
    for (size_t k = 0; k < GW_ARRAY_LEN(want); k++) {
        const char *got = NULL;
        size_t i;
        json_t *e;
        json_array_foreach(envs, i, e)
        {
            if (strcmp(th_str(e, "name"), want[k][0]) == 0)
                got = th_str(e, "value");
        }
        cr_assert(got != NULL && strcmp(got, want[k][1]) == 0, "%s=%s, got %s", want[k][0],
                  want[k][1], got ? got : "(absent)");
    }
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(b, "timeout"), "attemptDurationSeconds")),
                 3600);
    json_t *rs = json_object_get(b, "retryStrategy");
    cr_assert_eq(json_integer_value(json_object_get(rs, "attempts")), 3);
    cr_assert_str_eq(
        th_str(json_array_get(json_object_get(rs, "evaluateOnExit"), 0), "onStatusReason"),
        "Host EC2*");
    cr_assert_str_eq(th_str(json_object_get(b, "tags"), "mlgw:job-id"), id);
    cr_assert_str_eq(th_str(json_object_get(b, "tags"), "mlgw:project"), "model training!");
    cr_assert(json_is_true(json_object_get(b, "propagateTags")));
    json_decref(b);
    th_mock_request_dispose(&r);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
    th_mock_stop(mock);
}

static struct aws_creds_provider *creds;
static struct aws_client *aws;

static const char *moto_env(const char *name, void *ctx)
{
    (void)ctx;
    if (strcmp(name, "AWS_REGION") == 0)
        return "us-east-1";
    if (strcmp(name, "AWS_ENDPOINT_URL") == 0)
        return th_moto_url();
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0 || strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return "testing";
    return NULL;
}

/* How many Batch jobs moto holds under name on queue. */
static size_t batch_jobs_named(const char *queue, const char *name)
{
    if (aws == NULL) {
        struct gw_err err = {0};
        struct aws_creds_opts co = {.getenv_fn = moto_env};
        cr_assert_eq(aws_creds_provider_new(&creds, &co, &err), GW_OK);
        struct aws_client_opts o = {.getenv_fn = moto_env, .creds = creds};
        cr_assert_eq(aws_client_new(&aws, &o, &err), GW_OK);
    }
    json_t *jobs = NULL;
    struct aws_error err;
    struct aws_batch_list l = {.job_queue = queue, .job_name = name};
    cr_assert_eq(aws_batch_list_jobs(&jobs, aws, &l, &err), GW_OK, "%s", err.message);
    size_t n = json_array_size(jobs);
    json_decref(jobs);
    return n;
}

Test(dispatch, a_batch_job_lands_on_the_right_moto_queue)
{
    const char *env[] = {AWS_ENV(env_endpoint), NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    json_t *j = post_job(&gw, "{\"script_key\": \"jobs/cpu_processing.py\", \"compute_type\": "
                              "\"cpu\", \"dispatch\": \"batch\", \"metadata\": {\"project\": "
                              "\"data-pipeline\"}}");
    char id[37], name[80];
    snprintf(id, sizeof(id), "%s", th_str(j, "id"));
    json_decref(j);
    j = wait_status(&gw, id, "SUBMITTED", 20);
    snprintf(name, sizeof(name), "data-pipeline-%s", id);
    cr_assert_eq(batch_jobs_named(th_moto_resource("cpu_queue"), name), 1);
    cr_assert_eq(batch_jobs_named(th_moto_resource("gpu_queue"), name), 0);
    json_decref(j);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

/* ---- SNS -------------------------------------------------------------------------------- */

Test(dispatch, an_sns_job_publishes_the_seeds_trigger_message_with_the_job_id)
{
    const char *env[] = {AWS_ENV(env_endpoint), NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    json_t *j = post_job(&gw, "{\"trigger_type\": \"batch_job\", \"data\": {\"script_key\": "
                              "\"jobs/cpu_processing.py\", \"compute_type\": \"cpu\", \"vcpus\": "
                              "8, \"memory\": 16384, \"dispatch\": \"sns\"}, \"metadata\": "
                              "{\"user\": \"ml-engineer\", \"project\": \"data-pipeline\"}}");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(j, "id"));
    json_decref(j);
    j = wait_status(&gw, id, "DISPATCHED", 20);
    cr_assert(th_str(j, "sns_message_id") != NULL);
    json_decref(j);

    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s/bin/python' '%s' '%s' '%s'",
             getenv("MLGW_VENV") ? getenv("MLGW_VENV") : "build/venv",
             th_source_path("tests/tools/sqs_receive.py"), th_moto_url(),
             th_moto_resource("tap_queue_url"));
    json_t *found = NULL;
    for (int tries = 0; tries < 5 && found == NULL; tries++) {
        FILE *p = popen(cmd, "r");
        char buf[65536];
        size_t n = fread(buf, 1, sizeof(buf) - 1, p);
        buf[n] = '\0';
        cr_assert_eq(pclose(p), 0, "%s", buf);
        json_t *msgs = json_loads(buf, 0, NULL);
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m)
        {
            json_t *body = json_loads(th_str(m, "body"), 0, NULL);
            const char *jid = th_str(json_object_get(body, "data"), "job_id");
            if (jid != NULL && strcmp(jid, id) == 0) {
                found = body;
                cr_assert_str_eq(th_str(json_object_get(m, "attributes"), "compute_type"), "cpu");
                cr_assert_str_eq(th_str(json_object_get(m, "attributes"), "trigger_type"),
                                 "batch_job");
            } else {
                json_decref(body);
            }
        }
        json_decref(msgs);
    }
    cr_assert(found != NULL, "the trigger message reached the queue");
    json_t *want = json_pack("{s:s,s:{s:s,s:s,s:i,s:i,s:s},s:{s:s,s:s}}", "trigger_type",
                             "batch_job", "data", "script_key", "jobs/cpu_processing.py",
                             "compute_type", "cpu", "vcpus", 8, "memory", 16384, "job_id", id,
                             "metadata", "user", "ml-engineer", "project", "data-pipeline");
    cr_assert(json_equal(found, want), "exactly the seed's message: %s",
              json_dumps(found, JSON_COMPACT));
    json_decref(want);
    json_decref(found);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

/* ---- failures ---------------------------------------------------------------------------- */

Test(dispatch, an_aws_outage_keeps_jobs_queued_then_each_is_submitted_once)
{
    struct th_mock *mock = th_mock_start();
    th_mock_push(mock, &(struct th_mock_reply){503, "application/json",
                                               "{\"__type\": \"ServerException\"}", NULL, NULL, 0});
    char ep[128];
    snprintf(ep, sizeof(ep), "AWS_ENDPOINT_URL=%s", th_mock_url(mock));
    const char *env[] = {AWS_ENV(ep), "MLGW_DISPATCH_MAX_ATTEMPTS=1000", NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    char ids[6][37];
    for (int i = 0; i < 6; i++) {
        json_t *j = post_job(&gw, "{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", "
                                  "\"dispatch\": \"batch\"}");
        snprintf(ids[i], 37, "%s", th_str(j, "id"));
        json_decref(j);
    }
    /* Each job is tried (and fails) at least once; how soon depends on the
     * machine's load, so wait for it rather than for a fixed time. */
    for (int64_t end = th_deadline(30000);
         scalar("SELECT min(dispatch_attempts) FROM jobs") == 0 && th_before(end);)
        th_sleep_ms(100);
    cr_assert_gt(scalar("SELECT min(dispatch_attempts) FROM jobs"), 0, "every job was tried");
    for (int i = 0; i < 6; i++) {
        json_t *j = get_job(&gw, ids[i]);
        cr_assert_str_eq(th_str(j, "status"), "QUEUED", "still queued during the outage");
        json_decref(j);
    }
    char *err = th_db_scalar(db, "SELECT dispatch_error FROM jobs LIMIT 1");
    cr_assert(err != NULL && strstr(err, "ServerException") != NULL, "the error shows: %s",
              err ? err : "(null)");
    free(err);
    size_t failed_calls = th_mock_count(mock);

    th_mock_set(mock, &(struct th_mock_reply){200, "application/json",
                                              "{\"jobId\": \"b-%N%\", \"jobArn\": \"arn:b\"}", NULL,
                                              NULL, 0});
    for (int i = 0; i < 6; i++)
        json_decref(wait_status(&gw, ids[i], "SUBMITTED", 60));
    cr_assert_eq(th_mock_count(mock) - failed_calls, 6,
                 "after the outage, exactly one successful SubmitJob per job");
    cr_assert_eq(scalar("SELECT count(DISTINCT batch_job_id) FROM jobs"), 6);
    cr_assert_eq(scalar("SELECT count(*) FROM dispatch_outbox"), 0);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
    th_mock_stop(mock);
}

Test(dispatch, a_permanent_error_is_dispatch_failed_and_an_admin_retry_requeues)
{
    const char *env[] = {AWS_ENV(env_endpoint), "MLGW_CPU_JOB_QUEUE=no-such-queue", NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    json_t *j = post_job(&gw, "{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", "
                              "\"dispatch\": \"batch\"}");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(j, "id"));
    json_decref(j);
    j = wait_status(&gw, id, "DISPATCH_FAILED", 20);
    cr_assert(strstr(th_str(j, "status_reason"), "ClientException") != NULL, "%s",
              th_str(j, "status_reason"));
    json_decref(j);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);

    /* Fixed configuration, then the retry. */
    const char *good[] = {AWS_ENV(env_endpoint), NULL};
    th_gw_start(&gw, db, good);
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs/%s/retry", gw.base, id);
    struct th_resp r;
    const char *hw[] = {writer, NULL};
    th_http(&r, "POST", url, hw, NULL, 0);
    th_assert_problem(&r, 403);
    th_resp_dispose(&r);
    const char *ha[] = {admin, NULL};
    th_http(&r, "POST", url, ha, NULL, 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    th_resp_dispose(&r);
    json_decref(wait_status(&gw, id, "SUBMITTED", 20));
    th_http(&r, "POST", url, ha, NULL, 0);
    th_assert_problem(&r, 409);
    th_resp_dispose(&r);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

Test(dispatch, an_unconfigured_target_is_refused_at_submission)
{
    const char *env[] = {"MLGW_DISPATCH_POLL_MS=200", NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs", gw.base);
    const char *h[] = {"Content-Type: application/json", writer, NULL};
    const char *bodies[] = {"{\"script_key\": \"a.py\", \"dispatch\": \"batch\"}",
                            "{\"script_key\": \"a.py\", \"dispatch\": \"sns\"}"};
    for (int i = 0; i < 2; i++) {
        struct th_resp r;
        th_http(&r, "POST", url, h, bodies[i], strlen(bodies[i]));
        th_assert_problem(&r, 422);
        cr_assert(strstr(r.body, "\"field\":\"dispatch\"") != NULL, "%s", r.body);
        th_resp_dispose(&r);
    }
    cr_assert_eq(scalar("SELECT count(*) FROM jobs"), 0);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

/* ---- crashes and concurrency -------------------------------------------------------------- */

static void names_submitted_once(char ids[][37], int n)
{
    for (int i = 0; i < n; i++) {
        char name[80];
        snprintf(name, sizeof(name), "burst-%s", ids[i]);
        cr_assert_eq(batch_jobs_named(th_moto_resource("cpu_queue"), name), 1,
                     "job %s submitted exactly once", ids[i]);
    }
}

Test(dispatch, kill_9_during_a_burst_then_restart_submits_every_job_exactly_once)
{
    const char *env[] = {AWS_ENV(env_endpoint), "MLGW_DISPATCH_WORKERS=4", NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    enum { N = 30 };
    char ids[N][37];
    for (int i = 0; i < N; i++) {
        json_t *j = post_job(&gw, "{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", "
                                  "\"dispatch\": \"batch\", \"metadata\": {\"project\": "
                                  "\"burst\"}}");
        snprintf(ids[i], 37, "%s", th_str(j, "id"));
        json_decref(j);
        if (i == N / 2)
            th_sleep_ms(150);
    }
    kill(gw.pid, SIGKILL);
    th_gw_stop(&gw, 0, 10);
    long before = scalar("SELECT count(*) FROM jobs WHERE status = 'SUBMITTED'");
    cr_assert_lt(before, N, "the crash came in the middle of the burst");
    th_gw_start(&gw, db, env);
    for (int i = 0; i < N; i++)
        json_decref(wait_status(&gw, ids[i], "SUBMITTED", 60));
    names_submitted_once(ids, N);
    cr_assert_eq(scalar("SELECT count(*) FROM dispatch_outbox"), 0);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

Test(dispatch, two_gateways_on_one_database_never_submit_a_job_twice)
{
    const char *env[] = {AWS_ENV(env_endpoint), "MLGW_DISPATCH_WORKERS=3", NULL};
    struct th_gw a, b;
    th_gw_start(&a, db, env);
    th_gw_start(&b, db, env);
    enum { N = 30 };
    char ids[N][37];
    for (int i = 0; i < N; i++) {
        json_t *j = post_job(i % 2 ? &a : &b, "{\"script_key\": \"a.py\", \"compute_type\": "
                                              "\"cpu\", \"dispatch\": \"batch\", \"metadata\": "
                                              "{\"project\": \"burst\"}}");
        snprintf(ids[i], 37, "%s", th_str(j, "id"));
        json_decref(j);
    }
    for (int i = 0; i < N; i++)
        json_decref(wait_status(&a, ids[i], "SUBMITTED", 60));
    names_submitted_once(ids, N);
    cr_assert_eq(scalar("SELECT count(*) FROM job_history WHERE status = 'SUBMITTED'"), N);
    cr_assert_eq(th_gw_stop(&a, SIGTERM, 15), 0);
    cr_assert_eq(th_gw_stop(&b, SIGTERM, 15), 0);
}

Test(dispatch, a_killed_gateways_claims_are_taken_over_within_seconds_and_never_twice)
{
    /* Gateway A's AWS never answers: its dispatchers hold their claims, each
     * in the middle of a SubmitJob, with a lease of two minutes. */
    struct th_mock *hang = th_mock_start();
    th_mock_push(hang, &(struct th_mock_reply){200, "application/json", "{}", NULL, NULL, 60000});
    char hang_ep[128];
    snprintf(hang_ep, sizeof(hang_ep), "AWS_ENDPOINT_URL=%s", th_mock_url(hang));
    const char *env_a[] = {hang_ep,
                           "AWS_REGION=us-east-1",
                           "AWS_ACCESS_KEY_ID=testing",
                           "AWS_SECRET_ACCESS_KEY=testing",
                           "AWS_EC2_METADATA_DISABLED=true",
                           env_gpu_q,
                           env_cpu_q,
                           env_gpu_def,
                           env_cpu_def,
                           "MLGW_DISPATCH_POLL_MS=200",
                           "MLGW_AWS_TIMEOUT_MS=20000",
                           "MLGW_DISPATCH_LEASE=120",
                           "MLGW_DISPATCH_WORKERS=3",
                           "ML_OUTPUT_BUCKET=ml-outputs",
                           NULL};
    const char *env_b[] = {AWS_ENV(env_endpoint), "MLGW_DISPATCH_LEASE=120",
                           "MLGW_DISPATCH_POLL_MS=1000", NULL};
    struct th_gw a, b;
    th_gw_start(&a, db, env_a);
    enum { N = 3 };
    char ids[N][37];
    for (int i = 0; i < N; i++) {
        json_t *j = post_job(&a, "{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", "
                                 "\"dispatch\": \"batch\", \"metadata\": {\"project\": "
                                 "\"burst\"}}");
        snprintf(ids[i], 37, "%s", th_str(j, "id"));
        json_decref(j);
    }
    for (int64_t end = th_deadline(30000); th_mock_count(hang) < N && th_before(end);)
        th_sleep_ms(100);
    cr_assert_eq(th_mock_count(hang), N, "A holds every job, each in a SubmitJob");
    cr_assert_eq(scalar("SELECT count(*) FROM dispatch_outbox WHERE lease_until > now()"), N);

    th_gw_start(&b, db, env_b);
    th_sleep_ms(1500);
    cr_assert_eq(scalar("SELECT count(*) FROM jobs WHERE status = 'SUBMITTED'"), 0,
                 "B leaves a live gateway's claims alone");

    kill(a.pid, SIGKILL);
    th_gw_stop(&a, 0, 10);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++)
        json_decref(wait_status(&b, ids[i], "SUBMITTED", 30));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_leq(took, 5.0, "B took A's claims over %.1f s after the kill (bound: 5 s)", took);
    names_submitted_once(ids, N);
    cr_assert_eq(scalar("SELECT count(*) FROM job_history WHERE status = 'SUBMITTED'"), N);
    cr_assert_eq(th_gw_stop(&b, SIGTERM, 15), 0);
    th_mock_stop(hang);
}

Test(dispatch, a_lost_presence_session_is_taken_again_and_dispatch_goes_on)
{
    const char *env[] = {AWS_ENV(env_endpoint), NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    const char *q =
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted "
        "AND a.application_name = 'ml-gateway-presence' AND a.datname = current_database()";
    cr_assert_eq(scalar(q), 1, "the gateway holds its presence lock");
    cr_assert_eq(th_db_exec(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = 'ml-gateway-presence' "
                                "AND datname = current_database()"),
                 0);
    int back = 0;
    for (int64_t end = th_deadline(30000); !back && th_before(end);) {
        th_sleep_ms(100);
        back = scalar(q) == 1;
    }
    cr_assert(back, "the lock is taken again within 30 s");
    json_t *j = post_job(&gw, "{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", "
                              "\"dispatch\": \"batch\"}");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(j, "id"));
    json_decref(j);
    json_decref(wait_status(&gw, id, "SUBMITTED", 30));
    char *log = th_gw_log(&gw);
    cr_expect(strstr(log, "presence: lost the database session") != NULL, "%s", log);
    free(log);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

Test(dispatch, sigterm_with_a_backlog_of_thousands_exits_within_the_shutdown_budget)
{
    /* 3000 jobs at AWS's 50 SubmitJob/s would take a minute: the stop may
     * not wait for them (MLGW_SHUTDOWN_TIMEOUT=3). */
    const char *env[] = {AWS_ENV(env_endpoint), "MLGW_DISPATCH_WORKERS=4",
                         "MLGW_SHUTDOWN_TIMEOUT=3", NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    cr_assert_eq(th_db_exec(db,
                            "WITH j AS (INSERT INTO jobs (id, status, script_key, compute_type, "
                            "vcpus, memory, gpus, dispatch, output_uri) SELECT "
                            "gen_random_uuid(), 'QUEUED', 'a.py', 'cpu', 2, 4096, 0, 'batch', "
                            "'s3://ml-outputs/x/' FROM generate_series(1, 3000) RETURNING id) "
                            "INSERT INTO dispatch_outbox (job_id, action, target) "
                            "SELECT id, 'submit', 'batch' FROM j"),
                 0);
    for (int64_t end = th_deadline(30000);
         scalar("SELECT count(*) FROM dispatch_outbox") > 2990 && th_before(end);)
        th_sleep_ms(100);
    cr_assert_leq(scalar("SELECT count(*) FROM dispatch_outbox"), 2990, "the dispatchers are busy");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_leq(took, 4.0, "stopped %.1f s after SIGTERM (MLGW_SHUTDOWN_TIMEOUT=3, +1 s)", took);
    long left = scalar("SELECT count(*) FROM dispatch_outbox");
    cr_expect_gt(left, 2500, "the backlog stays for the next gateway: %ld", left);
    char *claimed = th_db_scalar(db, "SELECT count(*) || ' claimed: ' || coalesce(string_agg("
                                     "attempts || '/' || coalesce(last_error, '-'), '; '), '') "
                                     "FROM dispatch_outbox WHERE lease_until > now()");
    cr_expect(claimed != NULL && strncmp(claimed, "0 ", 2) == 0,
              "nothing stays claimed by the stopped gateway: %s", claimed);
    free(claimed);
}

/* ---- after hand-over ---------------------------------------------------------------------- */

Test(dispatch, the_reconciler_brings_a_quiet_batch_job_up_to_date)
{
    const char *env[] = {AWS_ENV(env_endpoint), "MLGW_RECONCILE_INTERVAL=1",
                         "MLGW_RECONCILE_AFTER=1", NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    json_t *j = post_job(&gw, "{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", "
                              "\"dispatch\": \"batch\"}");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(j, "id"));
    json_decref(j);
    /* moto runs the job without Docker and reports SUCCEEDED; nobody calls back. */
    j = wait_status(&gw, id, "SUCCEEDED", 90);
    json_t *h = json_object_get(j, "history");
    int by_reconciler = 0;
    size_t i;
    json_t *e;
    json_array_foreach(h, i, e)
    {
        by_reconciler |= strcmp(th_str(e, "source"), "reconciler") == 0;
    }
    cr_assert(by_reconciler, "the reconciler recorded it");
    cr_assert(json_is_string(json_object_get(j, "stopped_at")));
    json_decref(j);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

Test(dispatch, cancel_after_dispatch_goes_to_aws_batch)
{
    struct th_mock *mock = th_mock_start();
    th_mock_push(mock, &(struct th_mock_reply){200, "application/json",
                                               "{\"jobId\": \"b-%N%\", \"jobArn\": \"arn:b\"}",
                                               NULL, NULL, 0});
    char ep[128];
    snprintf(ep, sizeof(ep), "AWS_ENDPOINT_URL=%s", th_mock_url(mock));
    const char *env[] = {AWS_ENV(ep), NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    json_t *j = post_job(&gw, "{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", "
                              "\"dispatch\": \"batch\"}");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(j, "id"));
    json_decref(j);
    json_decref(wait_status(&gw, id, "SUBMITTED", 20));
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs/%s/cancel", gw.base, id);
    const char *h[] = {writer, NULL};
    struct th_resp r;
    th_http(&r, "POST", url, h, NULL, 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    j = th_resp_json(&r);
    cr_assert_str_eq(th_str(j, "status"), "SUBMITTED", "the final state comes from AWS");
    json_decref(j);
    th_resp_dispose(&r);
    for (int64_t end = th_deadline(30000); th_mock_count(mock) < 2 && th_before(end);)
        th_sleep_ms(100);
    cr_assert_eq(th_mock_count(mock), 2);
    struct th_mock_request req;
    th_mock_request(&req, mock, 1);
    cr_assert_str_eq(req.path, "/v1/canceljob", "CancelJob for a SUBMITTED job");
    json_t *b = json_loads(req.body, 0, NULL);
    cr_assert_str_eq(th_str(b, "jobId"), "b-1");
    json_decref(b);
    th_mock_request_dispose(&req);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
    th_mock_stop(mock);
}

Test(dispatch, metrics_show_the_outbox_and_dispatch_outcomes)
{
    const char *env[] = {AWS_ENV(env_endpoint), NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    json_t *j = post_job(&gw, "{\"script_key\": \"a.py\", \"compute_type\": \"cpu\", "
                              "\"dispatch\": \"batch\"}");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(j, "id"));
    json_decref(j);
    json_decref(wait_status(&gw, id, "SUBMITTED", 20));
    char url[256];
    snprintf(url, sizeof(url), "%s/metrics", gw.base);
    const char *h[] = {writer, NULL};
    struct th_resp r;
    th_http(&r, "GET", url, h, NULL, 0);
    cr_assert(strstr(r.body, "mlgw_outbox_depth 0\n") != NULL, "%s", r.body);
    cr_assert(strstr(r.body, "mlgw_dispatch_total{target=\"batch\",result=\"ok\",reason=\"none\"} "
                             "1\n") != NULL,
              "%s", r.body);
    cr_assert(strstr(r.body, "mlgw_batch_submit_seconds_count 1\n") != NULL, "%s", r.body);
    th_resp_dispose(&r);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}
