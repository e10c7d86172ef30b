/*
 * POST /events/sns: SNS messages signed with a locally made CA and signing
 * certificate (the test-only settings point the certificate host check at
 * this machine), a Batch event delivered through SNS, a tampered message
 * refused, and a subscription confirmed by fetching its SubscribeURL.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/harness.h"
#include "../harness/mock_http.h"
#include "aws/sns_verify.h"
#include "common/err.h"

static char db[1024], dir[64], env_ca[160], env_host[64];
static struct th_gw gw;
static struct th_mock *certs;

static void sh(const char *cmd)
{
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "%s", path);
    char *b = calloc(1, 65536);
    size_t n = fread(b, 1, 65535, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    snprintf(dir, sizeof(dir), "/tmp/mlgw-sns-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
             "-subj /CN=test-sns-ca -days 2 2>/dev/null && "
             "openssl req -newkey rsa:2048 -nodes -keyout sns.key -out sns.csr "
             "-subj /CN=sns.amazonaws.com 2>/dev/null && "
             "printf 'subjectAltName=DNS:sns.amazonaws.com\\n' > ext && "
             "openssl x509 -req -in sns.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out sns.pem -days 2 -extfile ext 2>/dev/null",
             dir);
    sh(cmd);
    certs = th_mock_start();
    char path[128];
    snprintf(path, sizeof(path), "%s/sns.pem", dir);
    char *pem = slurp(path);
    th_mock_push(certs, &(struct th_mock_reply){200, "application/x-pem-file", pem, NULL, NULL, 0});
    free(pem);
    snprintf(env_ca, sizeof(env_ca), "MLGW_SNS_CERT_CA_FILE=%s/ca.pem", dir);
    snprintf(env_host, sizeof(env_host), "MLGW_SNS_CERT_HOST_SUFFIX=127.0.0.1");
    const char *env[] = {env_ca,
                         env_host,
                         "MLGW_DISPATCH_WORKERS=0",
                         "MLGW_NOTIFY_WORKERS=0",
                         "MLGW_SNS_TOPIC_ARNS=arn:aws:sns:us-east-1:123456789012:other, "
                         "arn:aws:sns:us-east-1:123456789012:ml-job-state",
                         NULL};
    th_gw_start(&gw, db, env);
}

static void teardown(void)
{
    cr_expect_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
    th_mock_stop(certs);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(sns, .init = setup, .fini = teardown);

/* Signs m (SignatureVersion 2) with the test key; returns the message JSON (new). */
static char *signed_message(json_t *m)
{
    json_object_set_new(m, "Signature", json_string("AAAA")); /* replaced below */
    char *body = json_dumps(m, JSON_COMPACT);
    struct aws_sns_message parsed;
    struct gw_err err = {0};
    cr_assert_eq(aws_sns_message_parse(&parsed, body, strlen(body), &err), GW_OK, "%s", err.msg);
    free(body);
    char *sts = aws_sns_string_to_sign(&parsed);
    aws_sns_message_dispose(&parsed);
    char path[128], cmd[512];
    snprintf(path, sizeof(path), "%s/sts", dir);
    FILE *f = fopen(path, "wb");
    fputs(sts, f);
    fclose(f);
    free(sts);
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl dgst -sha256 -sign sns.key -out sig sts && "
             "openssl base64 -A -in sig > sig.b64",
             dir);
    sh(cmd);
    snprintf(path, sizeof(path), "%s/sig.b64", dir);
    char *sig = slurp(path);
    json_object_set_new(m, "Signature", json_string(sig));
    free(sig);
    return json_dumps(m, JSON_COMPACT);
}

static json_t *notification(const char *message)
{
    char cert[160];
    snprintf(cert, sizeof(cert), "%s/SimpleNotificationService-1.pem", th_mock_url(certs));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Type", "Notification", "MessageId",
                     "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", "TopicArn",
                     "arn:aws:sns:us-east-1:123456789012:ml-job-state", "Message", message,
                     "Timestamp", "2026-11-28T20:01:50.000Z", "SignatureVersion", "2",
                     "SigningCertURL", cert);
}

static long post_sns(const char *body, char *out, size_t outlen)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/events/sns", gw.base);
    const char *h[] = {"Content-Type: text/plain; charset=UTF-8", NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, body, strlen(body)), 0);
    if (out != NULL)
        snprintf(out, outlen, "%s", r.body);
    long st = r.status;
    th_resp_dispose(&r);
    return st;
}

