/*
 * aws/ clients end to end against moto in server mode: every call the
 * gateway makes, and clean structured errors where AWS would refuse.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/harness.h"
#include "aws/batch.h"
#include "aws/credentials.h"
#include "aws/logs.h"
#include "aws/s3.h"
#include "aws/sns.h"
#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"

static const char *test_env(const char *name, void *ctx)
{
    (void)ctx;
    if (strcmp(name, "AWS_REGION") == 0)
        return "us-east-1";
    if (strcmp(name, "AWS_ENDPOINT_URL") == 0)
        return th_moto_url();
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return "testing";
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return "testing-secret-never-logged";
    if (strcmp(name, "AWS_EC2_METADATA_DISABLED") == 0)
        return "true";
    return NULL;
}

static struct aws_creds_provider *creds;
static struct aws_client *aws;

static void setup(void)
{
    struct gw_err err = {0};
    struct aws_creds_opts co = {.getenv_fn = test_env};
    cr_assert_eq(aws_creds_provider_new(&creds, &co, &err), GW_OK, "%s", err.msg);
    struct aws_client_opts o = {.getenv_fn = test_env, .creds = creds, .max_attempts = 2};
    cr_assert_eq(aws_client_new(&aws, &o, &err), GW_OK, "%s", err.msg);
}

static void teardown(void)
{
    aws_client_free(aws);
    aws_creds_provider_free(creds);
}

TestSuite(aws, .init = setup, .fini = teardown);

static void unique(char *out, size_t n, const char *prefix)
{
    unsigned char r[6];
    char hex[13];
    gw_random_bytes(r, sizeof(r));
    gw_hex(hex, r, sizeof(r));
    snprintf(out, n, "%s-%s", prefix, hex);
}

static void submit(char id[128], const char *name)
{
    json_t *env = json_pack("{s:s,s:s}", "JOB_ID", "j-1", "COMPUTE_TYPE", "cpu");
    json_t *cmd = json_pack("[s,s]", "--epochs", "3");
    json_t *tags = json_pack("{s:s}", "mlgw:job-id", name);
    struct aws_batch_submit in = {
        .job_name = name,
        .job_queue = th_moto_resource("cpu_queue"),
        .job_definition = th_moto_resource("job_definition"),
        .vcpus = 2,
        .memory_mib = 4096,
        .environment = env,
        .command = cmd,
        .attempt_duration_s = 3600,
        .attempts = 3,
        .retry_spot_only = 1,
        .tags = tags,
        .propagate_tags = 1,
    };
    char arn[512];
    struct aws_error err;
    int rc = aws_batch_submit_job(id, arn, aws, &in, &err);
    cr_assert_eq(rc, GW_OK, "SubmitJob: %s %s", err.code, err.message);
    cr_assert(id[0] != '\0');
    cr_assert(strstr(arn, "arn:aws:batch:us-east-1:") == arn, "%s", arn);
    json_decref(env);
    json_decref(cmd);
    json_decref(tags);
}

Test(aws, batch_submit_describe_list_cancel_and_terminate)
{
    char name[64], id[128];
    unique(name, sizeof(name), "mlgw-test");
    submit(id, name);

    json_t *jobs = NULL;
    struct aws_error err;
    const char *ids[] = {id, "no-such-job-id"};
    cr_assert_eq(aws_batch_describe_jobs(&jobs, aws, ids, 2, &err), GW_OK, "%s", err.message);
    cr_assert_eq(json_array_size(jobs), 1, "unknown ids are simply absent");
    json_t *j = json_array_get(jobs, 0);
    cr_assert_str_eq(json_string_value(json_object_get(j, "jobName")), name);
    cr_assert_str_eq(json_string_value(json_object_get(j, "jobId")), id);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "tags"), "mlgw:job-id")),
                     name);
    json_decref(jobs);

    struct aws_batch_list l = {.job_queue = th_moto_resource("cpu_queue"), .job_name = name};
    cr_assert_eq(aws_batch_list_jobs(&jobs, aws, &l, &err), GW_OK, "%s", err.message);
    cr_assert_eq(json_array_size(jobs), 1, "JOB_NAME filter finds exactly ours");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(jobs, 0), "jobId")), id);
    json_decref(jobs);

    cr_assert_eq(aws_batch_cancel_job(aws, id, "test cancel", &err), GW_OK, "%s", err.message);
    cr_assert_eq(aws_batch_terminate_job(aws, id, "test terminate", &err), GW_OK, "%s",
                 err.message);
}

Test(aws, batch_list_finds_nothing_for_an_unused_name)
{
    char name[64];
    unique(name, sizeof(name), "never-submitted");
    json_t *jobs = NULL;
    struct aws_error err;
    struct aws_batch_list l = {.job_queue = th_moto_resource("gpu_queue"), .job_name = name};
    cr_assert_eq(aws_batch_list_jobs(&jobs, aws, &l, &err), GW_OK, "%s", err.message);
    cr_assert_eq(json_array_size(jobs), 0);
    json_decref(jobs);
}

Test(aws, batch_submit_to_an_unknown_queue_is_a_structured_client_error)
{
    struct aws_batch_submit in = {
        .job_name = "x",
        .job_queue = "no-such-queue",
        .job_definition = th_moto_resource("job_definition"),
        .vcpus = 1,
        .memory_mib = 512,
    };
    char id[128], arn[512];
    struct aws_error err;
    int rc = aws_batch_submit_job(id, arn, aws, &in, &err);
    cr_assert_eq(rc, GW_EUPSTREAM, "rc %d", rc);
    cr_assert_eq(err.http_status, 400);
    cr_assert_str_eq(err.code, "ClientException");
    cr_assert(err.message[0] != '\0');
    cr_assert_eq(err.attempts, 1, "validation errors are not retried");
    cr_assert_not(err.retryable);
}

Test(aws, sns_publish_delivers_the_message_and_its_attributes)
{
    char msg[160], id[128], nonce[64];
    unique(nonce, sizeof(nonce), "n");
    snprintf(msg, sizeof(msg), "{\"trigger_type\":\"batch_job\",\"nonce\":\"%s\"}", nonce);
    struct aws_sns_attribute attrs[] = {{"trigger_type", "batch_job"}, {"compute_type", "gpu"}};
    struct aws_sns_publish in = {.topic_arn = th_moto_resource("topic_arn"),
                                 .message = msg,
                                 .attributes = attrs,
                                 .nattributes = 2};
    struct aws_error err;
    cr_assert_eq(aws_sns_publish(id, aws, &in, &err), GW_OK, "%s %s", err.code, err.message);
    cr_assert(strlen(id) >= 16, "MessageId %s", id);

    /* Read it back from the subscribed queue (raw delivery) with botocore. */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s/bin/python' '%s' '%s' '%s'",
             getenv("MLGW_VENV") ? getenv("MLGW_VENV") : "build/venv",
             th_source_path("tests/tools/sqs_receive.py"), th_moto_url(),
             th_moto_resource("tap_queue_url"));
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    cr_assert_eq(pclose(p), 0, "sqs_receive failed: %s", buf);
    json_t *got = json_loads(buf, 0, NULL);
    cr_assert(got != NULL, "%s", buf);
    int found = 0;
    size_t i;
    json_t *m;
    json_array_foreach(got, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "body")), msg) != 0)
            continue;
        found = 1;
        json_t *a = json_object_get(m, "attributes");
        cr_assert_str_eq(json_string_value(json_object_get(a, "compute_type")), "gpu");
        cr_assert_str_eq(json_string_value(json_object_get(a, "trigger_type")), "batch_job");
    }
    cr_assert(found, "published message not delivered: %s", buf);
    json_decref(got);
}

