/*
 * aws/transport.c against a scripted local HTTP peer: retries with backoff on
 * throttling, 5xx and network errors, none on validation errors; no blind
 * retry of a non-idempotent call after an ambiguous failure; errors parsed
 * from JSON, headers and XML; signing headers present; endpoints resolved
 * the SDK way; credentials never logged.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../harness/harness.h"
#include "../harness/mock_http.h"
#include "aws/batch.h"
#include "aws/credentials.h"
#include "aws/s3.h"
#include "aws/sns.h"
#include "common/err.h"

static struct th_mock *mock;
static char endpoint_batch[128] = "";
static char session_token[64] = "";

static const char *env(const char *name, void *ctx)
{
    (void)ctx;
    if (strcmp(name, "AWS_REGION") == 0)
        return "eu-west-1";
    if (strcmp(name, "AWS_ENDPOINT_URL") == 0)
        return th_mock_url(mock);
    if (strcmp(name, "AWS_ENDPOINT_URL_BATCH") == 0)
        return endpoint_batch[0] ? endpoint_batch : NULL;
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return "AKIDTRANSPORTTEST";
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return "SuperSecretKeyThatMustNeverBeLogged";
    if (strcmp(name, "AWS_SESSION_TOKEN") == 0)
        return session_token[0] ? session_token : NULL;
    if (strcmp(name, "AWS_EC2_METADATA_DISABLED") == 0)
        return "true";
    return NULL;
}

static struct aws_creds_provider *creds;
static struct aws_client *aws;

static void make_client(int timeout_ms)
{
    struct gw_err err = {0};
    struct aws_creds_opts co = {.getenv_fn = env};
    cr_assert_eq(aws_creds_provider_new(&creds, &co, &err), GW_OK, "%s", err.msg);
    struct aws_client_opts o = {.getenv_fn = env,
                                .creds = creds,
                                .max_attempts = 4,
                                .backoff_base_ms = 10,
                                .backoff_cap_ms = 40,
                                .timeout_ms = timeout_ms};
    cr_assert_eq(aws_client_new(&aws, &o, &err), GW_OK, "%s", err.msg);
}

static void setup(void)
{
    mock = th_mock_start();
    endpoint_batch[0] = '\0';
    session_token[0] = '\0';
    make_client(2000);
}

static void teardown(void)
{
    aws_client_free(aws);
    aws_creds_provider_free(creds);
    th_mock_stop(mock);
}

TestSuite(transport, .init = setup, .fini = teardown);

static const struct th_mock_reply ok_describe = {
    200, "application/json", "{\"jobs\": []}", "x-amzn-RequestId", "req-ok", 0};

static int describe(struct aws_error *err)
{
    json_t *jobs = NULL;
    const char *ids[] = {"a"};
    int rc = aws_batch_describe_jobs(&jobs, aws, ids, 1, err);
    json_decref(jobs);
    return rc;
}

Test(transport, server_errors_are_retried_until_success)
{
    struct th_mock_reply e500 = {
        500, "application/json", "{\"__type\": \"ServerException\"}", NULL, NULL, 0};
    th_mock_push(mock, &e500);
    th_mock_push(mock, &e500);
    th_mock_push(mock, &ok_describe);
    struct aws_error err;
    cr_assert_eq(describe(&err), GW_OK, "%s", err.code);
    cr_assert_eq(th_mock_count(mock), 3);
}

Test(transport, throttling_is_retried_whatever_the_status)
{
    struct th_mock_reply thr = {400,
                                "application/json",
                                "{\"__type\": \"ThrottlingException\", \"message\": \"slow down\"}",
                                NULL,
                                NULL,
                                0};
    struct th_mock_reply t429 = {429, "application/json", "{\"message\": \"Too Many\"}", NULL, NULL,
                                 0};
    th_mock_push(mock, &thr);
    th_mock_push(mock, &t429);
    th_mock_push(mock, &ok_describe);
    struct aws_error err;
    cr_assert_eq(describe(&err), GW_OK);
    cr_assert_eq(th_mock_count(mock), 3);
}

Test(transport, validation_errors_are_not_retried_and_come_back_structured)
{
    struct th_mock_reply bad = {400,
                                "application/json",
                                "{\"__type\": \"ClientException\", \"message\": \"Job queue does "
                                "not exist\"}",
                                "x-amzn-RequestId",
                                "req-1234",
                                0};
    th_mock_push(mock, &bad);
    struct aws_error err;
    cr_assert_eq(describe(&err), GW_EUPSTREAM);
    cr_assert_eq(th_mock_count(mock), 1);
    cr_assert_eq(err.attempts, 1);
    cr_assert_eq(err.http_status, 400);
    cr_assert_str_eq(err.code, "ClientException");
    cr_assert_str_eq(err.message, "Job queue does not exist");
    cr_assert_str_eq(err.request_id, "req-1234");
}

Test(transport, error_type_header_and_namespaced_types_are_understood)
{
    struct th_mock_reply hdr = {400,
                                "application/json",
                                "{}",
                                "x-amzn-ErrorType",
                                "ClientException:http://internal.amazon.com/coral/",
                                0};
    th_mock_push(mock, &hdr);
    struct aws_error err;
    cr_assert_eq(describe(&err), GW_EUPSTREAM);
    cr_assert_str_eq(err.code, "ClientException");

    struct th_mock_reply ns = {400,
                               "application/json",
                               "{\"__type\": \"com.amazonaws.batch#ClientException\"}",
                               NULL,
                               NULL,
                               0};
    th_mock_push(mock, &ns);
    cr_assert_eq(describe(&err), GW_EUPSTREAM);
    cr_assert_str_eq(err.code, "ClientException");
}

Test(transport, query_protocol_xml_errors_are_parsed)
{
    struct th_mock_reply xml = {
        404,
        "text/xml",
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender"
        "</Type><Code>NotFound</Code><Message>Topic does not exist &amp; never did</Message>"
        "</Error><RequestId>9b2b-xml</RequestId></ErrorResponse>",
        NULL,
        NULL,
        0};
    th_mock_push(mock, &xml);
    struct aws_sns_publish in = {.topic_arn = "arn:aws:sns:eu-west-1:1:x", .message = "m"};
    char id[128];
    struct aws_error err;
    cr_assert_eq(aws_sns_publish(id, aws, &in, &err), GW_EUPSTREAM);
    cr_assert_str_eq(err.code, "NotFound");
    cr_assert_str_eq(err.message, "Topic does not exist & never did");
    cr_assert_str_eq(err.request_id, "9b2b-xml");
}

Test(transport, persistent_5xx_gives_up_after_max_attempts_as_unavailable)
{
    struct th_mock_reply e503 = {503, "text/plain", "down", NULL, NULL, 0};
    th_mock_push(mock, &e503);
    struct aws_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(describe(&err), GW_EUNAVAIL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(th_mock_count(mock), 4);
    cr_assert_eq(err.attempts, 4);
    cr_assert_eq(err.http_status, 503);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(s, 2.0, "backoff is capped (took %.2f s)", s);
}

Test(transport, connection_refused_is_unavailable_and_not_ambiguous)
{
    snprintf(endpoint_batch, sizeof(endpoint_batch), "http://127.0.0.1:1");
    struct aws_error err;
    cr_assert_eq(describe(&err), GW_EUNAVAIL);
    cr_assert_eq(err.http_status, 0);
    cr_assert_not(err.ambiguous);
    cr_assert_eq(err.attempts, 4);
}

Test(transport, a_timed_out_submit_is_ambiguous_and_not_retried)
{
    aws_client_free(aws);
    aws_creds_provider_free(creds);
    make_client(300);
    struct th_mock_reply slow = {200, "application/json", "{\"jobId\": \"late\"}", NULL, NULL,
                                 1500};
    th_mock_push(mock, &slow);
    struct aws_batch_submit in = {
        .job_name = "n", .job_queue = "q", .job_definition = "d", .vcpus = 1, .memory_mib = 512};
    char id[128], arn[512];
    struct aws_error err;
    cr_assert_eq(aws_batch_submit_job(id, arn, aws, &in, &err), GW_EUNAVAIL);
    cr_assert(err.ambiguous, "the service may have accepted it");
    cr_assert_eq(err.attempts, 1, "never sent twice blindly");
    /* An idempotent call after the same failure is retried. */
    struct aws_error err2;
    cr_assert_eq(describe(&err2), GW_EUNAVAIL);
    cr_assert_eq(err2.attempts, 4);
}

