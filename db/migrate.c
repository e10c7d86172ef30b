/*
 * migrate.c — the migration runner. It owns the schema_migrations table and
 * nothing else; what the schema holds is the business of migrations/.
 */
#include "db/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"

#include "common/poison.h"

/* "mlgw" in ASCII: the advisory lock key of the migration runner. */
#define MIGRATE_LOCK_KEY "1835820919"
enum { MIGRATION_MAX_BYTES = 4 * 1024 * 1024 };

static const char create_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       " version integer PRIMARY KEY,"
                                       " name text NOT NULL,"
                                       " checksum text NOT NULL,"
                                       " applied_at timestamptz NOT NULL DEFAULT now())";

/* NNNN_name.sql with a lower-case name; returns the version or -1. */
static int parse_name(const char *name)
{
    size_t len = strlen(name);
    if (len < 10 || len >= 160 || strcmp(name + len - 4, ".sql") != 0)
        return -1;
    for (int i = 0; i < 4; i++)
        if (name[i] < '0' || name[i] > '9')
            return -1;
    if (name[4] != '_')
        return -1;
    for (size_t i = 5; i < len - 4; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return -1;
    }
    int v = (name[0] - '0') * 1000 + (name[1] - '0') * 100 + (name[2] - '0') * 10 + (name[3] - '0');
    return v > 0 ? v : -1;
}

static int read_file(char **out, size_t *outlen, const char *path, struct gw_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return gw_err_set(err, GW_EIO, "cannot read %s: %s", path, strerror(errno));
    struct gw_buf b;
    gw_buf_init(&b, MIGRATION_MAX_BYTES);
    char chunk[8192];
    size_t n;
    int rc = GW_OK;
    while (rc == GW_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = gw_buf_add(&b, chunk, n);
    if (rc == GW_OK && ferror(f))
        rc = GW_EIO;
    (void)fclose(f); /* read-only: nothing to lose on close */
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        return gw_err_set(err, rc == GW_ETOOBIG ? GW_EINVAL : rc, "cannot read %s: %s", path,
                          rc == GW_ETOOBIG ? "larger than 4 MiB" : "read error");
    }
    *outlen = b.len;
    *out = gw_buf_steal(&b);
    return GW_OK;
}

static void sha256_hex(char out[65], const char *data, size_t len)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        memset(md, 0, sizeof(md));
    gw_hex(out, md, 32);
}

static int cmp_version(const void *a, const void *b)
{
    const struct db_migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

void db_migrations_dispose(struct db_migration_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        free(set->items[i].sql);
    free(set->items);
    set->items = NULL;
    set->n = 0;
}

int db_migrations_load(struct db_migration_set *out, const char *dir, struct gw_err *err)
{
    out->items = NULL;
    out->n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return gw_err_set(err, GW_EIO, "cannot open migrations directory %s: %s", dir,
                          strerror(errno));
    int rc = GW_OK;
    size_t cap = 0;
    struct dirent *de;
    while (rc == GW_OK && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        if (len < 4 || strcmp(name + len - 4, ".sql") != 0)
            continue; /* README and friends */
        int version = parse_name(name);
        if (version < 0) {
            rc = gw_err_set(err, GW_EINVAL,
                            "migration file %s/%s is not named NNNN_lower_snake_name.sql", dir,
                            name);
            break;
        }
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct db_migration *p = realloc(out->items, ncap * sizeof(*p));
            if (p == NULL) {
                rc = gw_err_set(err, GW_ENOMEM, "out of memory");
                break;
            }
            out->items = p;
            cap = ncap;
        }
        struct db_migration *m = &out->items[out->n];
        memset(m, 0, sizeof(*m));
        m->version = version;
        memcpy(m->file, name, len + 1); /* len < 160: checked by parse_name */
        char path[4096];
        int pn = snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (pn < 0 || (size_t)pn >= sizeof(path)) {
            rc = gw_err_set(err, GW_EINVAL, "migration path too long");
            break;
        }
        size_t sqllen = 0;
        rc = read_file(&m->sql, &sqllen, path, err);
        if (rc != GW_OK)
            break;
        sha256_hex(m->checksum, m->sql, sqllen);
        out->n++;
    }
    closedir(d);
    if (rc == GW_OK && out->n > 1) {
        qsort(out->items, out->n, sizeof(*out->items), cmp_version);
        for (size_t i = 1; i < out->n; i++)
            if (out->items[i].version == out->items[i - 1].version) {
                rc = gw_err_set(err, GW_EINVAL, "migrations %s and %s share version %04d",
                                out->items[i - 1].file, out->items[i].file, out->items[i].version);
                break;
            }
    }
    if (rc != GW_OK)
        db_migrations_dispose(out);
    return rc;
}

