/*
 * logs.c — GET /jobs/{id}/logs: one page of a job's output, oldest first.
 *
 * A local job's lines come from the executor's log file (jobs/joblog.c); a job
 * on AWS Batch has its lines in CloudWatch Logs, in the group
 * MLGW_BATCH_LOG_GROUP and the stream its events named (aws/logs.c). The
 * opaque cursor says which and where: base64url of "l1:<offset>:<time of the
 * line before, ms>" or of "c1:<CloudWatch nextForwardToken>" ("c1:" alone:
 * from the head). A cursor is handed out while more lines can be read now or
 * the job has not ended, so that a client can keep polling; it is null once
 * an ended job's log has been read to the end.
 *
 * CloudWatch Logs is read through the process's one AWS client
 * (jobs_app.aws, made at start); credentials are looked up on first use, so
 * a gateway that knows Batch jobs only from callbacks needs no other AWS
 * setting for this route.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/logs.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/time.h"
#include "db/jobs.h"
#include "jobs/app.h"
#include "jobs/joblog.h"
#include "routes/params.h"
#include "routes/routes.h"

#include "common/poison.h"

static const char tag_local[] = "l1:";
static const char tag_cloud[] = "c1:";
static const char *const log_params[] = {"limit", "cursor", NULL};

enum {
    TOKEN_MAX = 511, /* aws_logs_get_events hands out at most this much */
    CURSOR_MAX = 1024,
    PATH_MAX_LEN = 4096,
};
/* 9999-12-31T23:59:59.999Z: the last time a log line can carry. */
static const long long MS_MAX = 253402300799999LL;

struct logs_cursor {
    char kind; /* 0: none (the first page), 'l' local, 'c' CloudWatch */
    struct jobs_log_pos pos;
    char token[TOKEN_MAX + 1]; /* "": from the head */
};

/* ---- cursors ------------------------------------------------------------ */

/* "<offset>:<ms>", both whole decimal numbers, ms -1 for none. */
static int parse_local(struct jobs_log_pos *pos, const char *payload)
{
    const char *colon = strchr(payload, ':');
    char offset[24];
    long long off = 0, ms = 0;
    if (colon == NULL || (size_t)(colon - payload) >= sizeof(offset))
        return 0;
    memcpy(offset, payload, (size_t)(colon - payload));
    offset[colon - payload] = '\0';
    if (gw_parse_ll(&off, offset, 0, INT64_MAX) != GW_OK ||
        gw_parse_ll(&ms, colon + 1, -1, MS_MAX) != GW_OK)
        return 0;
    pos->offset = off;
    pos->last_ms = ms;
    return 1;
}

/* Fills c from a cursor this route issued; 0 when it is not one. */
static int cursor_parse(struct logs_cursor *c, const char *text)
{
    char payload[TOKEN_MAX + 1];
    if (rt_cursor_decode(payload, sizeof(payload), tag_local, text) >= 0) {
        c->kind = 'l';
        return parse_local(&c->pos, payload);
    }
    if (rt_cursor_decode(payload, sizeof(payload), tag_cloud, text) < 0)
        return 0;
    for (const char *p = payload; *p != '\0'; p++)
        if (*p < 0x21 || *p > 0x7e) /* tokens are printable ASCII without spaces */
            return 0;
    c->kind = 'c';
    memcpy(c->token, payload, strlen(payload) + 1);
    return 1;
}

static int cursor_local(char out[CURSOR_MAX], const struct jobs_log_pos *pos)
{
    char payload[48];
    gw_fmt(payload, sizeof(payload), "%lld:%lld", (long long)pos->offset, (long long)pos->last_ms);
    return rt_cursor_encode(out, CURSOR_MAX, tag_local, payload);
}

/* ---- replies ------------------------------------------------------------ */