Test(transport, an_answer_over_the_size_limit_is_unavailable_and_not_retried)
{
    struct th_mock_reply big = {
        200, "application/octet-stream", "0123456789012345678901234567890123456789", NULL, NULL, 0};
    th_mock_push(mock, &big);
    struct gw_buf out;
    gw_buf_init(&out, 64);
    struct aws_error err;
    cr_assert_eq(aws_s3_get_object(&out, aws, "bucket", "key", 16, &err), GW_EUNAVAIL);
    cr_assert_str_eq(err.message, "response larger than allowed");
    cr_assert_eq(err.attempts, 1, "a size limit is not retried");
    cr_assert_eq(th_mock_count(mock), 1);
    cr_assert_eq(out.len, 0);
    gw_buf_dispose(&out);
}

Test(transport, head_reports_the_size_of_an_object_larger_than_any_answer_limit)
{
    /* 9 MiB: more than the 8 MiB default answer limit, which bounds bodies only. */
    size_t n = (size_t)9 * 1024 * 1024;
    char *body = malloc(n + 1);
    cr_assert_not_null(body);
    memset(body, 'x', n);
    body[n] = '\0';
    struct th_mock_reply r = {200, "application/octet-stream", body, "ETag", "\"e-9m\"", 0};
    th_mock_push(mock, &r);
    free(body);
    long long size = -1;
    char etag[128] = "";
    struct aws_error err;
    cr_assert_eq(aws_s3_head_object(&size, etag, aws, "bucket", "big", &err), GW_OK, "%s: %s",
                 err.code, err.message);
    cr_assert_eq(size, (long long)n);
    cr_assert_str_eq(etag, "\"e-9m\"");
}

