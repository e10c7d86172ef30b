/*
 * events.c — POST /events/batch (EventBridge API destination) and the part
 * of POST /events/sns that hands a Batch event on. Checks the shared secret
 * in constant time, reads the "Batch Job State Change" event and applies it
 * through db/events.c. No network I/O here: notifications are sent later by
 * the notifier, so the answer comes in milliseconds.
 */
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
#include "db/jobcache.h"
#include "jobs/app.h"
#include "jobs/jobenv.h"
#include "routes/batch_event.h"
#include "routes/routes.h"

#include "common/poison.h"

static void count_callback(const char *source, const char *result)
{
    char labels[96];
    gw_fmt(labels, sizeof(labels), "source=\"%s\",result=\"%s\"", source, result);
    gw_metrics_add("mlgw_callbacks_total", labels, 1);
}

/* A callback in flight: the event its write borrows from, kept until it is
 * answered. */
struct callback {
    json_t *event; /* ev's strings point into it */
    const char *source;
    struct db_job_event ev;
    struct db_job_event_write ew;
    char new_id[37], uri[4200];
};

/* The event's write is over: the result, or 5xx so that the sender retries. */
static void callback_reply(struct rt_request *req, struct rt_reply *out, void *ctx)
{
    struct callback *cb = ctx;
    const struct db_job_event_result *r = &cb->ew.out;
    if (cb->ew.w.rc != GW_OK) {
        count_callback(cb->source, "error");
        /* 5xx: EventBridge and SNS try again later. */
        rt_reply_error(req, out, cb->ew.w.rc, &cb->ew.w.err);
    } else {
        count_callback(cb->source, r->result);
        /* Even a stale or duplicate event adds to the job's history: this
         * gateway's readers see it at once, others within the job cache's
         * poll. */
        if (r->job_id[0] != '\0')
            db_jobcache_forget(req->app->jobcache, r->job_id);
        if (strcmp(r->result, "applied") == 0 || strcmp(r->result, "created") == 0)
            GW_LOG_INFO("job %s is %s (%s event %s)", r->job_id, r->status, cb->source,
                        cb->ev.event_id);
        rt_reply_json(out, 200,
                      json_pack("{s:s,s:s?,s:s?}", "result", r->result, "job_id",
                                r->job_id[0] ? r->job_id : NULL, "status",
                                r->status[0] ? r->status : NULL));
    }
    json_decref(cb->event);
    free(cb);
}

/* Applies one Batch Job State Change event (from EventBridge or SNS) and
 * replies; 422 naming the fields when it is not one. */
static void apply_batch_event(struct rt_request *req, struct rt_reply *out, json_t *event,
                              const char *source)
{
    const struct gw_config *cfg = req->app->cfg;
    struct callback *cb = calloc(1, sizeof(*cb));
    json_t *errors = json_array();
    if (cb == NULL || errors == NULL) {
        free(cb);
        json_decref(errors);
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return;
    }
    if (rt_batch_event_parse(&cb->ev, errors, event, source) != GW_OK) {
        count_callback(source, "invalid");
        free(cb);
        /* 422: EventBridge does not retry it, and nothing is stored. */
        rt_reply_problem(req, out, 422, "Unprocessable Content",
                         "not a Batch Job State Change event; see errors", errors);
        return;
    }
    json_decref(errors);
    if (gw_uuid7(cb->new_id) != GW_OK ||
        jobs_output_uri(cb->uri, sizeof(cb->uri), cfg, cb->new_id) != 0) {
        free(cb);
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return;
    }
    cb->event = json_incref(event);
    cb->source = source;
    cb->ev.new_id = cb->new_id;
    cb->ev.output_uri = cb->uri;
    jobs_event_policy(&cb->ev, req->app);
    db_job_event_write_init(&cb->ew, &cb->ev);
    rt_write(req, out, &cb->ew.w, callback_reply, cb);
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
    apply_batch_event(req, out, event, "eventbridge");
    json_decref(event);
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
        /* Whatever is wrong with it, a body that is not SNS's envelope is one
         * malformed request (400); only its size has its own answer. */
        if (rc == GW_ETOOBIG)
            rt_reply_error(req, out, rc, &err);
        else
            rt_reply_problem(req, out, 400, "Bad Request", "not an SNS message", NULL);
        return;
    }
    /* A valid signature only proves SNS sent it: any AWS account can point a
     * topic at this endpoint. Only the configured topics are listened to, and
     * that is checked first, so a message from any other topic costs no
     * certificate fetch. */
    if (!topic_allowed(req->app->cfg->sns_topic_arns, m.topic_arn)) {
        count_callback("sns", "forbidden");
        GW_LOG_WARN("SNS message from topic %s refused: not in MLGW_SNS_TOPIC_ARNS", m.topic_arn);
        rt_reply_problem(req, out, 403, "Forbidden", "this topic is not accepted here", NULL);
        aws_sns_message_dispose(&m);
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
    if (strcmp(m.type, "SubscriptionConfirmation") == 0) {
        rc = aws_sns_confirm_subscription(&req->app->sns_opts, m.subscribe_url, &err);
        if (rc == GW_OK) {
            GW_LOG_INFO("confirmed the SNS subscription to %s", m.topic_arn);
            rt_reply_json(out, 200, json_pack("{s:s}", "result", "confirmed"));
        } else {
            rt_reply_error(req, out, rc, &err);
        }
    } else if (strcmp(m.type, "Notification") == 0) {
        json_error_t je;
        json_t *event = json_loads(m.message, JSON_REJECT_DUPLICATES, &je);
        if (event == NULL || !json_is_object(event)) {
            count_callback("sns", "invalid");
            rt_reply_problem(req, out, 422, "Unprocessable Content",
                             "the SNS message is not a Batch Job State Change event", NULL);
        } else {
            apply_batch_event(req, out, event, "sns");
        }
        json_decref(event);
    } else {
        rt_reply_json(out, 200, json_pack("{s:s}", "result", "ignored"));
    }
    aws_sns_message_dispose(&m);
}
