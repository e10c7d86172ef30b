/*
 * writer.c — group commit (writer.h).
 *
 * The queue is a singly linked list under one mutex. A writer thread takes up
 * to max_batch writes from its head, splits them into statements (sent in
 * one pipeline, committed at its sync) and functions (one BEGIN ... COMMIT),
 * and answers each write once its transaction is over. A failed write is
 * taken out of the batch and the rest run again: PostgreSQL has rolled the
 * whole transaction back, so nothing of the failed write, nor of its
 * neighbours' first run, is left behind.
 */
#include "db/writer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"

#include "common/poison.h"

enum { WRITE_TRIES = 3 };

struct db_writer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct db_write *head, *tail;
    int stopping;
    int busy; /* batches being run, by writer threads or inline */
    struct db_pool *pool;
    int max_batch;
    int nthreads; /* started */
    pthread_t *threads;
};

/* A failure worth running again: serialization, deadlock and, for a write
 * that asks, a unique violation (two creators of one row raced). */
static int retryable(const char *sqlstate, const struct db_write *w)
{
    return strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||
           (w != NULL && w->retry_unique && strcmp(sqlstate, "23505") == 0);
}

static void answer(struct db_write *w, int rc, const struct gw_err *err)
{
    w->rc = rc;
    if (rc != GW_OK && err != NULL && err != &w->err)
        w->err = *err;
    w->done(w); /* w may be gone after this */
}

static void answer_all(struct db_write *list, int rc, const struct gw_err *err)
{
    while (list != NULL) {
        struct db_write *next = list->next;
        answer(list, rc, err);
        list = next;
    }
}

/* Takes *at out of its list, returning it. */
static struct db_write *unlink_at(struct db_write **at)
{
    struct db_write *w = *at;
    *at = w->next;
    w->next = NULL;
    return w;
}

/* A failed write leaves the batch: answered with its error, or, when worth
 * another try, put back at the end of the list. */
static void drop_failed(struct db_write **list, struct db_write **at, int rc,
                        const struct gw_err *err, const char *sqlstate)
{
    struct db_write *w = unlink_at(at);
    if (retryable(sqlstate, w) && ++w->tries < WRITE_TRIES) {
        struct db_write **end = list;
        while (*end != NULL)
            end = &(*end)->next;
        *end = w;
        return;
    }
    answer(w, rc, err);
}

/* A connection for list's batch, or NULL with every write of list answered
 * with the reason (PostgreSQL unreachable, no connection free in time). */
static struct db_conn *checkout_or_answer(struct db_writer *wr, struct db_write *list)
{
    struct gw_err err = {0};
    struct db_conn *c = NULL;
    int rc = db_pool_checkout(&c, wr->pool, &err);
    if (rc != GW_OK) {
        answer_all(list, rc, &err);
        return NULL;
    }
    return c;
}

static int by_lock_key(const void *a, const void *b)
{
    const char *ka = (*(struct db_write *const *)a)->lock_key;
    const char *kb = (*(struct db_write *const *)b)->lock_key;
    if (ka == NULL || kb == NULL)
        return (ka != NULL) - (kb != NULL);
    return strcmp(ka, kb);
}

/* list in lock_key order (tmp: room for every write): two batches that lock
 * the same rows take them in the same order, so neither waits on the other
 * in a cycle (a deadlock PostgreSQL would break only after deadlock_timeout). */
static struct db_write *sort_by_lock_key(struct db_write *list, struct db_write **tmp)
{
    int n = 0, keyed = 0;
    for (struct db_write *w = list; w != NULL; w = w->next) {
        keyed |= w->lock_key != NULL;
        tmp[n] = w;
        n++;
    }
    if (!keyed || n < 2)
        return list;
    qsort(tmp, (size_t)n, sizeof(struct db_write *), by_lock_key);
    for (int i = 0; i < n; i++)
        tmp[i]->next = i + 1 < n ? tmp[i + 1] : NULL;
    return tmp[0];
}

