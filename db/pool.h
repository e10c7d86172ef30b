/*
 * pool.h — a fixed-size pool of libpq connections, prepared statements and a
 * transaction helper.
 *
 * Connections are opened lazily and replaced when found broken, so the
 * gateway starts and keeps serving while PostgreSQL is down and recovers by
 * itself when it returns. A checkout waits a bounded time; callers turn
 * GW_EUNAVAIL into 503 with Retry-After. The pool does not retry statements:
 * that is the caller's decision (only it knows whether a retry is safe).
 *
 * Ownership and threads: the pool is created once (db_pool_new) and shared
 * by every thread; checkout, checkin, db_exec through a checked-out
 * connection, and the transaction helpers are safe from any thread. A
 * checked-out db_conn belongs to the thread that took it until it is checked
 * in. A PGresult handed out is new: the caller PQclear()s it.
 */
#ifndef MLGW_DB_POOL_H
#define MLGW_DB_POOL_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/err.h"

struct db_pool;
struct db_conn;

struct db_pool_opts {
    const char *url; /* libpq URL or key=value string (borrowed for the call) */
    int size;
    int checkout_timeout_ms;
    int connect_timeout_s;
    int statement_timeout_ms; /* every statement's limit (SQLSTATE 57014: GW_EUNAVAIL); 0: none */
    const char *application_name;
};

struct db_pool_stats {
    int size;
    int open;    /* connected slots */
    int in_use;  /* checked out */
    int waiting; /* callers waiting for a slot */
    uint64_t checkout_timeouts;
    uint64_t connect_failures;
    uint64_t reconnects; /* broken connections replaced */
};

/* A statically defined statement: prepared once per connection on first use. */
struct db_stmt {
    const char *name;
    const char *sql;
    int nparams;
};

int db_pool_new(struct db_pool **out, const struct db_pool_opts *opts, struct gw_err *err);
void db_pool_free(struct db_pool *pool);

/* Takes a connected, healthy connection. GW_EUNAVAIL when none could be had
 * within the checkout timeout or PostgreSQL cannot be reached. */
int db_pool_checkout(struct db_conn **out, struct db_pool *pool, struct gw_err *err);
/* Gives the connection back; one that is broken or left inside a
 * transaction is closed and replaced later. NULL is a no-op. */
void db_pool_checkin(struct db_pool *pool, struct db_conn *conn);
void db_pool_stats(struct db_pool *pool, struct db_pool_stats *out);

/* Opens one connection outside any pool (migrations, LISTEN). */
int db_connect(PGconn **out, const char *url, int connect_timeout_s, const char *appname,
               struct gw_err *err);

/*
 * Runs a prepared statement with text parameters (NULL entries are SQL NULL).
 * On success *out is the result (new: PQclear it; may be NULL out to discard).
 * Errors: GW_EUNAVAIL (connection lost), GW_ECONFLICT (unique violation,
 * serialization failure, deadlock), GW_EDB (anything else). The SQLSTATE of
 * the last failure is available from db_conn_sqlstate().
 */
int db_exec(PGresult **out, struct db_conn *conn, const struct db_stmt *stmt,
            const char *const *params, struct gw_err *err);
/* db_exec on a connection checked out for that one statement (the usual case
 * outside transactions). */
int db_pool_exec(PGresult **out, struct db_pool *pool, const struct db_stmt *stmt,
                 const char *const *params, struct gw_err *err);

/* Runs sql unprepared (planned for these values: for queries whose shape
 * varies, like filtered lists). Parameters and errors as db_exec. */
int db_exec_params(PGresult **out, struct db_conn *conn, const char *sql, int nparams,
                   const char *const *params, struct gw_err *err);
/* Runs a parameterless command (BEGIN, COMMIT...). Same error mapping. */
int db_exec_simple(struct db_conn *conn, const char *sql, struct gw_err *err);
const char *db_conn_sqlstate(const struct db_conn *conn);

/*
 * Runs n prepared statements in one round trip as one transaction: libpq's
 * pipeline mode, whose implicit transaction commits at the pipeline's sync
 * (outside any BEGIN: c must be idle). On success (GW_OK) every statement
 * committed and results[i] is statement i's result (new: PQclear each).
 * When statement i fails, nothing is committed: *failed = i, err and
 * db_conn_sqlstate() say why, and the statements after it did not run. When
 * the failure belongs to no one statement (the commit itself, the connection
 * lost), *failed = -1: the outcome is unknown if the connection was lost.
 * On any failure results[] are all NULL.
 */
int db_exec_pipeline(PGresult **results, int *failed, struct db_conn *c, int n,
                     const struct db_stmt *const *stmts, const char *const *const *params,
                     struct gw_err *err);
/* Whether c's transaction is in the failed state (a statement failed in it,
 * so db_conn_sqlstate() is that statement's), and whether c is still
 * connected. */
int db_conn_tx_failed(const struct db_conn *c);
int db_conn_ok(const struct db_conn *c);

/* Maps a failed PGresult (or NULL result) on pg to a gateway code, recording
 * the SQLSTATE into sqlstate (6 bytes) and a message into err. */
int db_result_error(PGconn *pg, const PGresult *res, char sqlstate[6], struct gw_err *err);

/*
 * Runs fn inside BEGIN ... COMMIT on a pooled connection; rolls back when fn
 * fails. Serialization failures and deadlocks are retried up to 3 times.
 */
typedef int (*db_tx_fn)(struct db_conn *conn, void *arg, struct gw_err *err);
int db_tx(struct db_pool *pool, db_tx_fn fn, void *arg, struct gw_err *err);

#endif
