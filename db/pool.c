/*
 * pool.c — libpq connection pool.
 *
 * Slots are fixed at creation; a slot holds at most one PGconn, opened on
 * first checkout. The mutex guards slot state only: connecting and health
 * checks happen outside it so one slow connect never blocks other callers.
 * A connection is checked before it is handed out: if its idle socket has
 * become readable, PostgreSQL has said something (usually "terminating
 * connection" on a restart) and the connection is replaced.
 */
#include "db/pool.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

#include "common/poison.h"

enum { DB_MAX_PREPARED = 128 };

struct db_conn {
    PGconn *pg;
    int in_use;
    const struct db_stmt *prepared[DB_MAX_PREPARED];
    int nprepared;
    char sqlstate[6];
};

struct db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *url;
    char *appname;
    int connect_timeout_s;
    int checkout_timeout_ms;
    int statement_timeout_ms;
    int size;
    int waiting;
    uint64_t checkout_timeouts, connect_failures, reconnects;
    struct db_conn *slots;
};

/* PostgreSQL's notices and asynchronous errors (a NOTICE at CREATE ... IF NOT
 * EXISTS, a FATAL when the server shuts down) as JSON log lines at the level
 * PostgreSQL gave, never libpq's default print to stderr. */
static void log_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *text = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (sev == NULL)
        sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
    int level = GW_LOG_LEVEL_INFO;
    if (sev == NULL || strcmp(sev, "DEBUG") == 0 || strcmp(sev, "LOG") == 0)
        level = GW_LOG_LEVEL_DEBUG;
    else if (strcmp(sev, "WARNING") == 0)
        level = GW_LOG_LEVEL_WARN;
    else if (strcmp(sev, "ERROR") == 0 || strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)
        level = GW_LOG_LEVEL_ERROR;
    if (level < gw_log_min_level)
        return;
    struct gw_buf f;
    gw_buf_init(&f, 1024);
    int rc = gw_buf_adds(&f, "\"pg_severity\":\"");
    if (rc == GW_OK)
        rc = gw_buf_add_json_escaped(&f, sev != NULL ? sev : "?");
    if (rc == GW_OK)
        rc = gw_buf_adds(&f, "\",\"sqlstate\":\"");
    if (rc == GW_OK)
        rc = gw_buf_add_json_escaped(&f, state != NULL ? state : "");
    if (rc == GW_OK)
        rc = gw_buf_adds(&f, "\"");
    char msg[512];
    gw_fmt(msg, sizeof(msg), "PostgreSQL: %s", text != NULL ? text : PQresultErrorMessage(res));
    msg[strcspn(msg, "\n")] = '\0';
    gw_log_fields(level, msg, rc == GW_OK ? f.data : NULL);
    gw_buf_dispose(&f);
}

