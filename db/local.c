/*
 * local.c — SQL of the local executor (see local.h).
 */
#include "db/local.h"

#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"

#include "common/poison.h"

static const struct db_stmt join_stmt = {
    "local_join",
    "UPDATE jobs SET local_node = $2, local_queued_at = clock_timestamp() "
    "WHERE id = $1 AND status = 'QUEUED' AND dispatch = 'local' RETURNING id",
    2};

struct accept_ctx {
    int *accepted;
    const struct db_outbox_item *it;
    const char *node;
    const struct db_job_event *ev;
};

static int accept_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct accept_ctx *x = arg;
    PGresult *res = NULL;
    int owned;
    int rc = db_outbox_release_on(&owned, c, x->it, err);
    if (rc != GW_OK)
        return rc;
    const char *join[] = {x->it->job_id, x->node};
    rc = db_exec(&res, c, &join_stmt, join, err);
    if (rc != GW_OK)
        return rc;
    *x->accepted = PQntuples(res) == 1;
    PQclear(res);
    if (!*x->accepted || strcmp(x->it->action, "submit") != 0)
        return GW_OK;
    struct db_job_event_result r = {0};
    return db_job_event_apply_on(&r, c, x->ev, err);
}

int db_local_accept(int *accepted, struct db_pool *pool, const struct db_outbox_item *it,
                    const char *node, const struct db_job_event *ev, struct gw_err *err)
{
    *accepted = 0;
    struct accept_ctx x = {accepted, it, node, ev};
    int rc = db_tx(pool, accept_tx, &x, err);
    if (rc != GW_OK)
        *accepted = 0;
    return rc;
}

static const struct db_stmt head_stmt = {
    "local_head",
    "SELECT row_to_json(j) FROM jobs j WHERE dispatch = 'local' AND status = 'RUNNABLE' "
    "AND local_node = $1 ORDER BY local_queued_at, id LIMIT 1",
    1};

int db_local_head(json_t **job, struct db_pool *pool, const char *node, struct gw_err *err)
{
    *job = NULL;
    const char *params[] = {node};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &head_stmt, params, err);
    if (rc == GW_OK && PQntuples(res) == 1 &&
        (*job = json_loads(PQgetvalue(res, 0, 0), 0, NULL)) == NULL)
        rc = gw_err_set(err, GW_EDB, "queued job row is not JSON");
    PQclear(res);
    return rc;
}

static const struct db_stmt started_stmt = {
    "local_started",
    "UPDATE jobs SET started_at = coalesce(started_at, to_timestamp($2::bigint / 1000.0)) "
    "WHERE id = $1",
    2};

int db_local_started(struct db_pool *pool, const char *job_id, long long started_ms,
                     struct gw_err *err)
{
    char t[24];
    gw_fmt(t, sizeof(t), "%lld", started_ms);
    const char *params[] = {job_id, t};
    return db_pool_exec(NULL, pool, &started_stmt, params, err);
}

static const struct db_stmt requeue_stmt = {
    "local_requeue", "UPDATE jobs SET local_queued_at = clock_timestamp() WHERE id = $1", 1};

struct finish_ctx {
    struct db_job_event_result *out;
    const struct db_job_event *ev;
    int requeue;
};

static int finish_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct finish_ctx *x = arg;
    const char *params[] = {x->ev->gateway_id};
    int rc = x->requeue ? db_exec(NULL, c, &requeue_stmt, params, err) : GW_OK;
    if (rc != GW_OK)
        return rc;
    return db_job_event_apply_on(x->out, c, x->ev, err);
}

int db_local_finish(struct db_job_event_result *out, struct db_pool *pool,
                    const struct db_job_event *ev, int requeue, struct gw_err *err)
{
    struct finish_ctx x = {out, ev, requeue};
    return db_tx(pool, finish_tx, &x, err);
}

static const struct db_stmt orphans_stmt = {
    "local_orphans",
    "SELECT id, attempts, max_attempts FROM jobs "
    "WHERE dispatch = 'local' AND status IN ('STARTING', 'RUNNING') AND local_node = $1 "
    "ORDER BY local_queued_at, id",
    1};

int db_local_orphans(PGresult **out, struct db_pool *pool, const char *node, struct gw_err *err)
{
    const char *params[] = {node};
    return db_pool_exec(out, pool, &orphans_stmt, params, err);
}

static const struct db_stmt ended_stmt = {
    "local_ended",
    "SELECT id, status FROM jobs WHERE id = ANY($1::uuid[]) AND mlgw_status_rank(status) = 7", 1};

int db_local_ended(PGresult **out, struct db_pool *pool, const char *ids, struct gw_err *err)
{
    const char *params[] = {ids};
    return db_pool_exec(out, pool, &ended_stmt, params, err);
}

static const struct db_stmt release_leases_stmt = {
    "local_release_leases",
    "UPDATE dispatch_outbox SET lease_until = NULL, lease_owner = NULL "
    "WHERE target = 'local' AND lease_until IS NOT NULL",
    0};

int db_local_release_leases(struct db_pool *pool, struct gw_err *err)
{
    return db_pool_exec(NULL, pool, &release_leases_stmt, NULL, err);
}

static const struct db_stmt waiting_stmt = {
    "local_waiting",
    "SELECT count(*) FROM jobs WHERE dispatch = 'local' AND status IN ('QUEUED', 'RUNNABLE')", 0};

int db_local_waiting(long *n, struct db_pool *pool, struct gw_err *err)
{
    *n = 0;
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &waiting_stmt, NULL, err);
    long long v = 0;
    if (rc == GW_OK && gw_parse_ll(&v, PQgetvalue(res, 0, 0), 0, (long long)1 << 62) == GW_OK)
        *n = (long)v;
    PQclear(res);
    return rc;
}
