/*
 * runs.c — SQL for pipeline_runs and their steps (runs.h).
 */
#include "db/runs.h"

#include "db/idempotency.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"

#include "common/poison.h"

static const struct db_stmt insert_stmt = {
    "run_insert",
    "WITH r AS (INSERT INTO pipeline_runs (id, team, pipeline, version, metadata, notify, "
    "dispatch, notify_topic, output_base, api_key_id) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id), "
    "s AS (INSERT INTO pipeline_run_steps (run_id, name, ord, depends_on, spec, fanout) "
    "SELECT r.id, x ->> 'name', (x ->> 'ord')::integer, "
    "ARRAY(SELECT jsonb_array_elements_text(x -> 'depends_on')), x -> 'spec', x -> 'fanout' "
    "FROM r, jsonb_array_elements($11::jsonb) x) "
    "INSERT INTO pipeline_run_history (run_id, status) SELECT id, 'QUEUED' FROM r",
    11};

static const struct db_stmt start_stmt = {
    "run_start", "SELECT mlgw_pipeline_start_ready($1), mlgw_pipeline_maybe_end($1)", 1};

static const struct db_stmt json_stmt = {
    "run_json",
    "SELECT mlgw_run_json(r, true) FROM pipeline_runs r WHERE r.id = $1 "
    "AND ($2::text IS NULL OR r.team = $2) AND ($3::text IS NULL OR r.pipeline = $3)",
    3};

static int run_json_on(char **out, struct db_conn *c, const char *id, const char *team,
                       const char *pipeline, struct gw_err *err)
{
    *out = NULL;
    const char *params[] = {id, team, pipeline};
    PGresult *res = NULL;
    int rc = db_exec(&res, c, &json_stmt, params, err);
    if (rc == GW_OK && PQntuples(res) == 0)
        rc = gw_err_public(err, GW_ENOTFOUND, "no run %s", id);
    if (rc == GW_OK && (*out = strdup(PQgetvalue(res, 0, 0))) == NULL)
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
    PQclear(res);
    return rc;
}

static int insert_run(char **out, struct db_conn *c, const struct db_run_new *run,
                      struct gw_err *err)
{
    char version[24];
    gw_fmt(version, sizeof(version), "%lld", run->version);
    const char *params[] = {run->id,         run->team,          run->pipeline,
                            version,         run->metadata_json, run->notify_json,
                            run->dispatch,   run->notify_topic,  run->output_base,
                            run->api_key_id, run->steps_json};
    int rc = db_exec(NULL, c, &insert_stmt, params, err);
    const char *id_param[] = {run->id};
    if (rc == GW_OK)
        rc = db_exec(NULL, c, &start_stmt, id_param, err);
    if (rc == GW_OK)
        rc = run_json_on(out, c, run->id, NULL, NULL, err);
    return rc;
}

/* The run's write; run again when its batch is, so it starts from nothing. */
static int create_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct db_run_write *rw = arg;
    int keyed = rw->idem.key != NULL;
    db_job_created_reset(&rw->out);
    if (keyed) {
        /* Locks the key until commit, or replays the first answer. */
        int found = db_idem_replay(&rw->out, c, &rw->idem, err);
        if (found != 0)
            return found < 0 ? found : GW_OK;
    }
    int rc = insert_run(&rw->out.json, c, &rw->run, err);
    if (rc != GW_OK)
        return rc;
    rw->out.status = 202;
    if (!keyed)
        return GW_OK;
    char location[400];
    gw_fmt(location, sizeof(location), "/pipelines/%s/runs/%s", rw->run.pipeline, rw->run.id);
    return db_idem_save(c, &rw->idem, 202, rw->out.json, location, err);
}

void db_run_write_init(struct db_run_write *rw, const struct db_run_new *run,
                       const struct db_idempotency *idem)
{
    memset(rw, 0, sizeof(*rw));
    rw->run = *run;
    if (idem != NULL)
        rw->idem = *idem;
    rw->w.fn = create_tx;
    rw->w.arg = rw;
}

void db_run_write_dispose(struct db_run_write *rw)
{
    db_job_created_reset(&rw->out);
}

int db_run_get(char **out, struct db_pool *pool, const char *team, const char *pipeline,
               const char *id, struct gw_err *err)
{
    struct db_conn *c = NULL;
    *out = NULL;
    int rc = db_pool_checkout(&c, pool, err);
    if (rc != GW_OK)
        return rc;
    rc = run_json_on(out, c, id, team, pipeline, err);
    db_pool_checkin(pool, c);
    return rc;
}

static const struct db_stmt list_stmt = {
    "run_list",
    "SELECT mlgw_run_json(r, false), r.id FROM pipeline_runs r WHERE r.pipeline = $1 "
    "AND ($2::text IS NULL OR r.team = $2) AND ($3::text IS NULL OR r.status = $3) "
    "AND ($4::uuid IS NULL OR r.id < $4::uuid) ORDER BY r.id DESC LIMIT $5",
    5};

int db_run_list(char **items, char next_id[37], struct db_pool *pool, const struct db_run_filter *f,
                struct gw_err *err)
{
    *items = NULL;
    next_id[0] = '\0';
    char lim[16];
    gw_fmt(lim, sizeof(lim), "%d", f->limit + 1);
    const char *params[] = {f->pipeline, f->team, f->status, f->before_id, lim};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &list_stmt, params, err);
    if (rc != GW_OK)
        return rc;
    int n = PQntuples(res);
    int shown = n > f->limit ? f->limit : n;
    struct gw_buf b;
    gw_buf_init(&b, (size_t)1 << 26);
    rc = gw_buf_adds(&b, "[");
    for (int i = 0; rc == GW_OK && i < shown; i++)
        rc = gw_buf_printf(&b, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
    if (rc == GW_OK)
        rc = gw_buf_adds(&b, "]");
    if (rc == GW_OK && n > f->limit)
        gw_fmt(next_id, 37, "%s", PQgetvalue(res, shown - 1, 1));
    PQclear(res);
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        return gw_err_set(err, rc, "run list too large");
    }
    *items = gw_buf_steal(&b);
    return GW_OK;
}

