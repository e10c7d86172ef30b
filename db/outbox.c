/*
 * outbox.c — SQL for dispatch_outbox. A claim commits its lease (and the
 * in-doubt mark of a submit) before the caller talks to AWS, so a crash at any
 * point leaves a row that the next dispatcher can finish safely.
 */
#include "db/outbox.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"

#include "common/poison.h"

void db_outbox_item_dispose(struct db_outbox_item *it)
{
    if (it == NULL)
        return;
    json_decref(it->job);
    it->job = NULL;
}

static const struct db_stmt claim_stmt = {
    "outbox_claim",
    "WITH c AS (SELECT job_id, action, in_doubt AS was_in_doubt FROM dispatch_outbox "
    " WHERE target = ANY($1::text[]) AND next_attempt_at <= now() "
    " AND (lease_until IS NULL OR lease_until < now() "
    "      OR (lease_holder IS NOT NULL AND NOT mlgw_holder_alive(lease_holder))) "
    " ORDER BY next_attempt_at, created_at FOR UPDATE SKIP LOCKED LIMIT 1) "
    "UPDATE dispatch_outbox o SET lease_until = now() + make_interval(secs => $2), "
    " lease_owner = gen_random_uuid(), lease_holder = $3::bigint, attempts = o.attempts + 1, "
    " in_doubt = o.in_doubt OR (o.action = 'submit' AND o.target = 'batch') "
    "FROM c, jobs j WHERE o.job_id = c.job_id AND o.action = c.action AND j.id = o.job_id "
    "RETURNING o.job_id, o.action, o.target, o.lease_owner, o.attempts, c.was_in_doubt, "
    " row_to_json(j)",
    3};

int db_outbox_claim(struct db_outbox_item *out, struct db_pool *pool, const char *targets,
                    int lease_s, int64_t holder, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    char lease[16], holder_text[24];
    gw_fmt(lease, sizeof(lease), "%d", lease_s);
    gw_fmt(holder_text, sizeof(holder_text), "%lld", (long long)holder);
    const char *params[] = {targets, lease, holder > 0 ? holder_text : NULL};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &claim_stmt, params, err);
    if (rc != GW_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return GW_ENOTFOUND;
    }
    gw_fmt(out->job_id, sizeof(out->job_id), "%s", PQgetvalue(res, 0, 0));
    gw_fmt(out->action, sizeof(out->action), "%s", PQgetvalue(res, 0, 1));
    gw_fmt(out->target, sizeof(out->target), "%s", PQgetvalue(res, 0, 2));
    gw_fmt(out->lease_owner, sizeof(out->lease_owner), "%s", PQgetvalue(res, 0, 3));
    long long n = 0;
    if (gw_parse_ll(&n, PQgetvalue(res, 0, 4), 0, 1000000) == GW_OK)
        out->attempts = (int)n;
    out->was_in_doubt = PQgetvalue(res, 0, 5)[0] == 't';
    out->job = json_loads(PQgetvalue(res, 0, 6), 0, NULL);
    PQclear(res);
    if (out->job == NULL)
        return gw_err_set(err, GW_EDB, "claimed job row is not JSON");
    return GW_OK;
}

static const struct db_stmt release_stmt = {
    "outbox_release",
    "DELETE FROM dispatch_outbox WHERE job_id = $1 AND action = $2 AND lease_owner = $3::uuid "
    "RETURNING job_id",
    3};

static const struct db_stmt mark_submitted_stmt = {
    "outbox_mark_submitted",
    "UPDATE jobs SET status = $2, batch_job_id = $3, sns_message_id = $4, updated_at = now(), "
    "dispatch_attempts = $5, dispatch_error = NULL WHERE id = $1 AND status = 'QUEUED' "
    "RETURNING id",
    5};

static const struct db_stmt history_stmt = {
    "outbox_history",
    "INSERT INTO job_history (job_id, status, source, reason) VALUES ($1, $2, 'dispatcher', $3)",
    3};

static const struct db_stmt record_ids_stmt = {
    "outbox_record_ids",
    "UPDATE jobs SET batch_job_id = coalesce(batch_job_id, $2), "
    "sns_message_id = coalesce(sns_message_id, $3) WHERE id = $1",
    3};

static const struct db_stmt queue_cancel_stmt = {
    "outbox_queue_cancel",
    "INSERT INTO dispatch_outbox (job_id, action, target) VALUES ($1, 'cancel', 'batch') "
    "ON CONFLICT DO NOTHING",
    1};