/* A connection whose statements run under statement_timeout_ms (0: none). */
static int connect_timed(PGconn **out, const char *url, int connect_timeout_s, const char *appname,
                         int statement_timeout_ms, struct gw_err *err)
{
    *out = NULL;
    char timeout[16], options[64];
    gw_fmt(timeout, sizeof(timeout), "%d", connect_timeout_s);
    gw_fmt(options, sizeof(options), "-c statement_timeout=%d", statement_timeout_ms);
    /* Later keywords override what the URL says (expand_dbname = 1). */
    const char *const keys[] = {"dbname", "connect_timeout", "application_name",
                                statement_timeout_ms > 0 ? "options" : NULL, NULL};
    const char *const vals[] = {url, timeout, appname ? appname : "ml-gateway", options, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (pg == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory connecting to PostgreSQL");
    if (PQstatus(pg) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password. */
        char msg[200];
        gw_fmt(msg, sizeof(msg), "%s", PQerrorMessage(pg));
        msg[strcspn(msg, "\n")] = '\0';
        PQfinish(pg);
        return gw_err_set(err, GW_EUNAVAIL, "cannot connect to PostgreSQL: %s", msg);
    }
    (void)PQsetNoticeReceiver(pg, log_notice, NULL);
    *out = pg;
    return GW_OK;
}

int db_connect(PGconn **out, const char *url, int connect_timeout_s, const char *appname,
               struct gw_err *err)
{
    return connect_timed(out, url, connect_timeout_s, appname, 0, err);
}

int db_pool_new(struct db_pool **out, const struct db_pool_opts *opts, struct gw_err *err)
{
    *out = NULL;
    if (opts->size < 1 || opts->url == NULL)
        return gw_err_set(err, GW_EINVAL, "pool needs a URL and at least one connection");
    struct db_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    p->slots = calloc((size_t)opts->size, sizeof(*p->slots));
    p->url = strdup(opts->url);
    p->appname = strdup(opts->application_name ? opts->application_name : "ml-gateway");
    if (p->slots == NULL || p->url == NULL || p->appname == NULL) {
        db_pool_free(p);
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    }
    p->size = opts->size;
    p->connect_timeout_s = opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 5;
    p->statement_timeout_ms = opts->statement_timeout_ms;
    p->checkout_timeout_ms = opts->checkout_timeout_ms > 0 ? opts->checkout_timeout_ms : 2000;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = p;
    return GW_OK;
}

void db_pool_free(struct db_pool *p)
{
    if (p == NULL)
        return;
    if (p->slots != NULL) {
        for (int i = 0; i < p->size; i++)
            if (p->slots[i].pg != NULL)
                PQfinish(p->slots[i].pg);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    free(p->slots);
    if (p->url != NULL) {
        memset(p->url, 0, strlen(p->url)); /* it may carry a password */
        free(p->url);
    }
    free(p->appname);
    free(p);
}

static void conn_close(struct db_conn *c)
{
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = NULL;
    c->nprepared = 0;
}

/* True when an idle connection is still usable. */
static int conn_healthy(struct db_conn *c)
{
    if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK)
        return 0;
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return 0;
    struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
    if (pfd.fd < 0)
        return 0;
    int n = poll(&pfd, 1, 0);
    if (n == 0)
        return 1; /* nothing pending: the normal case */
    if (n < 0)
        return 0;
    /* Readable while idle: PostgreSQL has sent something (a termination
     * notice on restart or pg_terminate_backend, or EOF). A pooled
     * connection never LISTENs, so any traffic means it cannot be trusted. */
    return 0;
}

int db_pool_checkout(struct db_conn **out, struct db_pool *p, struct gw_err *err)
{
    *out = NULL;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += p->checkout_timeout_ms / 1000;
    deadline.tv_nsec += (long)(p->checkout_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }

    pthread_mutex_lock(&p->mu);
    struct db_conn *c = NULL;
    for (;;) {
        /* Prefer a slot that is already connected. */
        for (int i = 0; i < p->size && c == NULL; i++)
            if (!p->slots[i].in_use && p->slots[i].pg != NULL)
                c = &p->slots[i];
        for (int i = 0; i < p->size && c == NULL; i++)
            if (!p->slots[i].in_use)
                c = &p->slots[i];
        if (c != NULL)
            break;
        p->waiting++;
        int rc = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
        p->waiting--;
        if (rc == ETIMEDOUT) {
            p->checkout_timeouts++;
            pthread_mutex_unlock(&p->mu);
            return gw_err_set(err, GW_EUNAVAIL, "no database connection free within %d ms",
                              p->checkout_timeout_ms);
        }
    }
    c->in_use = 1;
    pthread_mutex_unlock(&p->mu);

    if (c->pg != NULL && !conn_healthy(c)) {
        GW_LOG_WARN("replacing a broken database connection");
        conn_close(c);
        pthread_mutex_lock(&p->mu);
        p->reconnects++;
        pthread_mutex_unlock(&p->mu);
    }
    if (c->pg == NULL) {
        PGconn *pg = NULL;
        int rc = connect_timed(&pg, p->url, p->connect_timeout_s, p->appname,
                               p->statement_timeout_ms, err);
        if (rc != GW_OK) {
            pthread_mutex_lock(&p->mu);
            p->connect_failures++;
            c->in_use = 0;
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            return rc;
        }
        c->pg = pg;
        c->nprepared = 0;
    }
    c->sqlstate[0] = '\0';
    *out = c;
    return GW_OK;
}

void db_pool_checkin(struct db_pool *p, struct db_conn *c)
{
    if (c == NULL)
        return;
    if (c->pg != NULL &&
        (PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE)) {
        /* A connection left mid-transaction must never serve another request. */
        conn_close(c);
    }
    pthread_mutex_lock(&p->mu);
    c->in_use = 0;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void db_pool_stats(struct db_pool *p, struct db_pool_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&p->mu);
    out->size = p->size;
    for (int i = 0; i < p->size; i++) {
        out->open += p->slots[i].pg != NULL;
        out->in_use += p->slots[i].in_use;
    }
    out->waiting = p->waiting;
    out->checkout_timeouts = p->checkout_timeouts;
    out->connect_failures = p->connect_failures;
    out->reconnects = p->reconnects;
    pthread_mutex_unlock(&p->mu);
}

const char *db_conn_sqlstate(const struct db_conn *c)
{
    return c->sqlstate;
}

int db_result_error(PGconn *pg, const PGresult *res, char sqlstate[6], struct gw_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    gw_fmt(sqlstate, 6, "%s", state ? state : "");
    char msg[200];
    gw_fmt(msg, sizeof(msg), "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
    msg[strcspn(msg, "\n")] = '\0';
    if (state != NULL && strcmp(state, "57014") == 0)
        return gw_err_set(err, GW_EUNAVAIL, "statement timeout: %s", msg);
    if (PQstatus(pg) != CONNECTION_OK || (state != NULL && strncmp(state, "08", 2) == 0) ||
        (state != NULL && strncmp(state, "57P", 3) == 0))
        return gw_err_set(err, GW_EUNAVAIL, "database connection lost: %s", msg);
    if (state != NULL && (strcmp(state, "23505") == 0 || strcmp(state, "40001") == 0 ||
                          strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0))
        return gw_err_set(err, GW_ECONFLICT, "database conflict (%s): %s", state, msg);
    return gw_err_set(err, GW_EDB, "database error (%s): %s", state ? state : "none", msg);
}

static int check_result(PGresult *res, struct db_conn *c, struct gw_err *err)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return GW_OK;
    return db_result_error(c->pg, res, c->sqlstate, err);
}

static int is_prepared(const struct db_conn *c, const struct db_stmt *st)
{
    for (int i = 0; i < c->nprepared; i++)
        if (c->prepared[i] == st)
            return 1;
    return 0;
}

/* Prepares st on c unless it already is (once per connection). */
static int ensure_prepared(struct db_conn *c, const struct db_stmt *st, struct gw_err *err)
{
    if (is_prepared(c, st))
        return GW_OK;
    PGresult *pr = PQprepare(c->pg, st->name, st->sql, st->nparams, NULL);
    int rc = check_result(pr, c, err);
    PQclear(pr);
    if (rc == GW_OK && c->nprepared < DB_MAX_PREPARED)
        c->prepared[c->nprepared++] = st;
    return rc;
}

int db_exec(PGresult **out, struct db_conn *c, const struct db_stmt *st, const char *const *params,
            struct gw_err *err)
{
    if (out != NULL)
        *out = NULL;
    int rc = ensure_prepared(c, st, err);
    if (rc != GW_OK)
        return rc;
    PGresult *res = PQexecPrepared(c->pg, st->name, st->nparams, params, NULL, NULL, 0);
    rc = check_result(res, c, err);
    if (rc != GW_OK && strcmp(c->sqlstate, "57014") == 0)
        GW_LOG_WARN("statement %s ran past the statement timeout (its values are not logged)",
                    st->name);
    if (rc != GW_OK || out == NULL)
        PQclear(res);
    else
        *out = res;
    return rc;
}

int db_pool_exec(PGresult **out, struct db_pool *pool, const struct db_stmt *stmt,
                 const char *const *params, struct gw_err *err)
{
    if (out != NULL)
        *out = NULL;
    struct db_conn *c = NULL;
    int rc = db_pool_checkout(&c, pool, err);
    if (rc == GW_OK)
        rc = db_exec(out, c, stmt, params, err);
    db_pool_checkin(pool, c);
    return rc;
}

int db_exec_params(PGresult **out, struct db_conn *c, const char *sql, int nparams,
                   const char *const *params, struct gw_err *err)
{
    if (out != NULL)
        *out = NULL;
    PGresult *res = PQexecParams(c->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    int rc = check_result(res, c, err);
    if (rc != GW_OK && strcmp(c->sqlstate, "57014") == 0) {
        char shape[600];
        gw_fmt(shape, sizeof(shape), "%s", sql); /* parameters only: no value is in it */
        GW_LOG_WARN("a statement ran past the statement timeout: %s", shape);
    }
    if (rc != GW_OK || out == NULL)
        PQclear(res);
    else
        *out = res;
    return rc;
}

/* Sends what libpq holds for the pipeline without ever blocking on a full
 * socket: whatever the server answers meanwhile is read into libpq's buffer,
 * so a long pipeline cannot deadlock with a server blocked on its output. */
static int pipeline_flush(PGconn *pg)
{
    if (PQsetnonblocking(pg, 1) != 0)
        return -1;
    int rc = 0;
    for (;;) {
        int f = PQflush(pg);
        if (f <= 0) {
            rc = f;
            break;
        }
        struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN | POLLOUT};
        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR) {
            rc = -1;
            break;
        }
        if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) != 0 && PQconsumeInput(pg) == 0) {
            rc = -1;
            break;
        }
    }
    return PQsetnonblocking(pg, 0) != 0 ? -1 : rc;
}