static void reply_bad_cursor(struct rt_request *req, struct rt_reply *out, const char *why)
{
    json_t *errors = json_array();
    rt_param_error(errors, "cursor", why);
    rt_reply_problem(req, out, 400, "Bad Request", "invalid query parameters; see errors", errors);
}

/* {"items": items, "next_cursor": cursor or null}; steals items. */
static void reply_page(struct rt_reply *out, json_t *items, const char *cursor)
{
    json_t *body = json_pack("{s:o,s:s?}", "items", items, "next_cursor", cursor);
    rt_reply_json(out, 200, body); /* NULL falls back to a 500 */
}

/* ---- local jobs --------------------------------------------------------- */

static void reply_local(struct rt_request *req, struct rt_reply *out, const char *id,
                        const struct logs_cursor *cur, int limit, int finished)
{
    if (cur->kind == 'c') {
        reply_bad_cursor(req, out, "is a cursor of a log in CloudWatch, not of this local job");
        return;
    }
    char path[PATH_MAX_LEN];
    struct gw_err err = {0};
    int rc = jobs_log_path(path, sizeof(path), req->app->cfg->local_root, id, &err);
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    struct jobs_log_pos from = cur->kind == 'l' ? cur->pos : (struct jobs_log_pos){0, -1};
    struct jobs_log_page page;
    rc = jobs_log_read(&page, path, from, limit, finished, &err);
    if (rc == GW_EINVAL) {
        GW_LOG_INFO("job %s: %s", id, err.msg);
        reply_bad_cursor(req, out, "does not point into this job's log");
        return;
    }
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    char cursor[CURSOR_MAX];
    int more = page.more || !finished;
    if (more && cursor_local(cursor, &page.next) != 0) {
        json_decref(page.items);
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return;
    }
    reply_page(out, page.items, more ? cursor : NULL);
}

/* ---- Batch jobs: CloudWatch Logs ------------------------------------------ */

/* CloudWatch events as items. */
static json_t *items_from_events(const json_t *events)
{
    json_t *items = json_array();
    size_t i;
    const json_t *ev;
    json_array_foreach(events, i, ev)
    {
        char at[32];
        const char *msg = json_string_value(json_object_get(ev, "message"));
        gw_format_time_ms(at, sizeof(at),
                          (int64_t)json_integer_value(json_object_get(ev, "timestamp")));
        if (items == NULL ||
            json_array_append_new(
                items, json_pack("{s:s,s:s}", "at", at, "message", msg ? msg : "")) != 0) {
            json_decref(items);
            return NULL;
        }
    }
    return items;
}

