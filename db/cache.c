/*
 * cache.c — SQL for cache_scans, cache_entries and cache_operations.
 */
#include "db/cache.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#include "common/poison.h"

#define CACHE_OP_ACTIVE "j.status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'DISPATCH_FAILED')"

/* ---- scans ------------------------------------------------------------------- */

static const struct db_stmt scan_lock_stmt = {
    "cache_scan_lock", "SELECT pg_advisory_xact_lock(hashtextextended('mlgw-cache:' || $1, 0))", 1};

static const struct db_stmt scan_save_stmt = {
    "cache_scan_save",
    "INSERT INTO cache_scans (root, scanned_at, duration_ms, bytes, files, complete, error) "
    "VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7) ON CONFLICT (root) DO UPDATE SET "
    "scanned_at = EXCLUDED.scanned_at, duration_ms = EXCLUDED.duration_ms, "
    "bytes = EXCLUDED.bytes, files = EXCLUDED.files, complete = EXCLUDED.complete, "
    "error = EXCLUDED.error",
    7};

static const struct db_stmt entries_save_stmt = {
    "cache_entries_save",
    "INSERT INTO cache_entries (root, name, bytes, files, last_used_at, first_seen_at) "
    "SELECT $1, e.name, e.bytes, e.files, CASE WHEN e.last_used_ms > 0 "
    " THEN to_timestamp(e.last_used_ms / 1000.0) END, $3::timestamptz "
    "FROM jsonb_to_recordset($2::jsonb) AS e(name text, bytes bigint, files bigint, "
    " last_used_ms bigint) "
    "ON CONFLICT (root, name) DO UPDATE SET bytes = EXCLUDED.bytes, files = EXCLUDED.files, "
    "last_used_at = greatest(cache_entries.last_used_at, EXCLUDED.last_used_at)",
    3};

static const struct db_stmt entries_prune_stmt = {
    "cache_entries_prune",
    "DELETE FROM cache_entries WHERE root = $1 AND NOT name = ANY (ARRAY(SELECT "
    "jsonb_array_elements($2::jsonb) ->> 'name'))",
    2};

struct scan_ctx {
    const struct db_cache_scan *s;
    const char *entries_json;
    const char *started_at;
};

static int scan_save_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct scan_ctx *x = arg;
    const struct db_cache_scan *s = x->s;
    char nums[3][24];
    gw_fmt(nums[0], sizeof(nums[0]), "%lld", s->duration_ms);
    gw_fmt(nums[1], sizeof(nums[1]), "%lld", s->bytes);
    gw_fmt(nums[2], sizeof(nums[2]), "%lld", s->files);
    const char *lock[] = {s->root};
    const char *scan[] = {s->root, x->started_at, nums[0],
                          nums[1], nums[2],       s->complete ? "true" : "false",
                          s->error};
    const char *entries[] = {s->root, x->entries_json, x->started_at};
    int rc = db_exec(NULL, c, &scan_lock_stmt, lock, err);
    if (rc == GW_OK)
        rc = db_exec(NULL, c, &scan_save_stmt, scan, err);
    if (rc == GW_OK)
        rc = db_exec(NULL, c, &entries_save_stmt, entries, err);
    if (rc == GW_OK && s->complete && s->error == NULL)
        rc = db_exec(NULL, c, &entries_prune_stmt, entries, err);
    return rc;
}

