/*
 * api_keys.c — SQL for the api_keys table. Hashes travel as hex text and are
 * decoded by PostgreSQL, so every statement stays a text-parameter one.
 */
#include "db/api_keys.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/parse.h"

#include "common/poison.h"

static const struct {
    const char *name;
    unsigned bit;
} scope_names[] = {
    {"jobs:read", DB_SCOPE_JOBS_READ},
    {"jobs:write", DB_SCOPE_JOBS_WRITE},
    {"admin", DB_SCOPE_ADMIN},
};

int db_scopes_parse(unsigned *out, const char *text)
{
    *out = 0;
    size_t n = strlen(text);
    /* Either "a,b" or PostgreSQL's "{a,b}": braces come in pairs. */
    int braced = n > 0 && text[0] == '{';
    if (braced != (n > 0 && text[n - 1] == '}'))
        return GW_EINVAL;
    const char *p = text + braced;
    const char *end = text + n - braced;
    if (p >= end)
        return GW_EINVAL;
    for (;;) {
        size_t len = strcspn(p, ",}");
        if (p + len > end)
            len = (size_t)(end - p);
        unsigned bit = 0;
        for (size_t i = 0; i < GW_ARRAY_LEN(scope_names); i++)
            if (strlen(scope_names[i].name) == len && strncmp(p, scope_names[i].name, len) == 0)
                bit = scope_names[i].bit;
        if (bit == 0)
            return GW_EINVAL; /* unknown, or an empty item */
        *out |= bit;
        p += len;
        if (p == end)
            return GW_OK;
        if (*p != ',')
            return GW_EINVAL;
        p++;
    }
}

void db_scopes_array(char *out, size_t outlen, unsigned bits)
{
    struct gw_buf b;
    gw_buf_init(&b, outlen > 0 ? outlen - 1 : 0);
    gw_buf_adds(&b, "{");
    int first = 1;
    for (size_t i = 0; i < GW_ARRAY_LEN(scope_names); i++) {
        if (!(bits & scope_names[i].bit))
            continue;
        if (!first)
            gw_buf_adds(&b, ",");
        gw_buf_adds(&b, scope_names[i].name);
        first = 0;
    }
    gw_buf_adds(&b, "}");
    gw_fmt(out, outlen, "%s", b.data ? b.data : "{}");
    gw_buf_dispose(&b);
}

int db_team_valid(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        int alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (n == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return n >= 1 && n <= DB_TEAM_MAX;
}

static const struct db_stmt create_stmt = {
    "api_key_create",
    "INSERT INTO api_keys (id, name, prefix, key_hash, scopes, team, rate_per_s, burst) "
    "VALUES ($1, $2, $3, decode($4, 'hex'), $5::text[], coalesce($6, $1), $7::float8, $8::int)",
    8};

int db_api_key_create(struct db_conn *conn, const struct db_api_key_new *key, struct gw_err *err)
{
    char hex[65], arr[64], rate[32], burst[24];
    gw_hex(hex, key->hash, 32);
    db_scopes_array(arr, sizeof(arr), key->scopes);
    gw_fmt(rate, sizeof(rate), "%.17g", key->rate_per_s);
    gw_fmt(burst, sizeof(burst), "%ld", key->burst);
    const char *params[] = {key->id,
                            key->name,
                            key->prefix,
                            hex,
                            arr,
                            key->team,
                            key->rate_per_s > 0 ? rate : NULL,
                            key->burst > 0 ? burst : NULL};
    return db_exec(NULL, conn, &create_stmt, params, err);
}

static const struct db_stmt list_stmt = {
    "api_key_list",
    "SELECT id, name, prefix, array_to_string(scopes, ','), team, rate_per_s::text, burst::text, "
    "mlgw_ts(created_at), mlgw_ts(last_used_at), mlgw_ts(revoked_at) FROM api_keys "
    "ORDER BY created_at, id",
    0};

int db_api_key_list(PGresult **out, struct db_conn *conn, struct gw_err *err)
{
    return db_exec(out, conn, &list_stmt, NULL, err);
}

static const struct db_stmt revoke_stmt = {
    "api_key_revoke",
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "
    "WHERE id = $1 OR prefix = $1 RETURNING id",
    1};

int db_api_key_revoke(struct db_conn *conn, const char *id_or_prefix, struct gw_err *err)
{
    PGresult *res = NULL;
    const char *params[] = {id_or_prefix};
    int rc = db_exec(&res, conn, &revoke_stmt, params, err);
    if (rc == GW_OK && PQntuples(res) == 0)
        rc = gw_err_set(err, GW_ENOTFOUND, "no API key with id or prefix %s", id_or_prefix);
    PQclear(res);
    return rc;
}

static const struct db_stmt lookup_stmt = {
    "api_key_lookup",
    "SELECT id, scopes, revoked_at IS NOT NULL, "
    "coalesce(last_used_at < now() - interval '1 minute', true), team, "
    "coalesce(rate_per_s, 0)::text, coalesce(burst, 0)::text "
    "FROM api_keys WHERE key_hash = decode($1, 'hex')",
    1};

int db_api_key_lookup(struct db_api_key_auth *out, struct db_conn *conn,
                      const unsigned char hash[32], struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    char hex[65];
    gw_hex(hex, hash, 32);
    const char *params[] = {hex};
    PGresult *res = NULL;
    int rc = db_exec(&res, conn, &lookup_stmt, params, err);
    if (rc != GW_OK)
        return rc;
    if (PQntuples(res) == 0) {
        rc = gw_err_set(err, GW_ENOTFOUND, "unknown API key");
    } else {
        gw_fmt(out->id, sizeof(out->id), "%s", PQgetvalue(res, 0, 0));
        if (db_scopes_parse(&out->scopes, PQgetvalue(res, 0, 1)) != GW_OK)
            out->scopes = 0;
        out->revoked = PQgetvalue(res, 0, 2)[0] == 't';
        out->touch_due = PQgetvalue(res, 0, 3)[0] == 't';
        gw_fmt(out->team, sizeof(out->team), "%s", PQgetvalue(res, 0, 4));
        long long burst = 0;
        out->rate_per_s = strtod(PQgetvalue(res, 0, 5), NULL);
        if (gw_parse_ll(&burst, PQgetvalue(res, 0, 6), 0, 1000000000) == GW_OK)
            out->burst = (long)burst;
    }
    PQclear(res);
    return rc;
}

static const struct db_stmt touch_stmt = {
    "api_key_touch", "UPDATE api_keys SET last_used_at = now() WHERE id = $1", 1};

int db_api_key_touch(struct db_conn *conn, const char *id, struct gw_err *err)
{
    const char *params[] = {id};
    return db_exec(NULL, conn, &touch_stmt, params, err);
}