int db_outbox_release_on(int *owned, struct db_conn *c, const struct db_outbox_item *it,
                         struct gw_err *err)
{
    PGresult *res = NULL;
    const char *rel[] = {it->job_id, it->action, it->lease_owner};
    int rc = db_exec(&res, c, &release_stmt, rel, err);
    *owned = rc == GW_OK && PQntuples(res) == 1;
    PQclear(res);
    if (rc == GW_OK && !*owned)
        rc = gw_err_set(err, GW_ECONFLICT, "lease on job %s was lost", it->job_id);
    return rc;
}

struct submitted_ctx {
    int *cancelled;
    const struct db_outbox_item *it;
    const char *status, *batch_job_id, *message_id;
};

static int submitted_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct submitted_ctx *x = arg;
    PGresult *res = NULL;
    int owned;
    int rc = db_outbox_release_on(&owned, c, x->it, err);
    if (rc != GW_OK)
        return rc;
    char attempts[16];
    gw_fmt(attempts, sizeof(attempts), "%d", x->it->attempts);
    const char *mark[] = {x->it->job_id, x->status, x->batch_job_id, x->message_id, attempts};
    rc = db_exec(&res, c, &mark_submitted_stmt, mark, err);
    if (rc != GW_OK)
        return rc;
    int moved = PQntuples(res) == 1;
    PQclear(res);
    if (moved) {
        char reason[300];
        if (x->batch_job_id != NULL)
            gw_fmt(reason, sizeof(reason), "submitted to AWS Batch as %s", x->batch_job_id);
        else
            gw_fmt(reason, sizeof(reason), "published to SNS as %s",
                   x->message_id ? x->message_id : "?");
        const char *h[] = {x->it->job_id, x->status, reason};
        return db_exec(NULL, c, &history_stmt, h, err);
    }
    /* Cancelled while we were submitting: keep the id, cancel it at AWS. */
    const char *ids[] = {x->it->job_id, x->batch_job_id, x->message_id};
    rc = db_exec(NULL, c, &record_ids_stmt, ids, err);
    if (rc == GW_OK && x->batch_job_id != NULL) {
        const char *q[] = {x->it->job_id};
        rc = db_exec(NULL, c, &queue_cancel_stmt, q, err);
        *x->cancelled = 1;
    }
    return rc;
}

int db_outbox_submitted(int *cancelled, struct db_pool *pool, const struct db_outbox_item *it,
                        const char *status, const char *batch_job_id, const char *message_id,
                        struct gw_err *err)
{
    *cancelled = 0;
    struct submitted_ctx x = {cancelled, it, status, batch_job_id, message_id};
    return db_tx(pool, submitted_tx, &x, err);
}

static const struct db_stmt later_stmt = {
    "outbox_later",
    "WITH o AS (UPDATE dispatch_outbox SET lease_until = NULL, lease_owner = NULL, "
    " next_attempt_at = now() + make_interval(secs => $4::float8 / 1000), last_error = $3, "
    " in_doubt = $5::boolean WHERE job_id = $1 AND action = 'submit' AND lease_owner = $2::uuid "
    " RETURNING job_id, attempts) "
    "UPDATE jobs j SET dispatch_attempts = o.attempts, dispatch_error = $3 FROM o "
    "WHERE j.id = o.job_id",
    5};

static const struct db_stmt later_cancel_stmt = {
    "outbox_later_cancel",
    "UPDATE dispatch_outbox SET lease_until = NULL, lease_owner = NULL, "
    "next_attempt_at = now() + make_interval(secs => $4::float8 / 1000), last_error = $3 "
    "WHERE job_id = $1 AND action = 'cancel' AND lease_owner = $2::uuid AND $5 IS NOT NULL",
    5};

int db_outbox_retry_later(struct db_pool *pool, const struct db_outbox_item *it, const char *error,
                          int in_doubt, long delay_ms, struct gw_err *err)
{
    char delay[24];
    gw_fmt(delay, sizeof(delay), "%ld", delay_ms);
    const char *params[] = {it->job_id, it->lease_owner, error, delay, in_doubt ? "t" : "f"};
    return db_pool_exec(NULL, pool,
                        strcmp(it->action, "submit") == 0 ? &later_stmt : &later_cancel_stmt,
                        params, err);
}

