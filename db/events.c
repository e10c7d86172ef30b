/*
 * events.c — the C side of mlgw_apply_job_event (migrations/0004).
 */
#include "db/events.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#include "common/poison.h"

static const struct db_stmt apply_stmt = {
    "job_event_apply",
    "SELECT result, coalesce(job_id::text, ''), coalesce(job_status, '') FROM "
    "mlgw_apply_job_event($1, $2, $3, $4::uuid, $5::uuid, $6, $7, $8::int, $9::int, $10, "
    "$11::bigint, $12::bigint, $13, $14, $15::int, $16::int, $17::int, $18, $19, $20::text[], "
    "$21::text[], $22)",
    22};

/* The statement's parameters for ev, pointing into ew and ev. */
static void event_params(struct db_job_event_write *ew, const struct db_job_event *ev)
{
    gw_fmt(ew->exit_code, sizeof(ew->exit_code), "%d", ev->exit_code);
    gw_fmt(ew->attempts, sizeof(ew->attempts), "%d", ev->attempts);
    gw_fmt(ew->started, sizeof(ew->started), "%lld", ev->started_ms);
    gw_fmt(ew->stopped, sizeof(ew->stopped), "%lld", ev->stopped_ms);
    gw_fmt(ew->vcpus, sizeof(ew->vcpus), "%lld", ev->vcpus);
    gw_fmt(ew->memory, sizeof(ew->memory), "%lld", ev->memory);
    gw_fmt(ew->gpus, sizeof(ew->gpus), "%lld", ev->gpus);
    const char *params[22] = {
        ev->event_id,
        ev->source,
        ev->batch_job_id,
        ev->gateway_id,
        ev->new_id,
        ev->status,
        ev->reason,
        ev->exit_code >= 0 ? ew->exit_code : NULL,
        ev->attempts >= 0 ? ew->attempts : NULL,
        ev->log_stream,
        ev->started_ms > 0 ? ew->started : NULL,
        ev->stopped_ms > 0 ? ew->stopped : NULL,
        ev->job_name,
        ev->queue,
        ev->vcpus >= 0 ? ew->vcpus : NULL,
        ev->memory >= 0 ? ew->memory : NULL,
        ev->gpus >= 0 ? ew->gpus : NULL,
        ev->script_key,
        ev->output_uri,
        ev->notify_statuses ? ev->notify_statuses : "{}",
        ev->global_emails ? ev->global_emails : "{}",
        ev->topic,
    };
    memcpy(ew->params, params, sizeof(params));
}

static int read_result(void *arg, const PGresult *res, struct gw_err *err)
{
    (void)err;
    struct db_job_event_result *out = arg;
    gw_fmt(out->result, sizeof(out->result), "%s", PQgetvalue(res, 0, 0));
    gw_fmt(out->job_id, sizeof(out->job_id), "%s", PQgetvalue(res, 0, 1));
    gw_fmt(out->status, sizeof(out->status), "%s", PQgetvalue(res, 0, 2));
    return GW_OK;
}

void db_job_event_write_init(struct db_job_event_write *ew, const struct db_job_event *ev)
{
    memset(ew, 0, sizeof(*ew));
    event_params(ew, ev);
    ew->w.stmt = &apply_stmt;
    ew->w.params = ew->params;
    ew->w.row = read_result;
    ew->w.arg = &ew->out;
    /* Two first events for one unknown job race to create it: the loser's
     * unique violation means the job now exists, so it tries once more. */
    ew->w.retry_unique = 1;
    /* The job it locks: by its Batch id, else the id the gateway gave it. */
    ew->w.lock_key = ev->batch_job_id != NULL ? ev->batch_job_id : ev->gateway_id;
}

int db_job_event_apply_on(struct db_job_event_result *out, struct db_conn *c,
                          const struct db_job_event *ev, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    struct db_job_event_write ew;
    db_job_event_write_init(&ew, ev);
    PGresult *res = NULL;
    int rc = db_exec(&res, c, &apply_stmt, ew.params, err);
    if (rc == GW_OK)
        rc = read_result(out, res, err);
    PQclear(res);
    return rc;
}

int db_job_event_apply(struct db_job_event_result *out, struct db_pool *pool,
                       const struct db_job_event *ev, struct gw_err *err)
{
    struct db_job_event_write ew;
    db_job_event_write_init(&ew, ev);
    int rc = db_write_now(pool, &ew.w);
    *out = ew.out;
    if (rc != GW_OK)
        *err = ew.w.err;
    return rc;
}

char *db_pg_array_from_csv(const char *csv)
{
    if (csv == NULL)
        return NULL;
    struct gw_buf b;
    gw_buf_init(&b, strlen(csv) * 2 + 16);
    int rc = gw_buf_adds(&b, "{");
    int first = 1;
    for (const char *p = csv; rc == GW_OK && *p != '\0';) {
        size_t len = strcspn(p, ",");
        const char *s = p, *e = p + len;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            rc = gw_buf_adds(&b, first ? "\"" : ",\"");
            for (const char *q = s; rc == GW_OK && q < e; q++) {
                if (*q == '"' || *q == '\\')
                    rc = gw_buf_adds(&b, "\\");
                if (rc == GW_OK)
                    rc = gw_buf_add(&b, q, 1);
            }
            if (rc == GW_OK)
                rc = gw_buf_adds(&b, "\"");
            first = 0;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (rc == GW_OK)
        rc = gw_buf_adds(&b, "}");
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        return NULL;
    }
    return gw_buf_steal(&b);
}