Test(transport, requests_are_signed_for_the_region_and_service)
{
    th_mock_push(mock, &ok_describe);
    snprintf(session_token, sizeof(session_token), "session-token-xyz");
    struct aws_error err;
    cr_assert_eq(describe(&err), GW_OK);
    struct th_mock_request r;
    th_mock_request(&r, mock, 0);
    cr_assert_str_eq(r.method, "POST");
    cr_assert_str_eq(r.path, "/v1/describejobs");
    char *authz = th_mock_header(&r, "authorization");
    cr_assert(authz != NULL);
    cr_assert(strncmp(authz, "AWS4-HMAC-SHA256 Credential=AKIDTRANSPORTTEST/", 46) == 0, "%s",
              authz);
    cr_assert(strstr(authz, "/eu-west-1/batch/aws4_request") != NULL, "%s", authz);
    cr_assert(strstr(authz, "x-amz-security-token") != NULL, "the token is signed: %s", authz);
    char *date = th_mock_header(&r, "x-amz-date");
    cr_assert(date != NULL && strlen(date) == 16 && date[8] == 'T' && date[15] == 'Z');
    char *tok = th_mock_header(&r, "x-amz-security-token");
    cr_assert_str_eq(tok, "session-token-xyz");
    json_t *body = json_loads(r.body, 0, NULL);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(body, "jobs"), 0)), "a");
    json_decref(body);
    free(authz);
    free(date);
    free(tok);
    th_mock_request_dispose(&r);
}

Test(transport, describe_jobs_asks_in_groups_of_at_most_100)
{
    th_mock_push(mock, &ok_describe);
    const char *ids[250];
    char names[250][16];
    for (int i = 0; i < 250; i++) {
        snprintf(names[i], sizeof(names[i]), "job-%d", i);
        ids[i] = names[i];
    }
    json_t *jobs = NULL;
    struct aws_error err;
    cr_assert_eq(aws_batch_describe_jobs(&jobs, aws, ids, 250, &err), GW_OK);
    json_decref(jobs);
    cr_assert_eq(th_mock_count(mock), 3);
    size_t sizes[3];
    for (size_t i = 0; i < 3; i++) {
        struct th_mock_request r;
        th_mock_request(&r, mock, i);
        json_t *b = json_loads(r.body, 0, NULL);
        sizes[i] = json_array_size(json_object_get(b, "jobs"));
        json_decref(b);
        th_mock_request_dispose(&r);
    }
    cr_assert(sizes[0] == 100 && sizes[1] == 100 && sizes[2] == 50);
}

