/*
 * migrate.h — forward-only schema migrations.
 *
 * Files named NNNN_name.sql in one directory are applied in version order,
 * each in its own transaction, and recorded in schema_migrations with the
 * SHA-256 of the file. A recorded migration whose file has changed since is
 * refused. A PostgreSQL advisory lock serialises concurrent runners, so
 * gateways starting together apply each migration once.
 *
 * A migration set is loaded once (db_migrations_load; db_migrations_dispose
 * frees it) and then only read, from any thread. Applying takes its own connection and the advisory
 * lock, so concurrent callers, in one process or many, are safe.
 */
#ifndef MLGW_DB_MIGRATE_H
#define MLGW_DB_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "common/err.h"
#include "db/pool.h"

struct db_migration {
    int version;
    char file[160];    /* base name, e.g. 0001_jobs.sql */
    char checksum[65]; /* hex SHA-256 of the contents */
    char *sql;
};

struct db_migration_set {
    struct db_migration *items; /* sorted by version */
    size_t n;
};

/* Reads and checks the directory: names, duplicate versions, readable files.
 * Errors: GW_EIO (unreadable), GW_EINVAL (a bad name or duplicate version). */
int db_migrations_load(struct db_migration_set *out, const char *dir, struct gw_err *err);
void db_migrations_dispose(struct db_migration_set *set);

/*
 * Applies what is pending on pg. *applied (may be NULL) gets how many ran.
 * Errors: GW_EUNAVAIL (connection trouble: try again later), GW_ECONFLICT (an
 * applied migration's file changed), GW_EDB (a migration failed; nothing of it
 * is kept).
 */
int db_migrate(PGconn *pg, const struct db_migration_set *set, int *applied, struct gw_err *err);

/* Counts migrations of set not yet applied on a pooled connection (0 when
 * current). GW_ECONFLICT when an applied one has a different checksum. */
int db_migrations_pending(int *pending, struct db_conn *conn, const struct db_migration_set *set,
                          struct gw_err *err);

#endif