/* What one pipeline of n statements needs. */
struct pipeline {
    PGresult **results;
    const struct db_stmt **stmts;
    const char *const **params;
    struct db_write **sorted;
};

static void pipeline_free(struct pipeline *p)
{
    free(p->results);
    free(p->stmts);
    free(p->params);
    free(p->sorted);
}

static int pipeline_alloc(struct pipeline *p, int n)
{
    size_t m = (size_t)n;
    p->results = calloc(m, sizeof(PGresult *));
    p->stmts = calloc(m, sizeof(const struct db_stmt *));
    p->params = calloc(m, sizeof(const char *const *));
    p->sorted = calloc(m, sizeof(struct db_write *));
    if (p->results != NULL && p->stmts != NULL && p->params != NULL && p->sorted != NULL)
        return GW_OK;
    pipeline_free(p);
    return GW_ENOMEM;
}

/* The statements of list (n of them), pipelined, until each has committed
 * or failed. */
static void run_statements(struct db_writer *wr, struct db_write *list, int n)
{
    struct pipeline p;
    if (pipeline_alloc(&p, n) != GW_OK) {
        struct gw_err err = {0};
        gw_err_set(&err, GW_ENOMEM, "out of memory");
        answer_all(list, GW_ENOMEM, &err);
        return;
    }
    int batch_tries = 0;
    while (list != NULL) {
        list = sort_by_lock_key(list, p.sorted);
        n = 0;
        for (struct db_write *w = list; w != NULL; w = w->next, n++) {
            p.stmts[n] = w->stmt;
            p.params[n] = w->params;
        }
        struct db_conn *c = checkout_or_answer(wr, list);
        if (c == NULL)
            break;
        struct gw_err err = {0};
        int failed = -1;
        int rc = db_exec_pipeline(p.results, &failed, c, n, p.stmts, p.params, &err);
        char sqlstate[6];
        memcpy(sqlstate, db_conn_sqlstate(c), sizeof(sqlstate));
        int conn_ok = db_conn_ok(c);
        db_pool_checkin(wr->pool, c);
        if (rc == GW_OK) {
            /* Committed: each write reads its row and is answered. */
            struct db_write *w = list;
            for (int i = 0; i < n; i++) {
                struct db_write *next = w->next;
                struct gw_err rerr = {0};
                int r = w->row != NULL ? w->row(w->arg, p.results[i], &rerr) : GW_OK;
                PQclear(p.results[i]);
                answer(w, r, &rerr);
                w = next;
            }
            break;
        }
        /* With the connection lost, whether the batch committed is unknown:
         * running its writes again could store them twice. */
        if (failed >= 0 && conn_ok) {
            struct db_write **at = &list;
            for (int i = 0; i < failed && *at != NULL; i++)
                at = &(*at)->next;
            if (*at != NULL) {
                drop_failed(&list, at, rc, &err, sqlstate);
                continue;
            }
        }
        if (conn_ok && retryable(sqlstate, NULL) && ++batch_tries < WRITE_TRIES)
            continue;
        answer_all(list, rc, &err);
        break;
    }
    pipeline_free(&p);
}

/* One transaction of every function in list; GW_OK when it committed, else
 * the failure and, in *bad, the write that failed (NULL: the transaction). */
static int functions_once(struct db_write **bad, int *conn_ok, char sqlstate[6], struct db_conn *c,
                          struct db_write *list, struct gw_err *err)
{
    *bad = NULL;
    int rc = db_exec_simple(c, "BEGIN", err);
    for (struct db_write *w = list; rc == GW_OK && w != NULL; w = w->next) {
        memset(&w->err, 0, sizeof(w->err));
        rc = w->fn(c, w->arg, &w->err);
        if (rc != GW_OK)
            *bad = w;
    }
    if (rc == GW_OK)
        rc = db_exec_simple(c, "COMMIT", err);
    /* A function that failed without a failed statement names no SQLSTATE. */
    if (rc != GW_OK && *bad != NULL && !db_conn_tx_failed(c))
        sqlstate[0] = '\0';
    else
        memcpy(sqlstate, db_conn_sqlstate(c), 6);
    *conn_ok = db_conn_ok(c);
    if (rc != GW_OK && *conn_ok)
        (void)db_exec_simple(c, "ROLLBACK", NULL);
    return rc;
}