/* Reads statement i's results: its own, then the NULL that ends them. */
static int pipeline_result(PGresult **out, int *failed, int i, struct db_conn *c,
                           struct gw_err *err)
{
    PGresult *r = PQgetResult(c->pg);
    if (r == NULL)
        return db_result_error(c->pg, NULL, c->sqlstate, err);
    ExecStatusType st = PQresultStatus(r);
    int rc = GW_OK;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *out = r;
    } else {
        if (st != PGRES_PIPELINE_ABORTED && *failed == -1) {
            *failed = i;
            rc = db_result_error(c->pg, r, c->sqlstate, err);
        }
        PQclear(r);
    }
    while ((r = PQgetResult(c->pg)) != NULL) /* nothing more is expected */
        PQclear(r);
    return rc;
}

/* The sync's answer: the commit's outcome. */
static int pipeline_sync(int *failed, struct db_conn *c, struct gw_err *err)
{
    int rc = GW_OK;
    PGresult *r;
    while ((r = PQgetResult(c->pg)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            return rc;
        }
        if (st == PGRES_FATAL_ERROR && rc == GW_OK) {
            *failed = -1;
            rc = db_result_error(c->pg, r, c->sqlstate, err);
        }
        PQclear(r);
    }
    *failed = -1;
    return rc != GW_OK ? rc : db_result_error(c->pg, NULL, c->sqlstate, err);
}