static void reply_cloud(struct rt_request *req, struct rt_reply *out, const json_t *job,
                        const struct logs_cursor *cur, int limit, int finished)
{
    if (cur->kind == 'l') {
        reply_bad_cursor(req, out, "is a cursor of a local job's log, not of this Batch job");
        return;
    }
    const struct gw_config *cfg = req->app->cfg;
    const char *id = json_string_value(json_object_get(job, "id"));
    const char *stream = json_string_value(json_object_get(job, "log_stream"));
    const char *sent = cur->kind == 'c' ? cur->token : "";
    char next[512] = "";
    json_t *events = NULL;
    int more = 0;
    if (stream != NULL && stream[0] != '\0') {
        struct aws_client *aws = req->app->aws;
        struct gw_err err = {0};
        int rc;
        /* A job learnt of from callbacks, on a gateway without AWS: say so. */
        if (aws == NULL || aws_client_region(aws)[0] == '\0') {
            gw_err_public(&err, GW_EUNAVAIL,
                          "CloudWatch Logs is not configured on this gateway (no AWS region: "
                          "AWS_REGION); this job's log is in stream %s",
                          stream);
            rt_reply_error(req, out, GW_EUNAVAIL, &err);
            return;
        }
        struct aws_logs_get in = {
            .group = cfg->batch_log_group,
            .stream = stream,
            .next_token = sent[0] != '\0' ? sent : NULL,
            .limit = limit,
            .start_from_head = 1, /* required with a forward token, and the first page's start */
        };
        struct aws_error aerr;
        rc = aws_logs_get_events(&events, next, aws, &in, &aerr);
        if (rc == GW_ENOTFOUND && strcmp(aerr.code, "ResourceNotFoundException") == 0) {
            next[0] = '\0'; /* no stream yet: nothing to read, same place next time */
        } else if (rc == GW_EUPSTREAM && sent[0] != '\0' &&
                   strcmp(aerr.code, "InvalidParameterException") == 0) {
            GW_LOG_INFO("job %s: CloudWatch Logs refused the cursor's token: %s", id ? id : "?",
                        aerr.message);
            reply_bad_cursor(req, out, "is not a cursor this API issued");
            return;
        } else if (rc != GW_OK) {
            gw_err_set(&err, rc, "CloudWatch Logs GetLogEvents (%s %s): HTTP %ld %s: %s",
                       cfg->batch_log_group, stream, aerr.http_status, aerr.code, aerr.message);
            rt_reply_error(req, out, rc, &err);
            return;
        }
        /* A forward token that comes back unchanged means: at the end for now. */
        more = next[0] != '\0' && strcmp(next, sent) != 0;
    }
    json_t *items = events ? items_from_events(events) : json_array();
    json_decref(events);
    char cursor[CURSOR_MAX];
    int give = more || !finished;
    if (items == NULL ||
        (give && rt_cursor_encode(cursor, sizeof(cursor), tag_cloud, next[0] ? next : sent) != 0)) {
        json_decref(items);
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return;
    }
    reply_page(out, items, give ? cursor : NULL);
}

/* ---- the handler ------------------------------------------------------------ */

static int status_terminal(const char *status)
{
    static const char *const terminal[] = {"SUCCEEDED", "FAILED", "CANCELLED", "DISPATCH_FAILED",
                                           NULL};
    for (size_t i = 0; status != NULL && terminal[i] != NULL; i++)
        if (strcmp(status, terminal[i]) == 0)
            return 1;
    return 0;
}

void rt_jobs_logs(struct rt_request *req, struct rt_reply *out)
{
    const char *id = rt_job_id_param(req, out);
    if (id == NULL)
        return;
    json_t *errors = json_array();
    rt_params_unknown(errors, req, log_params);
    int limit = RT_LIMIT_DEFAULT;
    rt_param_limit(&limit, req, errors);
    struct logs_cursor cur;
    memset(&cur, 0, sizeof(cur));
    const char *v = rt_query(req, "cursor");
    if (v != NULL && !cursor_parse(&cur, v))
        rt_param_error(errors, "cursor", "is not a cursor this API issued");
    if (json_array_size(errors) > 0) {
        rt_reply_problem(req, out, 400, "Bad Request", "invalid query parameters; see errors",
                         errors);
        return;
    }
    json_decref(errors);

    char *text = NULL;
    struct gw_err err = {0};
    int rc = db_job_get(&text, req->app->request_pool, id, rt_team(req), &err);
    if (rc == GW_ENOTFOUND) {
        rt_reply_problem(req, out, 404, "Not Found", "no such job", NULL);
        return;
    }
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return;
    }
    json_t *job = json_loads(text, 0, NULL);
    free(text);
    const char *dispatch = json_string_value(json_object_get(job, "dispatch"));
    if (dispatch == NULL) {
        gw_err_set(&err, GW_EDB, "job %s: the database's JSON has no dispatch", id);
        rt_reply_error(req, out, GW_EDB, &err);
    } else {
        int finished = status_terminal(json_string_value(json_object_get(job, "status")));
        if (strcmp(dispatch, "local") == 0)
            reply_local(req, out, id, &cur, limit, finished);
        else
            reply_cloud(req, out, job, &cur, limit, finished);
    }
    json_decref(job);
}