/* The entries as the JSON array entries_save_stmt reads (new: free()). */
static char *entries_json(const struct db_cache_scan *s)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < s->nentries; i++) {
        const struct db_cache_entry *e = &s->entries[i];
        if (json_array_append_new(a, json_pack("{s:s,s:I,s:I,s:I}", "name", e->name, "bytes",
                                               (json_int_t)e->bytes, "files", (json_int_t)e->files,
                                               "last_used_ms", (json_int_t)e->last_used_ms)) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    char *text = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text;
}

int db_cache_scan_save(struct db_pool *pool, const struct db_cache_scan *s, struct gw_err *err)
{
    char *json = entries_json(s);
    if (json == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    struct scan_ctx x = {s, json, s->started_at};
    int rc = db_tx(pool, scan_save_tx, &x, err);
    free(json);
    return rc;
}

/* ---- status ------------------------------------------------------------------ */

static const struct db_stmt status_stmt = {
    "cache_status",
    "SELECT json_build_object("
    "'root', $1::text, 'bytes', coalesce(s.bytes, 0), 'files', coalesce(s.files, 0), "
    "'scanned_at', mlgw_ts(s.scanned_at), "
    "'scan', CASE WHEN s.root IS NULL THEN NULL ELSE json_build_object('duration_ms', "
    " s.duration_ms, 'complete', s.complete, 'error', s.error) END, "
    "'entries', coalesce((SELECT json_agg(json_build_object('name', e.name, 'bytes', e.bytes, "
    " 'files', e.files, 'last_used_at', mlgw_ts(e.last_used_at), 'created_at', "
    " mlgw_ts(e.first_seen_at)) ORDER BY e.bytes DESC, e.name) FROM cache_entries e "
    " WHERE e.root = $1), '[]'), "
    "'max_bytes', nullif($2::bigint, 0), "
    "'last_cleanup', (SELECT json_build_object('job_id', o.job_id, 'status', j.status, "
    " 'freed_bytes', o.freed_bytes, 'at', mlgw_ts(coalesce(j.stopped_at, o.created_at))) "
    " FROM cache_operations o JOIN jobs j ON j.id = o.job_id "
    " WHERE o.operation = 'cleanup-cache' ORDER BY o.created_at DESC LIMIT 1), "
    "'operations', coalesce((SELECT json_agg(json_build_object('job_id', o.job_id, "
    " 'operation', o.operation, 'origin', o.origin, 'status', j.status, 'request', o.request, "
    " 'freed_bytes', o.freed_bytes, 'created_at', mlgw_ts(o.created_at), 'stopped_at', "
    " mlgw_ts(j.stopped_at)) ORDER BY o.created_at DESC) FROM (SELECT * FROM cache_operations "
    " ORDER BY created_at DESC LIMIT $3) o JOIN jobs j ON j.id = o.job_id), '[]')"
    ")::text FROM (SELECT 1) one LEFT JOIN cache_scans s ON s.root = $1",
    3};

int db_cache_status(char **out, struct db_pool *pool, const char *root, long long max_bytes,
                    int ops_limit, struct gw_err *err)
{
    *out = NULL;
    char max[24], limit[16];
    gw_fmt(max, sizeof(max), "%lld", max_bytes);
    gw_fmt(limit, sizeof(limit), "%d", ops_limit);
    const char *params[] = {root, max, limit};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &status_stmt, params, err);
    if (rc == GW_OK && (*out = strdup(PQgetvalue(res, 0, 0))) == NULL)
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
    PQclear(res);
    return rc;
}

/* ---- operations -------------------------------------------------------------- */

static const struct db_stmt op_lock_stmt = {
    "cache_op_lock", "SELECT pg_advisory_xact_lock(hashtextextended('mlgw-cache-operations', 0))",
    0};

static const struct db_stmt op_active_stmt = {
    "cache_op_active",
    "SELECT j.id, j.operation, j.status FROM cache_operations o JOIN jobs j ON j.id = o.job_id "
    "WHERE " CACHE_OP_ACTIVE " ORDER BY o.created_at LIMIT 1",
    0};

static const struct db_stmt op_insert_stmt = {
    "cache_op_insert",
    "INSERT INTO cache_operations (job_id, operation, origin, request) "
    "VALUES ($1, $2, $3, coalesce($4::jsonb, '{}'))",
    4};

int db_cache_op_guard(struct db_conn *c, const char *job_id, void *arg, struct gw_err *err)
{
    const struct db_cache_op *op = arg;
    PGresult *res = NULL;
    int rc = db_exec(NULL, c, &op_lock_stmt, NULL, err);
    if (rc == GW_OK)
        rc = db_exec(&res, c, &op_active_stmt, NULL, err);
    if (rc == GW_OK && PQntuples(res) > 0)
        rc = gw_err_public(err, GW_ECONFLICT,
                           "the %s job %s is still %s: one cache operation at a time",
                           PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2));
    PQclear(res);
    if (rc != GW_OK)
        return rc;
    const char *params[] = {job_id, op->operation, op->origin, op->request_json};
    return db_exec(NULL, c, &op_insert_stmt, params, err);
}

static const struct db_stmt pending_stmt = {
    "cache_pending",
    "SELECT clock_timestamp()::text, s.scanned_at IS NULL OR EXISTS (SELECT 1 "
    " FROM cache_operations o JOIN jobs j ON j.id = o.job_id WHERE NOT (" CACHE_OP_ACTIVE ") "
    " AND o.created_at > now() - interval '30 days' AND j.updated_at >= s.scanned_at) "
    "FROM (SELECT 1) one LEFT JOIN cache_scans s ON s.root = $1",
    1};

int db_cache_pending(int *rescan, char now[64], struct db_pool *pool, const char *root,
                     struct gw_err *err)
{
    *rescan = 0;
    now[0] = '\0';
    const char *params[] = {root};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &pending_stmt, params, err);
    if (rc == GW_OK) {
        gw_fmt(now, 64, "%s", PQgetvalue(res, 0, 0));
        *rescan = PQgetvalue(res, 0, 1)[0] == 't';
    }
    PQclear(res);
    return rc;
}

static const struct db_stmt unread_stmt = {
    "cache_unread",
    "SELECT o.job_id, j.output_uri, j.status FROM cache_operations o JOIN jobs j "
    "ON j.id = o.job_id WHERE o.operation = 'cleanup-cache' AND NOT o.summary_read "
    "AND NOT (" CACHE_OP_ACTIVE ") ORDER BY o.created_at LIMIT $1",
    1};

int db_cache_unread(PGresult **out, struct db_pool *pool, int limit, struct gw_err *err)
{
    char n[16];
    gw_fmt(n, sizeof(n), "%d", limit);
    const char *params[] = {n};
    return db_pool_exec(out, pool, &unread_stmt, params, err);
}

static const struct db_stmt freed_stmt = {
    "cache_op_freed",
    "UPDATE cache_operations SET freed_bytes = $2, summary_read = true WHERE job_id = $1", 2};

int db_cache_op_freed(struct db_pool *pool, const char *job_id, long long freed, struct gw_err *err)
{
    char n[24];
    gw_fmt(n, sizeof(n), "%lld", freed);
    const char *params[] = {job_id, freed >= 0 ? n : NULL};
    return db_pool_exec(NULL, pool, &freed_stmt, params, err);
}