static const struct db_stmt cancel_lock_stmt = {
    "run_cancel_lock",
    "SELECT status FROM pipeline_runs WHERE id = $1 AND ($2::text IS NULL OR team = $2) "
    "AND pipeline = $3 FOR UPDATE",
    3};

static const struct db_stmt cancel_mark_stmt = {
    "run_cancel_mark",
    "WITH r AS (UPDATE pipeline_runs SET cancel_requested = true, updated_at = now() "
    "WHERE id = $1), "
    "s AS (UPDATE pipeline_run_steps SET status = 'CANCELLED', stopped_at = now() "
    "WHERE run_id = $1 AND status = 'WAITING' RETURNING name) "
    "INSERT INTO pipeline_run_history (run_id, step, status, reason) "
    "SELECT $1, name, 'CANCELLED', 'run cancelled by user' FROM s",
    1};

static const struct db_stmt cancel_jobs_stmt = {
    "run_cancel_jobs",
    "SELECT mlgw_pipeline_maybe_end($1), (SELECT coalesce(array_agg(id ORDER BY id), '{}') "
    "FROM jobs WHERE pipeline_run_id = $1 AND mlgw_status_rank(status) < 7)",
    1};

struct cancel_ctx {
    PGresult **jobs;
    const char *team, *pipeline, *id;
};

static int cancel_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct cancel_ctx *x = arg;
    const char *params[] = {x->id, x->team, x->pipeline};
    PGresult *res = NULL;
    int rc = db_exec(&res, c, &cancel_lock_stmt, params, err);
    if (rc == GW_OK && PQntuples(res) == 0)
        rc = gw_err_public(err, GW_ENOTFOUND, "no run %s", x->id);
    else if (rc == GW_OK && (strcmp(PQgetvalue(res, 0, 0), "QUEUED") != 0 &&
                             strcmp(PQgetvalue(res, 0, 0), "RUNNING") != 0))
        rc =
            gw_err_public(err, GW_ECONFLICT, "run %s has ended (%s)", x->id, PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *id_param[] = {x->id};
    if (rc == GW_OK)
        rc = db_exec(NULL, c, &cancel_mark_stmt, id_param, err);
    if (rc == GW_OK)
        rc = db_exec(x->jobs, c, &cancel_jobs_stmt, id_param, err);
    return rc;
}

int db_run_cancel(PGresult **jobs, struct db_pool *pool, const char *team, const char *pipeline,
                  const char *id, struct gw_err *err)
{
    *jobs = NULL;
    struct cancel_ctx x = {jobs, team, pipeline, id};
    int rc = db_tx(pool, cancel_tx, &x, err);
    if (rc != GW_OK) {
        PQclear(*jobs);
        *jobs = NULL;
    }
    return rc;
}

static const struct db_stmt note_claim_stmt = {
    "run_notification_claim",
    "WITH c AS (SELECT id FROM pipeline_run_notifications WHERE sent_at IS NULL "
    " AND failed_at IS NULL AND next_attempt_at <= now() "
    " AND (lease_until IS NULL OR lease_until < now()) "
    " ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED LIMIT 1) "
    "UPDATE pipeline_run_notifications n SET lease_until = now() + make_interval(secs => $1), "
    " attempts = n.attempts + 1 FROM c, pipeline_runs r WHERE n.id = c.id AND r.id = n.run_id "
    "RETURNING n.id, n.channel, n.status, n.recipient, n.attempts, mlgw_run_json(r, true)",
    1};

int db_run_notification_claim(struct db_notification *out, struct db_pool *pool, int lease_s,
                              struct gw_err *err)
{
    return db_notification_claim_with(out, pool, &note_claim_stmt, lease_s, err);
}

static const struct db_stmt note_sent_stmt = {
    "run_notification_sent",
    "UPDATE pipeline_run_notifications SET sent_at = now(), lease_until = NULL, "
    "last_error = NULL, error_class = NULL WHERE id = $1",
    1};

int db_run_notification_sent(struct db_pool *pool, const char *id, struct gw_err *err)
{
    const char *p[] = {id};
    return db_pool_exec(NULL, pool, &note_sent_stmt, p, err);
}

static const struct db_stmt note_retry_stmt = {
    "run_notification_retry",
    "UPDATE pipeline_run_notifications SET lease_until = NULL, last_error = $2, "
    "error_class = $4, next_attempt_at = now() + make_interval(secs => $3::float8 / 1000) "
    "WHERE id = $1",
    4};

int db_run_notification_retry(struct db_pool *pool, const char *id, const char *error,
                              const char *error_class, long delay_ms, struct gw_err *err)
{
    char delay[24];
    gw_fmt(delay, sizeof(delay), "%ld", delay_ms);
    const char *p[] = {id, error, delay, error_class};
    return db_pool_exec(NULL, pool, &note_retry_stmt, p, err);
}

static const struct db_stmt note_failed_stmt = {
    "run_notification_failed",
    "UPDATE pipeline_run_notifications SET failed_at = now(), lease_until = NULL, "
    "last_error = $2, error_class = $3 WHERE id = $1",
    3};

int db_run_notification_failed(struct db_pool *pool, const char *id, const char *error,
                               const char *error_class, struct gw_err *err)
{
    const char *p[] = {id, error, error_class};
    return db_pool_exec(NULL, pool, &note_failed_stmt, p, err);
}
