/*
 * pipelines.c — SQL for pipelines and pipeline_versions (pipelines.h).
 */
#include "db/pipelines.h"

#include "db/idempotency.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"

#include "common/poison.h"

/* The team whose pipeline $1 the caller means: $2 its team (NULL: any),
 * $3 its own team, preferred. */
#define PIPELINE_TEAM                                                                              \
    "(SELECT team FROM pipelines WHERE name = $1 AND ($2::text IS NULL OR team = $2) "             \
    "ORDER BY team = $3 DESC, created_at LIMIT 1)"

static int first_text(char **out, PGresult *res, struct gw_err *err)
{
    *out = strdup(PQgetvalue(res, 0, 0));
    return *out ? GW_OK : gw_err_set(err, GW_ENOMEM, "out of memory");
}

static const struct db_stmt create_stmt = {
    "pipeline_create",
    "WITH p AS (INSERT INTO pipelines (team, name, api_key_id) VALUES ($1, $2, $4) "
    "ON CONFLICT DO NOTHING RETURNING *), "
    "v AS (INSERT INTO pipeline_versions (team, name, version, definition, api_key_id) "
    "SELECT team, name, 1, $3::jsonb, $4 FROM p RETURNING *) "
    "SELECT mlgw_pipeline_json(v::pipeline_versions, p::pipelines) FROM v, p",
    4};

struct create_ctx {
    struct db_job_created *out;
    const char *team, *name, *definition_json, *api_key_id;
    const struct db_idempotency *idem;
};

static int create_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct create_ctx *x = arg;
    if (x->idem != NULL) {
        int found = db_idem_replay(x->out, c, x->idem, err);
        if (found != 0)
            return found < 0 ? found : GW_OK;
    }
    const char *params[] = {x->team, x->name, x->definition_json, x->api_key_id};
    PGresult *res = NULL;
    int rc = db_exec(&res, c, &create_stmt, params, err);
    if (rc == GW_OK && PQntuples(res) == 0)
        rc = gw_err_public(err, GW_ECONFLICT, "a pipeline named %s exists already", x->name);
    if (rc == GW_OK)
        rc = first_text(&x->out->json, res, err);
    PQclear(res);
    if (rc != GW_OK)
        return rc;
    x->out->status = 201;
    if (x->idem == NULL)
        return GW_OK;
    char location[128];
    gw_fmt(location, sizeof(location), "/pipelines/%s", x->name);
    return db_idem_save(c, x->idem, 201, x->out->json, location, err);
}

int db_pipeline_create(struct db_job_created *out, struct db_pool *pool, const char *team,
                       const char *name, const char *definition_json, const char *api_key_id,
                       const struct db_idempotency *idem, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    struct create_ctx x = {out, team, name, definition_json, api_key_id, idem};
    int rc = db_tx(pool, create_tx, &x, err);
    if (rc != GW_OK)
        db_job_created_reset(out);
    return rc;
}

static const struct db_stmt update_stmt = {
    "pipeline_update",
    "WITH u AS (UPDATE pipelines q SET latest_version = q.latest_version + 1, updated_at = now() "
    "WHERE q.name = $1 AND q.team = " PIPELINE_TEAM " RETURNING q.*), "
    "v AS (INSERT INTO pipeline_versions (team, name, version, definition, api_key_id) "
    "SELECT team, name, latest_version, $4::jsonb, $5 FROM u RETURNING *) "
    "SELECT mlgw_pipeline_json(v::pipeline_versions, u::pipelines) FROM v, u",
    5};

int db_pipeline_update(char **out, struct db_pool *pool, const struct db_pipeline_scope *scope,
                       const char *name, const char *definition_json, const char *api_key_id,
                       struct gw_err *err)
{
    *out = NULL;
    const char *params[] = {name, scope->team, scope->own_team, definition_json, api_key_id};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &update_stmt, params, err);
    if (rc == GW_OK && PQntuples(res) == 0)
        rc = gw_err_public(err, GW_ENOTFOUND, "no pipeline %s", name);
    if (rc == GW_OK)
        rc = first_text(out, res, err);
    PQclear(res);
    return rc;
}

static const struct db_stmt get_stmt = {
    "pipeline_get",
    "SELECT mlgw_pipeline_json(v, p), p.latest_version FROM pipelines p "
    "LEFT JOIN pipeline_versions v ON v.team = p.team AND v.name = p.name "
    "AND v.version = CASE WHEN $4::integer = 0 THEN p.latest_version ELSE $4::integer END "
    "WHERE p.name = $1 AND p.team = " PIPELINE_TEAM,
    4};

