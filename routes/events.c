/*
 * events.c — POST /events/batch (EventBridge API destination) and the part
 * of POST /events/sns that hands a Batch event on. Checks the shared secret
 * in constant time, reads the "Batch Job State Change" event and applies it
 * through db/events.c. No network I/O here: notifications are sent later by
 * the notifier, so the answer comes in milliseconds.
 */
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sns_verify.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/id.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/parse.h"
#include "db/events.h"
#include "jobs/app.h"
#include "routes/routes.h"

#include "common/poison.h"

static long long jint_or(const json_t *o, const char *k, long long def)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

/* The gateway's job id in the tags, else at the end of the job name. */
static const char *gateway_id_of(const json_t *detail)
{
    const char *tag = gw_json_str(json_object_get(detail, "tags"), "mlgw:job-id");
    if (tag != NULL && gw_uuid_valid(tag))
        return tag;
    const char *name = gw_json_str(detail, "jobName");
    size_t n = name ? strlen(name) : 0;
    if (n >= 36 && gw_uuid_valid(name + n - 36))
        return name + n - 36;
    return NULL;
}

/* A resourceRequirements value of type (VCPU, MEMORY, GPU), or def. */
static long long requirement(const json_t *container, const char *type, long long def)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(container, "resourceRequirements"), i, r)
    {
        const char *t = gw_json_str(r, "type"), *v = gw_json_str(r, "value");
        long long n;
        if (t && v && strcmp(t, type) == 0 && gw_parse_ll(&n, v, 0, (long long)1 << 40) == GW_OK)
            return n;
    }
    return def;
}

static const char *env_value(const json_t *container, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(container, "environment"), i, e)
    {
        if (gw_json_str(e, "name") != NULL && strcmp(gw_json_str(e, "name"), name) == 0)
            return gw_json_str(e, "value");
    }
    return NULL;
}

static void count_callback(const char *source, const char *result)
{
    char labels[96];
    gw_fmt(labels, sizeof(labels), "source=\"%s\",result=\"%s\"", source, result);
    gw_metrics_add("mlgw_callbacks_total", labels, 1);
}