/* The functions of list, in one transaction, until each has committed or
 * failed. */
static void run_functions(struct db_writer *wr, struct db_write *list)
{
    int batch_tries = 0;
    while (list != NULL) {
        struct db_conn *c = checkout_or_answer(wr, list);
        if (c == NULL)
            return;
        struct gw_err err = {0};
        struct db_write *bad = NULL;
        int conn_ok = 0;
        char sqlstate[6] = "";
        int rc = functions_once(&bad, &conn_ok, sqlstate, c, list, &err);
        db_pool_checkin(wr->pool, c);
        if (rc == GW_OK) {
            answer_all(list, GW_OK, NULL);
            return;
        }
        if (bad != NULL && conn_ok) {
            struct db_write **at = &list;
            while (*at != NULL && *at != bad)
                at = &(*at)->next;
            if (*at != NULL) {
                drop_failed(&list, at, rc, &bad->err, sqlstate);
                continue;
            }
        }
        if (bad != NULL)
            err = bad->err;
        if (conn_ok && retryable(sqlstate, NULL) && ++batch_tries < WRITE_TRIES)
            continue;
        answer_all(list, rc, &err);
        return;
    }
}

static void *writer_main(void *arg)
{
    struct db_writer *wr = arg;
    for (;;) {
        pthread_mutex_lock(&wr->mu);
        while (wr->head == NULL && !wr->stopping)
            pthread_cond_wait(&wr->cv, &wr->mu);
        if (wr->stopping) {
            pthread_mutex_unlock(&wr->mu);
            break;
        }
        struct db_write *st = NULL, *fn = NULL, **st_end = &st, **fn_end = &fn;
        int n = 0, nst = 0;
        for (; n < wr->max_batch && wr->head != NULL; n++) {
            struct db_write *w = unlink_at(&wr->head);
            nst += w->stmt != NULL;
            struct db_write ***end = w->stmt != NULL ? &st_end : &fn_end;
            **end = w;
            *end = &w->next;
        }
        if (wr->head == NULL)
            wr->tail = NULL;
        wr->busy++;
        pthread_mutex_unlock(&wr->mu);
        gw_metrics_add("mlgw_group_commit_batches_total", "", 1);
        gw_metrics_add("mlgw_group_commit_writes_total", "", n);
        if (st != NULL)
            run_statements(wr, st, nst);
        if (fn != NULL)
            run_functions(wr, fn);
        pthread_mutex_lock(&wr->mu);
        wr->busy--;
        pthread_mutex_unlock(&wr->mu);
    }
    return NULL;
}

static void done_inline(struct db_write *w)
{
    (void)w;
}

