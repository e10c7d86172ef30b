/*
 * notifier.c — sends the notification outbox. Each row is claimed under a
 * lease, handed to its channel once, and marked sent, retried later with
 * full-jitter backoff, or failed (recorded on the job) — so a recipient hears
 * once per (job, status, channel), however often the callbacks came.
 *
 * The channels' transports live elsewhere: SMTP in jobs/mail.c, the signed
 * webhook POST in jobs/webhook.c, SNS in aws/sns.c. This file only claims,
 * dispatches, and decides from the returned code whether to retry.
 */
#include "jobs/notifier.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sns.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/worker.h"
#include "db/notifications.h"
#include "jobs/listener.h"
#include "jobs/mail.h"
#include "jobs/run_notify.h"
#include "jobs/webhook.h"

#include "common/poison.h"

enum { MAX_WORKERS = 32, LEASE_S = 120 };

struct jobs_notifier {
    struct jobs_app *app;
    struct aws_client *aws;
    struct gw_worker *workers[MAX_WORKERS];
    int nworkers;
    struct jobs_listener *listener;
};

/* Appends s with each control character (C0, DEL, C1 and the Unicode line
 * and paragraph separators) as a space: metadata comes from users and the
 * status reason from AWS or the executor, and neither may add lines to a
 * mail or a published summary. */
static void add_plain(struct gw_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        size_t skip = 0;
        if (*p < 0x20 || *p == 0x7f)
            skip = 1;
        else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            skip = 2;
        else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
            skip = 3;
        if (skip == 0) {
            gw_buf_add(b, p, 1);
            continue;
        }
        gw_buf_adds(b, " ");
        p += skip - 1;
    }
}

/* "Label:        value\n", the value made plain ("-" when NULL). */
static void add_line(struct gw_buf *b, const char *label, const char *value)
{
    gw_buf_printf(b, "%-14s", label);
    add_plain(b, value != NULL ? value : "-");
    gw_buf_adds(b, "\n");
}

/* The job's log: the console link on AWS, else the stream's name. */
static void add_logs(struct gw_buf *b, const json_t *job, const char *region)
{
    const char *stream = gw_json_str(job, "log_stream");
    if (stream == NULL)
        return;
    if (region == NULL || region[0] == '\0') {
        add_line(b, "Log stream:", stream);
        return;
    }
    struct gw_buf link;
    gw_buf_init(&link, (size_t)8 << 10);
    /* The console's log link: '/' in names is written $252F. */
    gw_buf_printf(&link,
                  "https://%s.console.aws.amazon.com/cloudwatch/home?region=%s"
                  "#logsV2:log-groups/log-group/$252Faws$252Fbatch$252Fjob/log-events/",
                  region, region);
    for (const char *p = stream; *p != '\0'; p++) {
        if (*p == '/')
            gw_buf_adds(&link, "$252F");
        else
            gw_buf_add(&link, p, 1);
    }
    add_line(b, "Logs:", link.data);
    gw_buf_dispose(&link);
}

static void count_or_dash(char *out, size_t outlen, const json_t *v)
{
    if (json_is_integer(v))
        gw_fmt(out, outlen, "%lld", (long long)json_integer_value(v));
    else
        gw_fmt(out, outlen, "-");
}

/* The plain-text summary of a finished job (new: free), for email and SNS.
 * Every value is made plain (add_plain): no line of it comes from a user. */
static char *notify_summary(const json_t *job, const char *region)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)64 << 10);
    const json_t *res = json_object_get(job, "resources");
    const json_t *ec = json_object_get(job, "exit_code");
    const json_t *meta = json_object_get(job, "metadata");
    char exit_code[24] = "-", attempts[24], compute[160], vcpus[24], memory[24], gpus[24];
    if (json_is_integer(ec))
        gw_fmt(exit_code, sizeof(exit_code), "%lld", (long long)json_integer_value(ec));
    gw_fmt(attempts, sizeof(attempts), "%lld",
           (long long)json_integer_value(json_object_get(job, "attempts")));
    /* A job learnt of from AWS events may not know its resources: "-". */
    count_or_dash(vcpus, sizeof(vcpus), json_object_get(res, "vcpus"));
    count_or_dash(memory, sizeof(memory), json_object_get(res, "memory"));
    count_or_dash(gpus, sizeof(gpus), json_object_get(res, "gpus"));
    gw_fmt(compute, sizeof(compute), "%.32s, %s vCPU, %s MiB, %s GPU",
           gw_json_str(job, "compute_type") ? gw_json_str(job, "compute_type") : "-", vcpus, memory,
           gpus);
    gw_buf_adds(&b, "Job ");
    add_plain(&b, gw_json_str(job, "id") ? gw_json_str(job, "id") : "-");
    gw_buf_adds(&b, " is ");
    add_plain(&b, gw_json_str(job, "status") ? gw_json_str(job, "status") : "-");
    gw_buf_adds(&b, ".\n\n");
    add_line(&b, "Script:", gw_json_str(job, "script_key"));
    add_line(&b, "Status:", gw_json_str(job, "status"));
    add_line(&b, "Reason:", gw_json_str(job, "status_reason"));
    add_line(&b, "Exit code:", exit_code);
    add_line(&b, "Attempts:", attempts);
    add_line(&b, "Compute:", compute);
    add_line(&b, "Started:", gw_json_str(job, "started_at"));
    add_line(&b, "Stopped:", gw_json_str(job, "stopped_at"));
    add_line(&b, "Output:", gw_json_str(job, "output_uri"));
    add_line(&b, "User:", gw_json_str(meta, "user"));
    add_line(&b, "Project:", gw_json_str(meta, "project"));
    add_line(&b, "Experiment:", gw_json_str(meta, "experiment"));
    add_logs(&b, job, region);
    gw_buf_adds(&b, "\n-- \nml-gateway\n");
    return gw_buf_steal(&b);
}