int rt_apply_batch_event(struct rt_request *req, struct rt_reply *out, json_t *event,
                         const char *source)
{
    static const char *const statuses[] = {"SUBMITTED", "PENDING",   "RUNNABLE", "STARTING",
                                           "RUNNING",   "SUCCEEDED", "FAILED",   NULL};
    const struct gw_config *cfg = req->app->cfg;
    json_t *errors = json_array();
    const char *id = gw_json_str(event, "id");
    const char *dtype = gw_json_str(event, "detail-type");
    const json_t *detail = json_object_get(event, "detail");
    const char *status = gw_json_str(detail, "status");
    const char *batch_id = gw_json_str(detail, "jobId");
    if (id == NULL || id[0] == '\0' || strlen(id) > 256)
        json_array_append_new(
            errors, json_pack("{s:s,s:s}", "field", "id", "message", "must be the event's id"));
    if (dtype == NULL || strcmp(dtype, "Batch Job State Change") != 0)
        json_array_append_new(errors, json_pack("{s:s,s:s}", "field", "detail-type", "message",
                                                "must be \"Batch Job State Change\""));
    if (gw_json_str(event, "source") == NULL ||
        strcmp(gw_json_str(event, "source"), "aws.batch") != 0)
        json_array_append_new(
            errors, json_pack("{s:s,s:s}", "field", "source", "message", "must be \"aws.batch\""));
    if (!json_is_object(detail) || batch_id == NULL || batch_id[0] == '\0')
        json_array_append_new(
            errors, json_pack("{s:s,s:s}", "field", "detail.jobId", "message", "is required"));
    int known = 0;
    for (size_t i = 0; status != NULL && statuses[i] != NULL; i++)
        known |= strcmp(status, statuses[i]) == 0;
    if (!known)
        json_array_append_new(errors, json_pack("{s:s,s:s}", "field", "detail.status", "message",
                                                "must be an AWS Batch job status"));
    if (json_array_size(errors) > 0) {
        count_callback(source, "invalid");
        /* 422: EventBridge does not retry it, and nothing is stored. */
        rt_reply_problem(req, out, 422, "Unprocessable Content",
                         "not a Batch Job State Change event; see errors", errors);
        return GW_EINVAL;
    }
    json_decref(errors);

    const json_t *attempts = json_object_get(detail, "attempts");
    const json_t *last = json_array_get(attempts, json_array_size(attempts) - 1);
    const json_t *container = json_object_get(detail, "container");
    const json_t *ec = json_object_get(json_object_get(last, "container"), "exitCode");
    if (!json_is_integer(ec))
        ec = json_object_get(container, "exitCode");
    const char *log_stream = gw_json_str(json_object_get(last, "container"), "logStreamName");
    if (log_stream == NULL)
        log_stream = gw_json_str(container, "logStreamName");

    char new_id[37], uri[512];
    if (gw_uuid7(new_id) != GW_OK) {
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return GW_ENOMEM;
    }
    if (cfg->output_bucket != NULL)
        gw_fmt(uri, sizeof(uri), "s3://%s/jobs/%s/", cfg->output_bucket, new_id);
    else
        gw_fmt(uri, sizeof(uri), "file://%s/output/jobs/%s/", cfg->local_root, new_id);
    struct db_job_event ev = {
        .event_id = id,
        .source = source,
        .batch_job_id = batch_id,
        .gateway_id = gateway_id_of(detail),
        .new_id = new_id,
        .status = status,
        .reason = gw_json_str(detail, "statusReason"),
        .exit_code = json_is_integer(ec) ? (int)json_integer_value(ec) : -1,
        .attempts = (int)json_array_size(attempts),
        .log_stream = log_stream,
        .started_ms = jint_or(detail, "startedAt", 0),
        .stopped_ms = jint_or(detail, "stoppedAt", 0),
        .job_name = gw_json_str(detail, "jobName"),
        .queue = gw_json_str(detail, "jobQueue"),
        .script_key = env_value(container, "SCRIPT_KEY"),
        .output_uri = uri,
        .vcpus = requirement(container, "VCPU", jint_or(container, "vcpus", -1)),
        .memory = requirement(container, "MEMORY", jint_or(container, "memory", -1)),
        .gpus = requirement(container, "GPU", 0),
    };
    jobs_event_policy(&ev, req->app);
    struct db_job_event_result r;
    struct gw_err err = {0};
    int rc = db_job_event_apply(&r, req->app->pool, &ev, &err);
    if (rc != GW_OK) {
        count_callback(source, "error");
        /* 503 with Retry-After: EventBridge tries again later. */
        rt_reply_error(req, out, rc == GW_EUNAVAIL ? rc : GW_EUNAVAIL, &err);
        return rc;
    }
    count_callback(source, r.result);
    if (strcmp(r.result, "applied") == 0 || strcmp(r.result, "created") == 0)
        GW_LOG_INFO("job %s is %s (%s event %s)", r.job_id, r.status, source, id);
    rt_reply_json(out, 200,
                  json_pack("{s:s,s:s?,s:s?}", "result", r.result, "job_id",
                            r.job_id[0] ? r.job_id : NULL, "status",
                            r.status[0] ? r.status : NULL));
    return GW_OK;
}

void rt_events_batch(struct rt_request *req, struct rt_reply *out)
{
    const struct gw_config *cfg = req->app->cfg;
    const char *given = rt_header(req, cfg->callback_header);
    const char *secret = cfg->callback_secret;
    /* Never 401: EventBridge retries 401 for a day. */
    if (secret == NULL || given == NULL || strlen(given) != strlen(secret) ||
        CRYPTO_memcmp(given, secret, strlen(secret)) != 0) {
        count_callback("eventbridge", "forbidden");
        rt_reply_problem(req, out, 403, "Forbidden",
                         secret == NULL ? "callbacks are not configured on this gateway"
                                        : "wrong or missing callback key",
                         NULL);
        return;
    }
    json_t *event = NULL;
    if (rt_body_json(&event, req, out) != GW_OK) {
        count_callback("eventbridge", "invalid");
        return;
    }
    rt_apply_batch_event(req, out, event, "eventbridge");
    json_decref(event);
}

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

/* Confirms a subscription by fetching its SubscribeURL, which must pass the
 * same host rules as a signing certificate URL (so a forged-but-signed
 * message cannot make the gateway fetch anything else). */
