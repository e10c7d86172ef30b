/*
 * run_notify.c — run-end notifications (run_notify.h): claim, send on the
 * row's channel, and record sent, retry with full-jitter backoff, or failed,
 * as jobs/notifier.c does for jobs. Transports: jobs/mail.c, jobs/webhook.c,
 * aws/sns.c.
 */
#include "jobs/run_notify.h"

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
#include "db/runs.h"
#include "jobs/mail.h"
#include "jobs/webhook.h"

#include "common/poison.h"

enum { LEASE_S = 120 };

/* A value made plain: no control character may add a line to a mail. Step
 * and pipeline names are [a-z0-9-] already; times and statuses are ours. */
static void add_plain(struct gw_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : "-"); *p != '\0'; p++)
        gw_buf_add(b, (*p < 0x20 || *p == 0x7f) ? (const unsigned char *)" " : p, 1);
}

/* "3/4 succeeded" (or "-" for a step that made no job). */
static void add_jobs(struct gw_buf *b, json_t *jobs)
{
    size_t n = json_array_size(jobs), ok = 0, i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        const char *st = gw_json_str(j, "status");
        ok += st != NULL && strcmp(st, "SUCCEEDED") == 0;
    }
    if (n == 0)
        gw_buf_adds(b, "-");
    else
        gw_buf_printf(b, "%zu/%zu succeeded", ok, n);
}

char *jobs_run_summary(const json_t *run)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)256 << 10);
    gw_buf_adds(&b, "Pipeline ");
    add_plain(&b, gw_json_str(run, "pipeline"));
    gw_buf_printf(&b, " (version %lld), run ",
                  (long long)json_integer_value(json_object_get(run, "version")));
    add_plain(&b, gw_json_str(run, "id"));
    gw_buf_adds(&b, ", is ");
    add_plain(&b, gw_json_str(run, "status"));
    gw_buf_adds(&b, ".\n\nStarted:      ");
    add_plain(&b, gw_json_str(run, "started_at"));
    gw_buf_adds(&b, "\nStopped:      ");
    add_plain(&b, gw_json_str(run, "stopped_at"));
    gw_buf_printf(&b, "\n\n%-28s %-10s %s\n", "Step", "Status", "Jobs");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(run, "steps"), i, s)
    {
        /* step names are [a-z0-9-] (validated) and statuses the engine's own */
        const char *name = gw_json_str(s, "name"), *status = gw_json_str(s, "status");
        gw_buf_printf(&b, "%-28.63s %-10.16s ", name ? name : "-", status ? status : "-");
        add_jobs(&b, json_object_get(s, "jobs"));
        gw_buf_adds(&b, "\n");
    }
    gw_buf_adds(&b, "\nThe run: GET /pipelines/");
    add_plain(&b, gw_json_str(run, "pipeline"));
    gw_buf_adds(&b, "/runs/");
    add_plain(&b, gw_json_str(run, "id"));
    gw_buf_adds(&b, "\n\n-- \nml-gateway\n");
    return gw_buf_steal(&b);
}

static int send_email(struct jobs_app *app, const struct db_notification *it, const json_t *run,
                      struct gw_err *err)
{
    const struct gw_config *cfg = app->cfg;
    if (cfg->smtp_url == NULL)
        return gw_err_set(err, GW_EINVAL, "no SMTP server configured (MLGW_SMTP_URL)");
    char subject[300];
    gw_fmt(subject, sizeof(subject), "[ml-gateway] %s: pipeline %s, run %s",
           gw_json_str(run, "status"), gw_json_str(run, "pipeline"), gw_json_str(run, "id"));
    char *body = jobs_run_summary(run);
    const char *to[] = {it->recipient};
    struct jobs_mail m = {
        .from = cfg->smtp_from, .to = to, .nto = 1, .subject = subject, .body = body};
    struct jobs_mail_opts o = {.url = cfg->smtp_url,
                               .tls = (enum jobs_smtp_tls)cfg->smtp_tls,
                               .user = cfg->smtp_user,
                               .password = cfg->smtp_password,
                               .ca_file = cfg->smtp_ca_file};
    int rc = body ? jobs_mail_send(&o, &m, err) : gw_err_set(err, GW_ENOMEM, "out of memory");
    free(body);
    return rc;
}