/* ---- channels: 0 sent, else the transport's own code (see transient) ---- */

static int send_email(struct jobs_notifier *n, const struct db_notification *it, const json_t *job,
                      struct gw_err *err)
{
    const struct gw_config *cfg = n->app->cfg;
    if (cfg->smtp_url == NULL)
        return gw_err_set(err, GW_EINVAL, "no SMTP server configured (MLGW_SMTP_URL)");
    char subject[300];
    const char *script = gw_json_str(job, "script_key");
    gw_fmt(subject, sizeof(subject), "[ml-gateway] %s: job %s (%s)", gw_json_str(job, "status"),
           gw_json_str(job, "id"), script != NULL ? script : "script unknown");
    char *body = notify_summary(job, n->aws ? aws_client_region(n->aws) : NULL);
    const char *to[] = {it->recipient};
    struct jobs_mail m = {
        .from = cfg->smtp_from, .to = to, .nto = 1, .subject = subject, .body = body};
    struct jobs_mail_opts o = {.url = cfg->smtp_url,
                               .tls = (enum jobs_smtp_tls)cfg->smtp_tls,
                               .user = cfg->smtp_user,
                               .password = cfg->smtp_password,
                               .ca_file = cfg->smtp_ca_file};
    int rc = jobs_mail_send(&o, &m, err);
    free(body);
    return rc;
}

static int send_webhook(char *cls, struct jobs_notifier *n, const struct db_notification *it,
                        struct gw_err *err)
{
    const struct gw_config *cfg = n->app->cfg;
    struct jobs_webhook_opts o = {.secret = cfg->webhook_secret,
                                  .allow_http = cfg->webhook_allow_http,
                                  .allow_cidrs = cfg->webhook_allow_cidrs};
    return jobs_webhook_post(cls, &o, it->recipient, it->job_json, (long long)time(NULL), err);
}

static int send_sns(struct jobs_notifier *n, const json_t *job, const char *topic,
                    struct gw_err *err)
{
    if (n->aws == NULL)
        return gw_err_set(err, GW_EINVAL, "AWS is not configured");
    char subject[100];
    gw_fmt(subject, sizeof(subject), "ml-gateway: job %s", gw_json_str(job, "status"));
    char *body = notify_summary(job, aws_client_region(n->aws));
    struct aws_sns_attribute attrs[] = {{"status", gw_json_str(job, "status")}};
    struct aws_sns_publish in = {.topic_arn = topic,
                                 .message = body ? body : "",
                                 .subject = subject,
                                 .attributes = attrs,
                                 .nattributes = 1};
    char id[128];
    struct aws_error aerr;
    int rc = aws_sns_publish(id, n->aws, &in, &aerr);
    free(body);
    if (rc != GW_OK)
        return gw_err_set(err, rc, "%s: %s", aerr.code, aerr.message);
    return GW_OK;
}

/* Whether a later try can succeed where this one failed: the dependency was
 * unavailable (network, timeout, a 4xx from SMTP, 5xx/408/429 from a
 * webhook, AWS throttling), AWS had no credentials yet, or memory ran out.
 * A refusal (GW_EUPSTREAM) or bad input (GW_EINVAL, GW_ETOOBIG) will not
 * change by waiting. */
static int transient(int rc)
{
    return rc == GW_EUNAVAIL || rc == GW_ENOTFOUND || rc == GW_ENOMEM;
}