static int confirm_subscription(const struct jobs_app *app, const char *url, struct gw_err *err)
{
    struct gw_err uerr = {0};
    /* The certificate rule wants ".pem"; the confirmation is a query on "/". */
    size_t n = strcspn(url, "?#");
    char base[1100];
    gw_fmt(base, sizeof(base), "%.*s%s", (int)n, url, "/x.pem");
    const char *scheme_end = strstr(base, "://");
    const char *path = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
    if (path == NULL)
        return gw_err_set(err, GW_EINVAL, "SubscribeURL is not a URL");
    gw_fmt(base + (path - base), sizeof(base) - (size_t)(path - base), "%s", "/x.pem");
    if (aws_sns_cert_url_check(&app->sns_opts, base, &uerr) != GW_OK)
        return gw_err_set(err, GW_EINVAL, "SubscribeURL host is not SNS");
    CURL *h = curl_easy_init();
    if (h == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR,
                     app->sns_opts.allow_http_cert_url ? "http,https" : "https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 4000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK || status != 200)
        return gw_err_set(err, GW_EUNAVAIL, "confirming the subscription failed (%s, HTTP %ld)",
                          curl_easy_strerror(cc), status);
    return GW_OK;
}

static int topic_allowed(const char *csv, const char *topic)
{
    size_t tlen = strlen(topic);
    for (const char *p = csv ? csv : ""; *p != '\0';) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ", ");
        if (len == tlen && len > 0 && strncmp(p, topic, len) == 0)
            return 1;
        p += len;
    }
    return 0;
}

void rt_events_sns(struct rt_request *req, struct rt_reply *out)
{
    struct aws_sns_message m;
    struct gw_err err = {0};
    int rc = aws_sns_message_parse(&m, req->body.data ? req->body.data : "", req->body.len, &err);
    if (rc != GW_OK) {
        count_callback("sns", "invalid");
        rt_reply_problem(req, out, rc == GW_ETOOBIG ? 413 : 400, "Bad Request",
                         "not an SNS message", NULL);
        return;
    }
    rc = aws_sns_verify(req->app->sns_verifier, &m, &err);
    if (rc != GW_OK) {
        count_callback("sns", rc == GW_EUNAVAIL ? "error" : "forbidden");
        GW_LOG_WARN("SNS message %s refused: %s", m.message_id, err.msg);
        if (rc == GW_EUNAVAIL)
            rt_reply_error(req, out, GW_EUNAVAIL, &err);
        else
            rt_reply_problem(req, out, 403, "Forbidden", "the SNS signature does not verify", NULL);
        aws_sns_message_dispose(&m);
        return;
    }
    /* A valid signature only proves SNS sent it: any AWS account can point a
     * topic at this endpoint. Only the configured topics are listened to. */
    if (!topic_allowed(req->app->cfg->sns_topic_arns, m.topic_arn)) {
        count_callback("sns", "forbidden");
        GW_LOG_WARN("SNS message from topic %s refused: not in MLGW_SNS_TOPIC_ARNS", m.topic_arn);
        rt_reply_problem(req, out, 403, "Forbidden", "this topic is not accepted here", NULL);
        aws_sns_message_dispose(&m);
        return;
    }
    if (strcmp(m.type, "SubscriptionConfirmation") == 0) {
        rc = confirm_subscription(req->app, m.subscribe_url, &err);
        if (rc == GW_OK) {
            GW_LOG_INFO("confirmed the SNS subscription to %s", m.topic_arn);
            rt_reply_json(out, 200, json_pack("{s:s}", "result", "confirmed"));
        } else {
            rt_reply_error(req, out, rc == GW_EINVAL ? GW_EINVAL : GW_EUNAVAIL, &err);
        }
    } else if (strcmp(m.type, "Notification") == 0) {
        json_error_t je;
        json_t *event = json_loads(m.message, JSON_REJECT_DUPLICATES, &je);
        if (event == NULL || !json_is_object(event)) {
            count_callback("sns", "invalid");
            rt_reply_problem(req, out, 422, "Unprocessable Content",
                             "the SNS message is not a Batch Job State Change event", NULL);
        } else {
            rt_apply_batch_event(req, out, event, "sns");
        }
        json_decref(event);
    } else {
        rt_reply_json(out, 200, json_pack("{s:s}", "result", "ignored"));
    }
    aws_sns_message_dispose(&m);
}