Test(aws, sns_publish_to_an_unknown_topic_is_not_found)
{
    struct aws_sns_publish in = {.topic_arn = "arn:aws:sns:us-east-1:123456789012:nope",
                                 .message = "x"};
    char id[128];
    struct aws_error err;
    cr_assert_eq(aws_sns_publish(id, aws, &in, &err), GW_EUPSTREAM);
    cr_assert_str_eq(err.code, "NotFound");
    cr_assert_eq(err.http_status, 404);
}

Test(aws, s3_put_head_get_round_trip_with_awkward_keys)
{
    const char *keys[] = {"jobs/train.py", "outputs/run 1/model (final).pt", "jobs/naïve+plus.txt"};
    for (size_t i = 0; i < 3; i++) {
        char body[64], etag[128];
        snprintf(body, sizeof(body), "content of %zu", i);
        struct aws_error err;
        cr_assert_eq(aws_s3_put_object(etag, aws, "ml-inputs", keys[i], body, strlen(body),
                                       "text/plain", &err),
                     GW_OK, "put %s: %s %s", keys[i], err.code, err.message);
        long long size = 0;
        char etag2[128];
        cr_assert_eq(aws_s3_head_object(&size, etag2, aws, "ml-inputs", keys[i], &err), GW_OK);
        cr_assert_eq(size, (long long)strlen(body));
        cr_assert_str_eq(etag, etag2);
        struct gw_buf out;
        gw_buf_init(&out, 1 << 20);
        cr_assert_eq(aws_s3_get_object(&out, aws, "ml-inputs", keys[i], 0, &err), GW_OK);
        cr_assert_eq(out.len, strlen(body));
        cr_assert_eq(memcmp(out.data, body, out.len), 0);
        gw_buf_dispose(&out);
    }
}

