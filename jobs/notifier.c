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

/* The plain-text summary of a finished job (new: free), for email and SNS. */
static char *notify_summary(const json_t *job, const char *region)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)64 << 10);
    const json_t *res = json_object_get(job, "resources");
    const json_t *ec = json_object_get(job, "exit_code");
    char exit_code[24] = "-";
    if (json_is_integer(ec))
        gw_fmt(exit_code, sizeof(exit_code), "%lld", (long long)json_integer_value(ec));
    gw_buf_printf(&b,
                  "Job %s is %s.\n\n"
                  "Script:       %s\n"
                  "Status:       %s\n"
                  "Reason:       %s\n"
                  "Exit code:    %s\n"
                  "Attempts:     %lld\n"
                  "Compute:      %s, %lld vCPU, %lld MiB, %lld GPU\n"
                  "Started:      %s\n"
                  "Stopped:      %s\n"
                  "Output:       %s\n",
                  gw_json_str(job, "id"), gw_json_str(job, "status"),
                  gw_json_str(job, "script_key"), gw_json_str(job, "status"),
                  gw_json_str(job, "status_reason") ? gw_json_str(job, "status_reason") : "-",
                  exit_code, (long long)json_integer_value(json_object_get(job, "attempts")),
                  gw_json_str(job, "compute_type"),
                  (long long)json_integer_value(json_object_get(res, "vcpus")),
                  (long long)json_integer_value(json_object_get(res, "memory")),
                  (long long)json_integer_value(json_object_get(res, "gpus")),
                  gw_json_str(job, "started_at") ? gw_json_str(job, "started_at") : "-",
                  gw_json_str(job, "stopped_at") ? gw_json_str(job, "stopped_at") : "-",
                  gw_json_str(job, "output_uri"));
    const json_t *meta = json_object_get(job, "metadata");
    gw_buf_printf(&b, "User:         %s\nProject:      %s\nExperiment:   %s\n",
                  gw_json_str(meta, "user") ? gw_json_str(meta, "user") : "-",
                  gw_json_str(meta, "project") ? gw_json_str(meta, "project") : "-",
                  gw_json_str(meta, "experiment") ? gw_json_str(meta, "experiment") : "-");
    const char *stream = gw_json_str(job, "log_stream");
    if (stream != NULL && region != NULL && region[0] != '\0') {
        /* The console's log link: '/' in names is written $252F. */
        gw_buf_printf(&b,
                      "Logs:         https://%s.console.aws.amazon.com/cloudwatch/home?region=%s"
                      "#logsV2:log-groups/log-group/$252Faws$252Fbatch$252Fjob/log-events/",
                      region, region);
        for (const char *p = stream; *p != '\0'; p++) {
            if (*p == '/')
                gw_buf_adds(&b, "$252F");
            else
                gw_buf_add(&b, p, 1);
        }
        gw_buf_adds(&b, "\n");
    } else if (stream != NULL) {
        gw_buf_printf(&b, "Log stream:   %s\n", stream);
    }
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
    gw_fmt(subject, sizeof(subject), "[ml-gateway] %s: job %s (%s)", gw_json_str(job, "status"),
           gw_json_str(job, "id"), gw_json_str(job, "script_key"));
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

static int send_webhook(struct jobs_notifier *n, const struct db_notification *it,
                        struct gw_err *err)
{
    return jobs_webhook_post(it->recipient, it->job_json, n->app->cfg->webhook_secret,
                             (long long)time(NULL), err);
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
        struct db_notification it;
        struct gw_err err = {0};
        if (db_notification_claim(&it, n->app->pool, LEASE_S, &err) != GW_OK)
            return 0;
        json_t *job = json_loads(it.job_json, 0, NULL);
        int rc;
        if (job == NULL)
            rc = gw_err_set(&err, GW_EINVAL, "job is not JSON");
        else if (strcmp(it.channel, "email") == 0)
            rc = send_email(n, &it, job, &err);
        else if (strcmp(it.channel, "webhook") == 0)
            rc = send_webhook(n, &it, &err);
        else
            rc = send_sns(n, job, it.recipient, &err);
        struct gw_err derr = {0};
        if (rc == GW_OK) {
            count(it.channel, "sent");
            GW_LOG_INFO("notified %s %s of job %s %s", it.channel, it.recipient,
                        gw_json_str(job, "id"), it.status);
            (void)db_notification_sent(n->app->pool, it.id, &derr);
        } else if (transient(rc) && it.attempts < cfg->notify_max_attempts) {
            count(it.channel, "retry");
            long delay = backoff_ms(cfg, it.attempts);
            GW_LOG_INFO("notification %s (%s %s) failed: %s; retrying in %ld ms", it.id, it.channel,
                        it.recipient, err.msg, delay);
            (void)db_notification_retry(n->app->pool, it.id, err.msg, delay, &derr);
        } else {
            count(it.channel, "failed");
            GW_LOG_WARN("notification %s (%s %s) failed for good: %s", it.id, it.channel,
                        it.recipient, err.msg);
            (void)db_notification_failed(n->app->pool, it.id, err.msg, &derr);
        }
        json_decref(job);
        db_notification_dispose(&it);
    }
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