static int simple(PGconn *pg, const char *sql, struct gw_err *err)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = GW_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char state[6];
        rc = db_result_error(pg, res, state, err);
    }
    PQclear(res);
    return rc;
}

/* Looks up version in the applied rows; returns its checksum or NULL. */
static const char *applied_checksum(const PGresult *res, int version)
{
    for (int i = 0; i < PQntuples(res); i++) {
        long long v;
        if (gw_parse_ll(&v, PQgetvalue(res, i, 0), 0, 9999) == GW_OK && v == version)
            return PQgetvalue(res, i, 1);
    }
    return NULL;
}

static int check_changed(const struct db_migration *m, const char *sum, struct gw_err *err)
{
    if (strcmp(sum, m->checksum) == 0)
        return GW_OK;
    return gw_err_set(err, GW_ECONFLICT,
                      "migration %s was changed after it was applied (database has sha256 %.12s…, "
                      "file has %.12s…); migrations are forward-only: restore the file and add a "
                      "new migration instead",
                      m->file, sum, m->checksum);
}

static int apply_one(PGconn *pg, const struct db_migration *m, struct gw_err *err)
{
    int rc = simple(pg, "BEGIN", err);
    if (rc != GW_OK)
        return rc;
    PGresult *res = PQexec(pg, m->sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        char state[6];
        struct gw_err inner = {0};
        rc = db_result_error(pg, res, state, &inner);
        gw_err_set(err, rc == GW_EUNAVAIL ? rc : GW_EDB, "migration %s failed: %s", m->file,
                   inner.msg);
        rc = rc == GW_EUNAVAIL ? rc : GW_EDB;
    }
    PQclear(res);
    if (rc == GW_OK) {
        char version[16];
        gw_fmt(version, sizeof(version), "%d", m->version);
        const char *params[] = {version, m->file, m->checksum};
        res = PQexecParams(pg,
                           "INSERT INTO schema_migrations (version, name, checksum) "
                           "VALUES ($1, $2, $3)",
                           3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            char state[6];
            rc = db_result_error(pg, res, state, err);
        }
        PQclear(res);
    }
    if (rc == GW_OK)
        rc = simple(pg, "COMMIT", err);
    else if (PQstatus(pg) == CONNECTION_OK)
        (void)simple(pg, "ROLLBACK", NULL);
    return rc;
}

int db_migrate(PGconn *pg, const struct db_migration_set *set, int *applied, struct gw_err *err)
{
    if (applied != NULL)
        *applied = 0;
    int rc = simple(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err);
    if (rc != GW_OK)
        return rc;
    PGresult *res = NULL;
    rc = simple(pg, create_table_sql, err);
    if (rc == GW_OK) {
        res = PQexec(pg, "SELECT version, checksum FROM schema_migrations ORDER BY version");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            char state[6];
            rc = db_result_error(pg, res, state, err);
        }
    }
    for (size_t i = 0; rc == GW_OK && i < set->n; i++) {
        const struct db_migration *m = &set->items[i];
        const char *sum = applied_checksum(res, m->version);
        if (sum != NULL) {
            rc = check_changed(m, sum, err);
            continue;
        }
        rc = apply_one(pg, m, err);
        if (rc == GW_OK) {
            GW_LOG_INFO("applied migration %s", m->file);
            if (applied != NULL)
                (*applied)++;
        }
    }
    PQclear(res);
    if (PQstatus(pg) == CONNECTION_OK)
        (void)simple(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", NULL);
    return rc;
}

static const struct db_stmt applied_stmt = {"migrations_applied",
                                            "SELECT version, checksum FROM schema_migrations", 0};

int db_migrations_pending(int *pending, struct db_conn *conn, const struct db_migration_set *set,
                          struct gw_err *err)
{
    *pending = (int)set->n;
    PGresult *res = NULL;
    int rc = db_exec(&res, conn, &applied_stmt, NULL, err);
    if (rc != GW_OK) {
        if (strcmp(db_conn_sqlstate(conn), "42P01") == 0) /* no table yet: nothing applied */
            return GW_OK;
        return rc;
    }
    int n = 0;
    for (size_t i = 0; rc == GW_OK && i < set->n; i++) {
        const char *sum = applied_checksum(res, set->items[i].version);
        if (sum == NULL)
            n++;
        else
            rc = check_changed(&set->items[i], sum, err);
    }
    PQclear(res);
    if (rc == GW_OK)
        *pending = n;
    return rc;
}
