/*
 * idempotency.c — SQL for the Idempotency-Key rule of the creating POSTs
 * (idempotency.h).
 */
#include "db/idempotency.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/parse.h"

#include "common/poison.h"

static const struct db_stmt lock_stmt = {
    "idem_lock", "SELECT pg_try_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))", 2};

static const struct db_stmt find_stmt = {
    "idem_find",
    "SELECT request_hash = decode($3, 'hex'), status, response_body FROM idempotency_keys "
    "WHERE api_key_id = $1 AND key = $2 AND created_at > now() - make_interval(hours => $4)",
    4};

static const struct db_stmt save_stmt = {
    "idem_save",
    "INSERT INTO idempotency_keys (api_key_id, key, request_hash, status, response_body, "
    "location) VALUES ($1, $2, decode($3, 'hex'), $4, $5, $6) "
    "ON CONFLICT (api_key_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, "
    "status = EXCLUDED.status, response_body = EXCLUDED.response_body, "
    "location = EXCLUDED.location, created_at = now()",
    6};

int db_idem_replay(struct db_job_created *out, struct db_conn *c, const struct db_idempotency *idem,
                   struct gw_err *err)
{
    char hash[65], ttl[24];
    gw_hex(hash, idem->request_hash, 32);
    gw_fmt(ttl, sizeof(ttl), "%lld", idem->ttl_hours);
    PGresult *res = NULL;
    const char *lock_params[] = {idem->api_key_id, idem->key};
    int rc = db_exec(&res, c, &lock_stmt, lock_params, err);
    if (rc != GW_OK)
        return rc;
    int locked = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!locked)
        return gw_err_public(err, GW_ECONFLICT,
                             "a request with this Idempotency-Key is still in progress");
    const char *find_params[] = {idem->api_key_id, idem->key, hash, ttl};
    rc = db_exec(&res, c, &find_stmt, find_params, err);
    if (rc != GW_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    long long status = 0;
    if (PQgetvalue(res, 0, 0)[0] == 't' &&
        gw_parse_ll(&status, PQgetvalue(res, 0, 1), 100, 599) == GW_OK) {
        out->json = strdup(PQgetvalue(res, 0, 2));
        out->status = (unsigned)status;
        out->replayed = 1;
        rc = out->json ? 1 : gw_err_set(err, GW_ENOMEM, "out of memory");
    } else {
        rc = gw_err_public(err, GW_EINVAL,
                           "this Idempotency-Key was already used for a different request");
    }
    PQclear(res);
    return rc;
}

int db_idem_save(struct db_conn *c, const struct db_idempotency *idem, unsigned status,
                 const char *body, const char *location, struct gw_err *err)
{
    char hash[65], st[16];
    gw_hex(hash, idem->request_hash, 32);
    gw_fmt(st, sizeof(st), "%u", status);
    const char *params[] = {idem->api_key_id, idem->key, hash, st, body, location};
    return db_exec(NULL, c, &save_stmt, params, err);
}