Test(aws, s3_missing_key_and_bucket_are_not_found_with_the_right_code)
{
    struct gw_buf out;
    gw_buf_init(&out, 1 << 20);
    struct aws_error err;
    cr_assert_eq(aws_s3_get_object(&out, aws, "ml-inputs", "no/such/key", 0, &err), GW_ENOTFOUND);
    cr_assert_str_eq(err.code, "NoSuchKey");
    cr_assert_eq(aws_s3_get_object(&out, aws, "no-such-bucket-x", "k", 0, &err), GW_ENOTFOUND);
    cr_assert_str_eq(err.code, "NoSuchBucket");
    long long size;
    char etag[128];
    cr_assert_eq(aws_s3_head_object(&size, etag, aws, "ml-inputs", "absent", &err), GW_ENOTFOUND);
    gw_buf_dispose(&out);
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    struct gw_buf *b = ud;
    return gw_buf_add(b, p, s * n) == GW_OK ? s * n : 0;
}

Test(aws, s3_presigned_put_and_get_urls_work_without_credentials)
{
    char *put = NULL, *get = NULL;
    struct aws_error err;
    cr_assert_eq(aws_s3_presign(&put, aws, "PUT", "ml-outputs", "shared/report 1.txt", 300, &err),
                 GW_OK, "%s", err.code);
    cr_assert(strstr(put, "X-Amz-Signature=") != NULL, "%s", put);
    cr_assert(strstr(put, "X-Amz-Expires=300") != NULL, "%s", put);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, put);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "presigned!");
    /* Without a type libcurl says form-urlencoded, and S3 emulators parse it. */
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    struct gw_buf b;
    gw_buf_init(&b, 1 << 20);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    cr_assert_eq(curl_easy_perform(h), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    cr_assert_eq(status, 200, "%s", b.data ? b.data : "");
    cr_assert_eq(aws_s3_presign(&get, aws, "GET", "ml-outputs", "shared/report 1.txt", 300, &err),
                 GW_OK);
    curl_easy_reset(h);
    gw_buf_reset(&b);
    curl_easy_setopt(h, CURLOPT_URL, get);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    cr_assert_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    cr_assert_eq(status, 200);
    cr_assert_str_eq(b.data, "presigned!");
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    gw_buf_dispose(&b);
    free(put);
    free(get);
}

Test(aws, logs_get_events_reads_a_stream_and_a_missing_one_is_not_found)
{
    json_t *ev = NULL;
    char next[512];
    struct aws_error err;
    struct aws_logs_get in = {.group = th_moto_resource("log_group"),
                              .stream = th_moto_resource("log_stream"),
                              .start_from_head = 1};
    cr_assert_eq(aws_logs_get_events(&ev, next, aws, &in, &err), GW_OK, "%s %s", err.code,
                 err.message);
    cr_assert_eq(json_array_size(ev), 5);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ev, 0), "message")),
                     "line 0");
    cr_assert(next[0] != '\0');
    json_decref(ev);
    in.stream = "no-such-stream";
    cr_assert_eq(aws_logs_get_events(&ev, next, aws, &in, &err), GW_ENOTFOUND);
    cr_assert_str_eq(err.code, "ResourceNotFoundException");
}