static const struct db_stmt fail_stmt = {
    "outbox_fail",
    "WITH o AS (DELETE FROM dispatch_outbox WHERE job_id = $1 AND action = 'submit' "
    " AND lease_owner = $2::uuid RETURNING job_id, attempts), "
    "j AS (UPDATE jobs SET status = 'DISPATCH_FAILED', status_reason = $3, dispatch_error = $3, "
    " dispatch_attempts = o.attempts, updated_at = now(), stopped_at = now() FROM o "
    " WHERE jobs.id = o.job_id AND jobs.status = 'QUEUED' RETURNING jobs.id) "
    "INSERT INTO job_history (job_id, status, source, reason) "
    "SELECT id, 'DISPATCH_FAILED', 'dispatcher', $3 FROM j",
    3};

int db_outbox_failed(struct db_pool *pool, const struct db_outbox_item *it, const char *reason,
                     struct gw_err *err)
{
    const char *params[] = {it->job_id, it->lease_owner, reason};
    int rc = db_pool_exec(NULL, pool, &fail_stmt, params, err);
    return rc;
}

int db_outbox_done(struct db_pool *pool, const struct db_outbox_item *it, struct gw_err *err)
{
    const char *params[] = {it->job_id, it->action, it->lease_owner};
    int rc = db_pool_exec(NULL, pool, &release_stmt, params, err);
    return rc;
}

static const struct db_stmt stats_stmt = {
    "outbox_stats",
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
    "FROM dispatch_outbox",
    0};

int db_outbox_stats(long *depth, double *oldest_s, struct db_pool *pool, struct gw_err *err)
{
    *depth = 0;
    *oldest_s = 0;
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &stats_stmt, NULL, err);
    if (rc == GW_OK) {
        long long n = 0;
        if (gw_parse_ll(&n, PQgetvalue(res, 0, 0), 0, (long long)1 << 62) == GW_OK)
            *depth = (long)n;
        *oldest_s = strtod(PQgetvalue(res, 0, 1), NULL);
    }
    PQclear(res);
    return rc;
}

static const struct db_stmt requeue_stmt = {
    "job_requeue",
    "WITH u AS (UPDATE jobs SET status = 'QUEUED', status_reason = NULL, dispatch_error = NULL, "
    " dispatch_attempts = 0, stopped_at = NULL, updated_at = now() "
    " WHERE id = $1 AND status = 'DISPATCH_FAILED' RETURNING id, dispatch), "
    "o AS (INSERT INTO dispatch_outbox (job_id, action, target) SELECT id, 'submit', dispatch "
    " FROM u ON CONFLICT DO NOTHING) "
    "INSERT INTO job_history (job_id, status, source, reason) "
    "SELECT id, 'QUEUED', 'api', 'dispatch retried by an administrator' FROM u RETURNING job_id",
    1};

static const struct db_stmt job_status_stmt = {"outbox_job_status",
                                               "SELECT status FROM jobs WHERE id = $1", 1};

static const struct db_stmt job_get_stmt = {
    "outbox_job_get", "SELECT mlgw_job_json(j, mlgw_job_history(j.id)) FROM jobs j WHERE id = $1",
    1};

struct requeue_ctx {
    char **out;
    const char *id;
};

static int requeue_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct requeue_ctx *x = arg;
    const char *p[] = {x->id};
    PGresult *res = NULL;
    int rc = db_exec(&res, c, &requeue_stmt, p, err);
    if (rc != GW_OK)
        return rc;
    int done = PQntuples(res) == 1;
    PQclear(res);
    if (!done) {
        rc = db_exec(&res, c, &job_status_stmt, p, err);
        if (rc != GW_OK)
            return rc;
        if (PQntuples(res) == 0)
            rc = gw_err_public(err, GW_ENOTFOUND, "no job %s", x->id);
        else
            rc = gw_err_public(err, GW_ECONFLICT,
                               "only a DISPATCH_FAILED job can be retried (it is %s)",
                               PQgetvalue(res, 0, 0));
        PQclear(res);
        return rc;
    }
    rc = db_exec(&res, c, &job_get_stmt, p, err);
    if (rc == GW_OK && (*x->out = strdup(PQgetvalue(res, 0, 0))) == NULL)
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
    PQclear(res);
    return rc;
}

int db_job_requeue(char **out, struct db_pool *pool, const char *id, struct gw_err *err)
{
    *out = NULL;
    struct requeue_ctx x = {out, id};
    int rc = db_tx(pool, requeue_tx, &x, err);
    if (rc != GW_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}
