/*
 * api_keys.h — the api_keys aggregate: create, list, revoke, and the lookup
 * every authenticated request makes. Keys are never stored, only their
 * SHA-256; generating and hashing keys is the caller's business.
 *
 * Every function takes the shared pool and is safe from any thread. Strings
 * handed out are new (the caller frees them) where a function says so;
 * structs are filled in place.
 */
#ifndef MLGW_DB_API_KEYS_H
#define MLGW_DB_API_KEYS_H

#include "db/pool.h"

enum db_scope { DB_SCOPE_JOBS_READ = 1, DB_SCOPE_JOBS_WRITE = 2, DB_SCOPE_ADMIN = 4 };

/* Parses "jobs:read,admin" (or PostgreSQL's "{jobs:read,admin}") into bits;
 * GW_EINVAL on an unknown or empty scope. */
int db_scopes_parse(unsigned *out, const char *text);
/* "{jobs:read,admin}" for bits, into out. */
void db_scopes_array(char *out, size_t outlen, unsigned bits);

enum { DB_TEAM_MAX = 64 };

/* True when s is a team name: 1 to 64 of [A-Za-z0-9._-], starting alphanumeric. */
int db_team_valid(const char *s);

struct db_api_key_auth {
    char id[40];
    char team[DB_TEAM_MAX + 1];
    unsigned scopes;
    double rate_per_s; /* 0: the gateway's default */
    long burst;        /* 0: the gateway's default */
    int revoked;
    int touch_due; /* last_used_at is older than a minute: record the use */
};

struct db_api_key_new {
    const char *id, *name, *prefix;
    unsigned char hash[32];
    unsigned scopes;
    const char *team;  /* NULL: the key is its own team (its id) */
    double rate_per_s; /* 0: the gateway's default */
    long burst;        /* 0: the gateway's default */
};

int db_api_key_create(struct db_conn *conn, const struct db_api_key_new *key, struct gw_err *err);
/* Rows: id, name, prefix, scopes, team, rate, burst, created_at, last_used_at,
 * revoked_at (new: PQclear). */
int db_api_key_list(PGresult **out, struct db_conn *conn, struct gw_err *err);
/* Revokes by id or by the printed prefix. GW_ENOTFOUND when nothing matched. */
int db_api_key_revoke(struct db_conn *conn, const char *id_or_prefix, struct gw_err *err);
/* GW_ENOTFOUND for an unknown hash. */
int db_api_key_lookup(struct db_api_key_auth *out, struct db_conn *conn,
                      const unsigned char hash[32], struct gw_err *err);
int db_api_key_touch(struct db_conn *conn, const char *id, struct gw_err *err);

#endif