int db_pipeline_get(char **out, struct db_pool *pool, const struct db_pipeline_scope *scope,
                    const char *name, long long version, struct gw_err *err)
{
    *out = NULL;
    char v[24];
    gw_fmt(v, sizeof(v), "%lld", version);
    const char *params[] = {name, scope->team, scope->own_team, v};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &get_stmt, params, err);
    if (rc == GW_OK && PQntuples(res) == 0)
        rc = gw_err_public(err, GW_ENOTFOUND, "no pipeline %s", name);
    else if (rc == GW_OK && PQgetisnull(res, 0, 0))
        rc = gw_err_public(err, GW_ENOTFOUND, "pipeline %s has no version %lld (the latest is %s)",
                           name, version, PQgetvalue(res, 0, 1));
    if (rc == GW_OK)
        rc = first_text(out, res, err);
    PQclear(res);
    return rc;
}

static const struct db_stmt list_stmt = {
    "pipeline_list",
    "SELECT mlgw_pipeline_json(v, p), p.id FROM pipelines p "
    "JOIN pipeline_versions v ON v.team = p.team AND v.name = p.name "
    "AND v.version = p.latest_version "
    "WHERE ($1::text IS NULL OR p.team = $1) AND ($2::uuid IS NULL OR p.id < $2::uuid) "
    "ORDER BY p.id DESC LIMIT $3",
    3};

int db_pipeline_list(char **items, char next_id[37], struct db_pool *pool, const char *team,
                     const char *before_id, int limit, struct gw_err *err)
{
    *items = NULL;
    next_id[0] = '\0';
    char lim[16];
    gw_fmt(lim, sizeof(lim), "%d", limit + 1);
    const char *params[] = {team, before_id, lim};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &list_stmt, params, err);
    if (rc != GW_OK)
        return rc;
    int n = PQntuples(res);
    int shown = n > limit ? limit : n;
    struct gw_buf b;
    gw_buf_init(&b, (size_t)1 << 26);
    rc = gw_buf_adds(&b, "[");
    for (int i = 0; rc == GW_OK && i < shown; i++)
        rc = gw_buf_printf(&b, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
    if (rc == GW_OK)
        rc = gw_buf_adds(&b, "]");
    if (rc == GW_OK && n > limit)
        gw_fmt(next_id, 37, "%s", PQgetvalue(res, shown - 1, 1));
    PQclear(res);
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        return gw_err_set(err, rc, "pipeline list too large");
    }
    *items = gw_buf_steal(&b);
    return GW_OK;
}

static const struct db_stmt lock_stmt = {
    "pipeline_lock",
    "SELECT p.team, EXISTS (SELECT 1 FROM pipeline_runs r WHERE r.team = p.team "
    "AND r.pipeline = p.name AND r.status IN ('QUEUED', 'RUNNING')) FROM pipelines p "
    "WHERE p.name = $1 AND p.team = " PIPELINE_TEAM " FOR UPDATE",
    3};

static const struct db_stmt delete_stmt = {
    "pipeline_delete", "DELETE FROM pipelines WHERE team = $1 AND name = $2", 2};

struct delete_ctx {
    const struct db_pipeline_scope *scope;
    const char *name;
};

static int delete_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct delete_ctx *x = arg;
    const char *params[] = {x->name, x->scope->team, x->scope->own_team};
    PGresult *res = NULL;
    int rc = db_exec(&res, c, &lock_stmt, params, err);
    if (rc == GW_OK && PQntuples(res) == 0)
        rc = gw_err_public(err, GW_ENOTFOUND, "no pipeline %s", x->name);
    else if (rc == GW_OK && PQgetvalue(res, 0, 1)[0] == 't')
        rc = gw_err_public(err, GW_ECONFLICT,
                           "pipeline %s has active runs; cancel them or let them end first",
                           x->name);
    if (rc == GW_OK) {
        const char *del[] = {PQgetvalue(res, 0, 0), x->name};
        rc = db_exec(NULL, c, &delete_stmt, del, err);
    }
    PQclear(res);
    return rc;
}

int db_pipeline_delete(struct db_pool *pool, const struct db_pipeline_scope *scope,
                       const char *name, struct gw_err *err)
{
    struct delete_ctx x = {scope, name};
    return db_tx(pool, delete_tx, &x, err);
}