static int send_sns(struct aws_client *aws, const json_t *run, const char *topic,
                    struct gw_err *err)
{
    if (aws == NULL)
        return gw_err_set(err, GW_EINVAL, "AWS is not configured");
    char subject[100];
    gw_fmt(subject, sizeof(subject), "ml-gateway: pipeline run %s", gw_json_str(run, "status"));
    char *body = jobs_run_summary(run);
    struct aws_sns_attribute attrs[] = {{"status", gw_json_str(run, "status")},
                                        {"pipeline", gw_json_str(run, "pipeline")}};
    struct aws_sns_publish in = {.topic_arn = topic,
                                 .message = body ? body : "",
                                 .subject = subject,
                                 .attributes = attrs,
                                 .nattributes = 2};
    char id[128];
    struct aws_error aerr;
    int rc = aws_sns_publish(id, aws, &in, &aerr);
    free(body);
    if (rc != GW_OK)
        return gw_err_set(err, rc, "%s: %s", aerr.code, aerr.message);
    return GW_OK;
}

/* As jobs/notifier.c: a later try may succeed only where the dependency was
 * unavailable; the owner sees a class, never the transport's text. */
static int transient(int rc)
{
    return rc == GW_EUNAVAIL || rc == GW_ENOTFOUND || rc == GW_ENOMEM;
}

static const char *failure_class(const char *channel, int rc, const char *webhook_cls)
{
    if (strcmp(channel, "webhook") == 0 && webhook_cls[0] != '\0')
        return webhook_cls;
    return rc == GW_EUNAVAIL ? "unavailable" : rc == GW_EUPSTREAM ? "rejected" : "error";
}

static int send_one(char *hook_cls, struct jobs_app *app, struct aws_client *aws,
                    const struct db_notification *it, const json_t *run, struct gw_err *err)
{
    if (run == NULL)
        return gw_err_set(err, GW_EINVAL, "run is not JSON");
    if (strcmp(it->channel, "email") == 0)
        return send_email(app, it, run, err);
    if (strcmp(it->channel, "webhook") == 0) {
        const struct gw_config *cfg = app->cfg;
        struct jobs_webhook_opts o = {.secret = cfg->webhook_secret,
                                      .allow_http = cfg->webhook_allow_http,
                                      .allow_cidrs = cfg->webhook_allow_cidrs};
        return jobs_webhook_post(hook_cls, &o, it->recipient, it->job_json, (long long)time(NULL),
                                 err);
    }
    return send_sns(aws, run, it->recipient, err);
}

static void record(struct jobs_app *app, const struct db_notification *it, int rc, const char *cls,
                   const struct gw_err *err)
{
    const struct gw_config *cfg = app->cfg;
    struct gw_err derr = {0};
    char labels[96];
    const char *result = rc == GW_OK                                                ? "sent"
                         : transient(rc) && it->attempts < cfg->notify_max_attempts ? "retry"
                                                                                    : "failed";
    gw_fmt(labels, sizeof(labels), "channel=\"%s\",result=\"%s\"", it->channel, result);
    gw_metrics_add("mlgw_run_notifications_total", labels, 1);
    if (rc == GW_OK) {
        GW_LOG_INFO("notified %s %s of a run %s", it->channel, it->recipient, it->status);
        (void)db_run_notification_sent(app->pool, it->id, &derr);
    } else if (strcmp(result, "retry") == 0) {
        long delay = 10 + (long)gw_jitter_ms(cfg->notify_retry_base_ms, 3600000, it->attempts);
        GW_LOG_INFO("run notification %s (%s %s) failed (%s): %s; retrying in %ld ms", it->id,
                    it->channel, it->recipient, cls, err->msg, delay);
        (void)db_run_notification_retry(app->pool, it->id, err->msg, cls, delay, &derr);
    } else {
        GW_LOG_WARN("run notification %s (%s %s) failed for good (%s): %s", it->id, it->channel,
                    it->recipient, cls, err->msg);
        (void)db_run_notification_failed(app->pool, it->id, err->msg, cls, &derr);
    }
}

int jobs_run_notify_due(struct jobs_app *app, struct aws_client *aws, int max)
{
    int done = 0;
    for (; done < max && !gw_shutting_down(); done++) {
        struct db_notification it;
        struct gw_err err = {0};
        if (db_run_notification_claim(&it, app->pool, LEASE_S, &err) != GW_OK)
            break;
        json_t *run = json_loads(it.job_json, 0, NULL);
        char hook_cls[JOBS_WEBHOOK_CLASS_LEN] = "";
        int rc = send_one(hook_cls, app, aws, &it, run, &err);
        record(app, &it, rc, failure_class(it.channel, rc, hook_cls), &err);
        json_decref(run);
        db_notification_dispose(&it);
    }
    return done;
}