int db_writer_run_if_idle(struct db_writer *wr, struct db_write *w)
{
    pthread_mutex_lock(&wr->mu);
    int idle = wr->head == NULL && wr->busy == 0 && !wr->stopping;
    if (idle)
        wr->busy++;
    pthread_mutex_unlock(&wr->mu);
    if (!idle)
        return 0;
    w->next = NULL;
    w->tries = 0;
    w->done = done_inline;
    gw_metrics_add("mlgw_group_commit_batches_total", "", 1);
    gw_metrics_add("mlgw_group_commit_writes_total", "", 1);
    if (w->stmt != NULL)
        run_statements(wr, w, 1);
    else
        run_functions(wr, w);
    pthread_mutex_lock(&wr->mu);
    wr->busy--;
    if (wr->head != NULL) /* what queued meanwhile is the threads' */
        pthread_cond_signal(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
    return 1;
}

int db_writer_new(struct db_writer **out, const struct db_writer_opts *opts, struct gw_err *err)
{
    *out = NULL;
    struct db_writer *wr = calloc(1, sizeof(*wr));
    int n = opts->writers > 0 ? opts->writers : 1;
    if (wr != NULL)
        wr->threads = calloc((size_t)n, sizeof(pthread_t));
    if (wr == NULL || wr->threads == NULL) {
        free(wr);
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    }
    wr->pool = opts->pool;
    wr->max_batch = opts->max_batch > 0 ? opts->max_batch : 1;
    pthread_mutex_init(&wr->mu, NULL);
    pthread_cond_init(&wr->cv, NULL);
    gw_metrics_describe("mlgw_group_commit_batches_total", "counter",
                        "transactions committed by the group-commit writers (one per batch)");
    gw_metrics_describe("mlgw_group_commit_writes_total", "counter",
                        "requests' writes handed to the group-commit writers");
    for (int i = 0; i < n; i++) {
        if (pthread_create(&wr->threads[i], NULL, writer_main, wr) != 0) {
            db_writer_stop(wr);
            db_writer_free(wr);
            return gw_err_set(err, GW_ENOMEM, "cannot start a database writer thread");
        }
        wr->nthreads++;
    }
    *out = wr;
    return GW_OK;
}

void db_writer_submit(struct db_writer *wr, struct db_write *w)
{
    w->next = NULL;
    w->tries = 0;
    pthread_mutex_lock(&wr->mu);
    if (wr->stopping) {
        pthread_mutex_unlock(&wr->mu);
        struct gw_err err = {0};
        gw_err_public(&err, GW_EUNAVAIL, "the gateway is shutting down");
        answer(w, GW_EUNAVAIL, &err);
        return;
    }
    if (wr->tail != NULL)
        wr->tail->next = w;
    else
        wr->head = w;
    wr->tail = w;
    pthread_cond_signal(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
}

int db_write_now(struct db_pool *pool, struct db_write *w)
{
    memset(&w->err, 0, sizeof(w->err));
    if (w->stmt == NULL) {
        w->rc = db_tx(pool, w->fn, w->arg, &w->err);
        return w->rc;
    }
    for (w->tries = 0; w->tries < WRITE_TRIES; w->tries++) {
        struct db_conn *c = NULL;
        PGresult *res = NULL;
        w->rc = db_pool_checkout(&c, pool, &w->err);
        if (w->rc == GW_OK)
            w->rc = db_exec(&res, c, w->stmt, w->params, &w->err);
        int again = w->rc != GW_OK && c != NULL && retryable(db_conn_sqlstate(c), w);
        db_pool_checkin(pool, c);
        if (w->rc == GW_OK && w->row != NULL)
            w->rc = w->row(w->arg, res, &w->err);
        PQclear(res);
        if (!again)
            break;
    }
    return w->rc;
}

void db_writer_stop(struct db_writer *wr)
{
    if (wr == NULL)
        return;
    pthread_mutex_lock(&wr->mu);
    wr->stopping = 1;
    pthread_cond_broadcast(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
    for (int i = 0; i < wr->nthreads; i++)
        pthread_join(wr->threads[i], NULL);
    pthread_mutex_lock(&wr->mu);
    struct db_write *left = wr->head;
    wr->head = wr->tail = NULL;
    pthread_mutex_unlock(&wr->mu);
    if (left != NULL)
        GW_LOG_WARN("stopping with writes still queued: they are answered 503");
    struct gw_err err = {0};
    gw_err_public(&err, GW_EUNAVAIL, "the gateway is shutting down");
    answer_all(left, GW_EUNAVAIL, &err);
}

void db_writer_free(struct db_writer *wr)
{
    if (wr == NULL)
        return;
    pthread_mutex_destroy(&wr->mu);
    pthread_cond_destroy(&wr->cv);
    free(wr->threads);
    free(wr);
}
