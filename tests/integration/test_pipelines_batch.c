/*
 * One pipeline definition dispatched to AWS Batch (moto in server mode): the
 * gateway submits each step's jobs with SubmitJob, and EventBridge callbacks
 * (POST /events/batch, as AWS would send them) drive the run from step to
 * step, fan-out included; a FAILED callback skips the dependents.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/harness.h"

#define SECRET "callback-secret-123"

static char db[1024], auth[128];
static char env_endpoint[300], env_q[300], env_gq[300], env_def[300], env_gdef[300];
static struct th_gw gw;

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    char key[96];
    th_key_create(key, sizeof(key), db, "writer", "jobs:read,jobs:write");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    snprintf(env_endpoint, sizeof(env_endpoint), "AWS_ENDPOINT_URL=%s", th_moto_url());
    snprintf(env_q, sizeof(env_q), "MLGW_CPU_JOB_QUEUE=%s", th_moto_resource("cpu_queue"));
    snprintf(env_gq, sizeof(env_gq), "MLGW_GPU_JOB_QUEUE=%s", th_moto_resource("gpu_queue"));
    snprintf(env_def, sizeof(env_def), "MLGW_CPU_JOB_DEFINITION=%s",
             th_moto_resource("job_definition"));
    snprintf(env_gdef, sizeof(env_gdef), "MLGW_GPU_JOB_DEFINITION=%s",
             th_moto_resource("job_definition"));
    const char *env[] = {env_endpoint, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=testing",
                         "AWS_SECRET_ACCESS_KEY=testing", "AWS_EC2_METADATA_DISABLED=true", env_q,
                         env_gq, env_def, env_gdef, "MLGW_DISPATCH=batch",
                         "MLGW_DISPATCH_POLL_MS=200", "MLGW_CALLBACK_SECRET=" SECRET,
                         /* callbacks, not the reconciler, drive this test */
                         "MLGW_RECONCILE_INTERVAL=3600", "MLGW_RECONCILE_AFTER=86400",
                         "ML_INPUT_BUCKET=ml-inputs", "ML_OUTPUT_BUCKET=ml-outputs", NULL};
    th_gw_start(&gw, db, env);
}

static void teardown(void)
{
    cr_expect_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

TestSuite(pipelines_batch, .init = setup, .fini = teardown);

static json_t *call_json(const char *method, const char *path, const char *body, long want)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, method, url, h, body, body ? strlen(body) : 0), 0);
    cr_assert_eq(r.status, want, "%s %s: %ld %s", method, path, r.status, r.body);
    json_t *j = th_resp_json(&r);
    th_resp_dispose(&r);
    return j;
}

/* The Batch Job State Change event AWS would send for a job. */
static void callback(const char *batch_id, const char *gateway_id, const char *status, int n)
{
    int ok = strcmp(status, "SUCCEEDED") == 0;
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"version\": \"0\", \"id\": \"ev-%s-%s-%d\", \"detail-type\": \"Batch Job State "
             "Change\", \"source\": \"aws.batch\", \"account\": \"123456789012\", \"time\": "
             "\"2026-11-28T20:01:50Z\", \"region\": \"us-east-1\", \"resources\": [], "
             "\"detail\": {\"jobName\": \"mlgw-%s\", \"jobId\": \"%s\", \"jobQueue\": \"q\", "
             "\"status\": \"%s\", \"statusReason\": \"%s\", \"attempts\": [{\"container\": "
             "{\"exitCode\": %d}}], \"createdAt\": 1764360100000, \"startedAt\": 1764360105000, "
             "\"stoppedAt\": 1764360110000, \"container\": {\"exitCode\": %d}, \"tags\": "
             "{\"mlgw:job-id\": \"%s\"}}}",
             batch_id, status, n, gateway_id, batch_id, status, ok ? "" : "exit 3", ok ? 0 : 3,
             ok ? 0 : 3, gateway_id);
    char url[256];
    snprintf(url, sizeof(url), "%s/events/batch", gw.base);
    const char *h[] = {"Content-Type: application/json", "X-Callback-Key: " SECRET, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, body, strlen(body)), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_dispose(&r);
}

static json_t *get_run(const char *path)
{
    return call_json("GET", path, NULL, 200);
}

static json_t *step_of(json_t *run, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(run, "steps"), i, s)
    {
        if (strcmp(th_str(s, "name"), name) == 0)
            return s;
    }
    cr_assert_fail("no step %s", name);
    return NULL;
}

/* Waits until every job of step has been submitted to Batch (moto), then
 * calls back status for each; returns how many jobs the step had. */
