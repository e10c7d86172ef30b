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

int db_job_event_apply_on(struct db_job_event_result *out, struct db_conn *c,
                          const struct db_job_event *ev, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    char exit_code[16], attempts[16], started[24], stopped[24], vcpus[24], memory[24], gpus[24];
    gw_fmt(exit_code, sizeof(exit_code), "%d", ev->exit_code);
    gw_fmt(attempts, sizeof(attempts), "%d", ev->attempts);
    gw_fmt(started, sizeof(started), "%lld", ev->started_ms);
    gw_fmt(stopped, sizeof(stopped), "%lld", ev->stopped_ms);
    gw_fmt(vcpus, sizeof(vcpus), "%lld", ev->vcpus);
    gw_fmt(memory, sizeof(memory), "%lld", ev->memory);
    gw_fmt(gpus, sizeof(gpus), "%lld", ev->gpus);
    const char *params[22] = {
        ev->event_id,
        ev->source,
        ev->batch_job_id,
        ev->gateway_id,
        ev->new_id,
        ev->status,
        ev->reason,
        ev->exit_code >= 0 ? exit_code : NULL,
        ev->attempts >= 0 ? attempts : NULL,
        ev->log_stream,
        ev->started_ms > 0 ? started : NULL,
        ev->stopped_ms > 0 ? stopped : NULL,
        ev->job_name,
        ev->queue,
        ev->vcpus >= 0 ? vcpus : NULL,
        ev->memory >= 0 ? memory : NULL,
        ev->gpus >= 0 ? gpus : NULL,
        ev->script_key,
        ev->output_uri,
        ev->notify_statuses ? ev->notify_statuses : "{}",
        ev->global_emails ? ev->global_emails : "{}",
        ev->topic,
    };
    PGresult *res = NULL;
    int rc = db_exec(&res, c, &apply_stmt, params, err);
    if (rc == GW_OK) {
        gw_fmt(out->result, sizeof(out->result), "%s", PQgetvalue(res, 0, 0));
        gw_fmt(out->job_id, sizeof(out->job_id), "%s", PQgetvalue(res, 0, 1));
        gw_fmt(out->status, sizeof(out->status), "%s", PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    return rc;
}

int db_job_event_apply(struct db_job_event_result *out, struct db_pool *pool,
                       const struct db_job_event *ev, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    int rc = GW_OK;
    /* Two first events for one unknown job race to create it: the loser's
     * unique violation means the job now exists, so it tries once more. */
    for (int attempt = 0; attempt < 2; attempt++) {
        struct db_conn *c = NULL;
        rc = db_pool_checkout(&c, pool, err);
        if (rc == GW_OK)
            rc = db_job_event_apply_on(out, c, ev, err);
        int retry = rc == GW_ECONFLICT && strcmp(db_conn_sqlstate(c), "23505") == 0;
        db_pool_checkin(pool, c);
        if (!retry)
            break;
    }
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