/* Before the next try: full jitter over base * 2^(attempt-1), at most 1 h. */
static long backoff_ms(const struct gw_config *cfg, int attempt)
{
    return 10 + (long)gw_jitter_ms(cfg->notify_retry_base_ms, 3600000, attempt);
}

/* What the job's owner sees of a failure: the webhook's class, else one
 * word for the code. The transport's text (hosts, replies) is for the log. */
static const char *failure_class(const char *channel, int rc, const char *webhook_cls)
{
    if (strcmp(channel, "webhook") == 0 && webhook_cls[0] != '\0')
        return webhook_cls;
    switch (rc) {
    case GW_EUNAVAIL: return "unavailable";
    case GW_EUPSTREAM: return "rejected";
    default: return "error";
    }
}

static void count(const char *channel, const char *result)
{
    char labels[96];
    gw_fmt(labels, sizeof(labels), "channel=\"%s\",result=\"%s\"", channel, result);
    gw_metrics_add("mlgw_notifications_total", labels, 1);
}

static int notify_run(void *arg)
{
    struct jobs_notifier *n = arg;
    const struct gw_config *cfg = n->app->cfg;
    for (int k = 0; k < 1000; k++) {
        if (gw_shutting_down())
            return 0; /* unclaimed rows wait for the next gateway */
        struct db_notification it;
        struct gw_err err = {0};
        if (db_notification_claim(&it, n->app->pool, LEASE_S, &err) != GW_OK)
            break;
        json_t *job = json_loads(it.job_json, 0, NULL);
        char hook_cls[JOBS_WEBHOOK_CLASS_LEN] = "";
        int rc;
        if (job == NULL)
            rc = gw_err_set(&err, GW_EINVAL, "job is not JSON");
        else if (strcmp(it.channel, "email") == 0)
            rc = send_email(n, &it, job, &err);
        else if (strcmp(it.channel, "webhook") == 0)
            rc = send_webhook(hook_cls, n, &it, &err);
        else
            rc = send_sns(n, job, it.recipient, &err);
        const char *cls = failure_class(it.channel, rc, hook_cls);
        struct gw_err derr = {0};
        if (rc == GW_OK) {
            count(it.channel, "sent");
            GW_LOG_INFO("notified %s %s of job %s %s", it.channel, it.recipient,
                        gw_json_str(job, "id"), it.status);
            (void)db_notification_sent(n->app->pool, it.id, &derr);
        } else if (transient(rc) && it.attempts < cfg->notify_max_attempts) {
            count(it.channel, "retry");
            long delay = backoff_ms(cfg, it.attempts);
            GW_LOG_INFO("notification %s (%s %s) failed (%s): %s; retrying in %ld ms", it.id,
                        it.channel, it.recipient, cls, err.msg, delay);
            (void)db_notification_retry(n->app->pool, it.id, err.msg, cls, delay, &derr);
        } else {
            count(it.channel, "failed");
            GW_LOG_WARN("notification %s (%s %s) failed for good (%s): %s", it.id, it.channel,
                        it.recipient, cls, err.msg);
            (void)db_notification_failed(n->app->pool, it.id, err.msg, cls, &derr);
        }
        json_decref(job);
        db_notification_dispose(&it);
    }
    /* then the pipeline runs' (jobs/run_notify.c), woken by the same channel */
    (void)jobs_run_notify_due(n->app, n->aws, 1000);
    return 0;
}

int jobs_notifier_start(struct jobs_notifier **out, struct jobs_app *app, struct aws_client *aws,
                        struct gw_err *err)
{
    *out = NULL;
    struct jobs_notifier *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    n->app = app;
    n->aws = aws;
    gw_metrics_describe("mlgw_notifications_total", "counter",
                        "Notifications by channel and result.");
    gw_metrics_describe("mlgw_callbacks_total", "counter",
                        "Job-state callbacks by source and result.");
    int count_workers = (int)app->cfg->notify_workers;
    if (count_workers > MAX_WORKERS)
        count_workers = MAX_WORKERS;
    for (int i = 0; i < count_workers; i++) {
        if (gw_worker_start(&n->workers[i], "notifier", 2000, notify_run, n) != GW_OK)
            break;
        n->nworkers++;
    }
    if (n->nworkers > 0)
        (void)jobs_listener_start(&n->listener, app->cfg, "mlgw_notify", n->workers, n->nworkers);
    *out = n;
    return GW_OK;
}

void jobs_notifier_stop(struct jobs_notifier *n)
{
    if (n == NULL)
        return;
    jobs_listener_stop(n->listener);
    for (int i = 0; i < n->nworkers; i++)
        gw_worker_stop(n->workers[i]);
    free(n);
}