static size_t finish_step(const char *path, const char *step, const char *status)
{
    for (int i = 0; i < 150; i++) {
        json_t *run = get_run(path);
        json_t *jobs = json_object_get(step_of(run, step), "jobs");
        size_t n = json_array_size(jobs), submitted = 0;
        char ids[16][37];
        char batch[16][80];
        for (size_t k = 0; k < n && k < 16; k++) {
            json_t *job = th_job_get(&gw, auth, th_str(json_array_get(jobs, k), "id"));
            snprintf(ids[k], 37, "%s", th_str(job, "id"));
            const char *b = th_str(job, "batch_job_id");
            if (b != NULL) {
                snprintf(batch[k], sizeof(batch[k]), "%s", b);
                submitted++;
            }
            json_decref(job);
        }
        json_decref(run);
        if (n > 0 && submitted == n) {
            for (size_t k = 0; k < n; k++)
                callback(batch[k], ids[k], status, (int)k);
            return n;
        }
        th_sleep_ms(200);
    }
    cr_assert_fail("step %s was not submitted to Batch", step);
    return 0;
}

static json_t *wait_run(const char *path, const char *want)
{
    for (int i = 0; i < 150; i++) {
        json_t *run = get_run(path);
        if (strcmp(th_str(run, "status"), want) == 0)
            return run;
        json_decref(run);
        th_sleep_ms(200);
    }
    cr_assert_fail("run %s did not become %s", path, want);
    return NULL;
}

Test(pipelines_batch, callbacks_drive_a_batch_run_through_fan_out_to_the_end)
{
    json_decref(call_json(
        "POST", "/pipelines",
        "{\"name\": \"aws\", \"defaults\": {\"compute_type\": \"cpu\"},"
        " \"steps\": [{\"name\": \"prep\", \"script_key\": \"jobs/cpu_processing.py\"},"
        " {\"name\": \"train\", \"script_key\": \"jobs/gpu_training.py\", \"compute_type\": "
        "\"gpu\","
        "  \"depends_on\": [\"prep\"], \"matrix\": {\"LEARNING_RATE\": [\"0.01\", \"0.001\"]}},"
        " {\"name\": \"eval\", \"script_key\": \"jobs/gpu_inference.py\","
        "  \"depends_on\": [\"train\"]}]}",
        201));
    json_t *run = call_json("POST", "/pipelines/aws/runs", "{}", 202);
    char path[160];
    snprintf(path, sizeof(path), "/pipelines/aws/runs/%s", th_str(run, "id"));
    json_decref(run);

    cr_assert_eq(finish_step(path, "prep", "SUCCEEDED"), 1);
    cr_assert_eq(finish_step(path, "train", "SUCCEEDED"), 2);
    run = get_run(path);
    json_t *train = json_object_get(step_of(run, "train"), "jobs");
    json_t *j0 = th_job_get(&gw, auth, th_str(json_array_get(train, 0), "id"));
    cr_assert_str_eq(th_str(j0, "dispatch"), "batch");
    cr_assert_str_eq(th_str(j0, "compute_type"), "gpu");
    const char *parents = th_str(json_object_get(j0, "env"), "PARENT_OUTPUT_URIS");
    cr_assert(parents != NULL && strstr(parents, "s3://ml-outputs/jobs/") != NULL, "%s",
              parents ? parents : "(none)");
    cr_assert_not_null(th_str(json_object_get(j0, "env"), "LEARNING_RATE"));
    json_decref(j0);
    json_decref(run);
    cr_assert_eq(finish_step(path, "eval", "SUCCEEDED"), 1);
    run = wait_run(path, "SUCCEEDED");
    json_decref(run);
}

Test(pipelines_batch, a_failed_callback_skips_the_rest_of_a_batch_run)
{
    json_decref(call_json("POST", "/pipelines",
                          "{\"name\": \"awsfail\", \"defaults\": {\"compute_type\": \"cpu\"},"
                          " \"steps\": [{\"name\": \"a\", \"script_key\": \"jobs/a.py\"},"
                          " {\"name\": \"b\", \"script_key\": \"jobs/b.py\","
                          "  \"depends_on\": [\"a\"]}]}",
                          201));
    json_t *run = call_json("POST", "/pipelines/awsfail/runs", "{}", 202);
    char path[160];
    snprintf(path, sizeof(path), "/pipelines/awsfail/runs/%s", th_str(run, "id"));
    json_decref(run);
    finish_step(path, "a", "FAILED");
    run = wait_run(path, "FAILED");
    cr_assert_str_eq(th_str(step_of(run, "b"), "status"), "SKIPPED");
    json_decref(run);
}