static const char batch_event[] =
    "{\"id\": \"sns-ev-1\", \"detail-type\": \"Batch Job State Change\", \"source\": "
    "\"aws.batch\", \"detail\": {\"jobId\": \"b-sns-1\", \"jobName\": \"lambda-job\", "
    "\"status\": \"RUNNING\", \"attempts\": [], \"container\": {\"vcpus\": 4, \"memory\": 8192}}}";

Test(sns, a_signed_notification_carrying_a_batch_event_is_applied)
{
    json_t *m = notification(batch_event);
    char *body = signed_message(m);
    char resp[4096];
    cr_assert_eq(post_sns(body, resp, sizeof(resp)), 200, "%s", resp);
    cr_assert(strstr(resp, "\"result\":\"created\"") != NULL, "%s", resp);
    free(body);
    json_decref(m);
    char *src = th_db_scalar(db, "SELECT source || ' ' || status FROM jobs");
    cr_assert_str_eq(src, "sns RUNNING");
    free(src);
    cr_assert_eq(th_mock_count(certs), 1, "the certificate was fetched once");
}

Test(sns, a_tampered_message_is_403_and_changes_nothing)
{
    json_t *m = notification(batch_event);
    char *body = signed_message(m);
    /* Re-point the event at another status after signing. */
    json_t *signed_m = json_loads(body, 0, NULL);
    json_object_set_new(signed_m, "Message",
                        json_string("{\"id\": \"x\", \"detail-type\": \"Batch Job State Change\", "
                                    "\"source\": \"aws.batch\", \"detail\": {\"jobId\": "
                                    "\"b-sns-1\", \"status\": \"SUCCEEDED\"}}"));
    char *tampered = json_dumps(signed_m, JSON_COMPACT);
    cr_assert_eq(post_sns(tampered, NULL, 0), 403);
    char *n = th_db_scalar(db, "SELECT count(*) FROM jobs");
    cr_assert_str_eq(n, "0");
    free(n);
    free(tampered);
    free(body);
    json_decref(signed_m);
    json_decref(m);
    cr_assert_eq(post_sns("{\"Type\": \"Notification\"}", NULL, 0), 400, "not SNS");
}

Test(sns, a_subscription_confirmation_fetches_its_subscribe_url)
{
    char sub[200], cert[160];
    snprintf(sub, sizeof(sub), "%s/?Action=ConfirmSubscription&Token=abc", th_mock_url(certs));
    snprintf(cert, sizeof(cert), "%s/SimpleNotificationService-1.pem", th_mock_url(certs));
    json_t *m = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Type", "SubscriptionConfirmation", "MessageId",
        "165545c9", "Token", "abc", "TopicArn", "arn:aws:sns:us-east-1:123456789012:ml-job-state",
        "Message", "You have chosen to subscribe", "SubscribeURL", sub, "Timestamp",
        "2026-11-28T20:01:50.000Z", "SignatureVersion", "2", "SigningCertURL", cert);
    char *body = signed_message(m);
    char resp[1024];
    cr_assert_eq(post_sns(body, resp, sizeof(resp)), 200, "%s", resp);
    cr_assert(strstr(resp, "confirmed") != NULL);
    free(body);
    json_decref(m);
    int confirmed = 0;
    for (size_t i = 0; i < th_mock_count(certs); i++) {
        struct th_mock_request r;
        th_mock_request(&r, certs, i);
        confirmed |= strcmp(r.method, "GET") == 0 && strcmp(r.path, "/") == 0;
        th_mock_request_dispose(&r);
    }
    cr_assert(confirmed, "SubscribeURL was fetched");
}

Test(sns, a_validly_signed_message_from_another_topic_is_refused)
{
    json_t *m = notification(batch_event);
    json_object_set_new(m, "TopicArn", json_string("arn:aws:sns:us-east-1:999999999999:evil"));
    char *body = signed_message(m);
    cr_assert_eq(post_sns(body, NULL, 0), 403);
    char *n = th_db_scalar(db, "SELECT count(*) FROM jobs");
    cr_assert_str_eq(n, "0");
    free(n);
    free(body);
    json_decref(m);
}