int db_exec_pipeline(PGresult **results, int *failed, struct db_conn *c, int n,
                     const struct db_stmt *const *stmts, const char *const *const *params,
                     struct gw_err *err)
{
    *failed = -1;
    for (int i = 0; i < n; i++)
        results[i] = NULL;
    c->sqlstate[0] = '\0';
    for (int i = 0; i < n; i++) {
        int rc = ensure_prepared(c, stmts[i], err);
        if (rc != GW_OK) {
            *failed = i;
            return rc;
        }
    }
    if (PQenterPipelineMode(c->pg) != 1)
        return db_result_error(c->pg, NULL, c->sqlstate, err);
    int sent = 1;
    for (int i = 0; i < n && sent; i++)
        sent =
            PQsendQueryPrepared(c->pg, stmts[i]->name, stmts[i]->nparams, params[i], NULL, NULL, 0);
    if (!sent || PQpipelineSync(c->pg) != 1 || pipeline_flush(c->pg) != 0) {
        int rc = db_result_error(c->pg, NULL, c->sqlstate, err);
        conn_close(c); /* mid-pipeline: never usable again */
        return rc == GW_OK ? gw_err_set(err, GW_EUNAVAIL, "database connection lost") : rc;
    }
    int rc = GW_OK;
    for (int i = 0; i < n; i++) {
        int one = pipeline_result(&results[i], failed, i, c, err);
        if (rc == GW_OK)
            rc = one;
        if (one != GW_OK && PQstatus(c->pg) != CONNECTION_OK)
            break;
    }
    if (PQstatus(c->pg) == CONNECTION_OK) {
        int s = pipeline_sync(failed, c, err);
        if (rc == GW_OK)
            rc = s;
    }
    if (PQstatus(c->pg) != CONNECTION_OK || PQexitPipelineMode(c->pg) != 1) {
        if (rc == GW_OK)
            rc = gw_err_set(err, GW_EUNAVAIL, "database connection lost at commit");
        *failed = -1;
        conn_close(c);
    }
    if (rc != GW_OK)
        for (int i = 0; i < n; i++) {
            PQclear(results[i]);
            results[i] = NULL;
        }
    return rc;
}

int db_conn_tx_failed(const struct db_conn *c)
{
    return c->pg != NULL && PQtransactionStatus(c->pg) == PQTRANS_INERROR;
}

int db_conn_ok(const struct db_conn *c)
{
    return c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK;
}

int db_exec_simple(struct db_conn *c, const char *sql, struct gw_err *err)
{
    PGresult *res = PQexec(c->pg, sql);
    int rc = check_result(res, c, err);
    PQclear(res);
    return rc;
}

int db_tx(struct db_pool *pool, db_tx_fn fn, void *arg, struct gw_err *err)
{
    int rc = GW_OK;
    for (int attempt = 0; attempt < 3; attempt++) {
        struct db_conn *c = NULL;
        rc = db_pool_checkout(&c, pool, err);
        if (rc != GW_OK)
            return rc;
        assert(c != NULL);
        rc = db_exec_simple(c, "BEGIN", err);
        if (rc == GW_OK)
            rc = fn(c, arg, err);
        if (rc == GW_OK)
            rc = db_exec_simple(c, "COMMIT", err);
        int retry = rc == GW_ECONFLICT &&
                    (strcmp(c->sqlstate, "40001") == 0 || strcmp(c->sqlstate, "40P01") == 0);
        if (rc != GW_OK && PQstatus(c->pg) == CONNECTION_OK &&
            PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            (void)db_exec_simple(c, "ROLLBACK", NULL);
        db_pool_checkin(pool, c);
        if (!retry)
            break;
    }
    return rc;
}