Test(transport, submit_job_body_carries_every_field_batch_needs)
{
    th_mock_push(mock, &(struct th_mock_reply){200, "application/json",
                                               "{\"jobId\": \"b-1\", \"jobArn\": \"arn:x\"}", NULL,
                                               NULL, 0});
    json_t *env = json_pack("{s:s}", "JOB_ID", "g-1");
    json_t *cmd = json_pack("[s]", "--fast");
    json_t *tags = json_pack("{s:s}", "mlgw:job-id", "g-1");
    json_t *deps = json_pack("[s]", "b-0");
    struct aws_batch_submit in = {.job_name = "proj-g-1",
                                  .job_queue = "gpu-q",
                                  .job_definition = "def",
                                  .vcpus = 4,
                                  .memory_mib = 16384,
                                  .gpus = 1,
                                  .environment = env,
                                  .command = cmd,
                                  .attempt_duration_s = 3600,
                                  .attempts = 3,
                                  .retry_spot_only = 1,
                                  .tags = tags,
                                  .propagate_tags = 1,
                                  .depends_on = deps,
                                  .array_size = 4};
    char id[128], arn[512];
    struct aws_error err;
    cr_assert_eq(aws_batch_submit_job(id, arn, aws, &in, &err), GW_OK);
    cr_assert_str_eq(id, "b-1");
    struct th_mock_request r;
    th_mock_request(&r, mock, 0);
    cr_assert_str_eq(r.path, "/v1/submitjob");
    json_t *b = json_loads(r.body, 0, NULL);
    json_t *co = json_object_get(b, "containerOverrides");
    json_t *rr = json_object_get(co, "resourceRequirements");
    cr_assert_eq(json_array_size(rr), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(rr, 2), "type")), "GPU");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(rr, 1), "value")), "16384");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(co, "environment"), 0), "name")),
                     "JOB_ID");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(co, "command"), 0)),
                     "--fast");
    cr_assert_eq(json_integer_value(
                     json_object_get(json_object_get(b, "timeout"), "attemptDurationSeconds")),
                 3600);
    json_t *rs = json_object_get(b, "retryStrategy");
    cr_assert_eq(json_integer_value(json_object_get(rs, "attempts")), 3);
    json_t *eoe = json_object_get(rs, "evaluateOnExit");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(eoe, 0), "onStatusReason")),
                     "Host EC2*");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(eoe, 0), "action")), "RETRY");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(eoe, 1), "action")), "EXIT");
    cr_assert(json_is_true(json_object_get(b, "propagateTags")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "tags"), "mlgw:job-id")),
                     "g-1");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(b, "dependsOn"), 0), "jobId")),
                     "b-0");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(b, "arrayProperties"), "size")),
                 4);
    json_decref(b);
    th_mock_request_dispose(&r);
    json_decref(env);
    json_decref(cmd);
    json_decref(tags);
    json_decref(deps);
}

Test(transport, endpoints_resolve_like_the_sdks)
{
    char *e = aws_endpoint_for(aws, "BATCH", "batch");
    cr_assert_str_eq(e, th_mock_url(mock), "AWS_ENDPOINT_URL applies to every service");
    free(e);
    snprintf(endpoint_batch, sizeof(endpoint_batch), "http://127.0.0.1:9/");
    e = aws_endpoint_for(aws, "BATCH", "batch");
    cr_assert_str_eq(e, "http://127.0.0.1:9", "AWS_ENDPOINT_URL_BATCH wins, slash trimmed");
    free(e);
    e = aws_endpoint_for(aws, "SNS", "sns");
    cr_assert_str_eq(e, th_mock_url(mock));
    free(e);
}

static const char *public_env(const char *name, void *ctx)
{
    (void)ctx;
    if (strcmp(name, "AWS_DEFAULT_REGION") == 0)
        return "cn-north-1";
    return NULL;
}

Test(transport, public_endpoints_follow_the_region)
{
    struct aws_client *c = NULL;
    struct gw_err gerr = {0};
    struct aws_client_opts o = {.getenv_fn = public_env, .creds = creds};
    cr_assert_eq(aws_client_new(&c, &o, &gerr), GW_OK);
    cr_assert_str_eq(aws_client_region(c), "cn-north-1", "AWS_DEFAULT_REGION is a fallback");
    char *e = aws_endpoint_for(c, "CLOUDWATCH_LOGS", "logs");
    cr_assert_str_eq(e, "https://logs.cn-north-1.amazonaws.com.cn");
    free(e);
    aws_client_free(c);
}

Test(transport, secrets_never_reach_the_log)
{
    /* Capture this process's stderr (the log) while failing calls are made. */
    char path[] = "/tmp/mlgw-awslog-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    snprintf(session_token, sizeof(session_token), "TokenThatMustNeverBeLogged");
    struct th_mock_reply e500 = {500, "text/plain", "oops", NULL, NULL, 0};
    th_mock_push(mock, &e500);
    struct aws_error err;
    describe(&err);
    snprintf(endpoint_batch, sizeof(endpoint_batch), "http://127.0.0.1:1");
    describe(&err);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    FILE *f = fopen(path, "r");
    char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    cr_assert(strstr(buf, "retry") != NULL, "retries were logged: %s", buf);
    cr_assert(strstr(buf, "SuperSecretKeyThatMustNeverBeLogged") == NULL);
    cr_assert(strstr(buf, "TokenThatMustNeverBeLogged") == NULL);
    cr_assert(strstr(err.message, "Secret") == NULL);
}
