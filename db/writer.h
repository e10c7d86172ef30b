/*
 * writer.h — group commit: the writes of many requests in one transaction.
 *
 * A request that writes (POST /jobs, a job-state callback) hands its work to
 * the writer as a db_write and is answered from the write's done callback,
 * which runs only after the transaction holding it has committed: a 202 still
 * means on disk. A few writer threads, each with its own connection, take
 * whatever is queued when they are free (at most max_batch writes) and commit
 * it together, so the disk's flush rate is shared by many requests. Nothing
 * waits for company: a lone write is taken at once; under load, writes queue
 * while a commit is in flight and go together in the next one.
 *
 * A write is either one prepared statement (stmt and params; the batch's
 * statements go to PostgreSQL in one pipelined round trip) or a function run
 * inside a transaction with the batch's other functions (several statements
 * with decisions between them, such as an Idempotency-Key's replay). One
 * write's failure never fails its neighbours: the batch is rolled back and
 * run again without it, and the failed write is answered with its own error.
 * Serialization failures and deadlocks are retried, a unique violation too
 * when the write asks for it. When the connection is lost, or the commit
 * fails, every write of the batch fails (GW_EUNAVAIL: nobody got an answer
 * saying their write is stored, and a retry with the same Idempotency-Key
 * gives exactly one result).
 *
 * Threads: db_writer_submit is safe from any thread; done runs on a writer
 * thread (or, after db_writer_stop, on the submitting thread) exactly once.
 */
#ifndef MLGW_DB_WRITER_H
#define MLGW_DB_WRITER_H

#include <libpq-fe.h>

#include "common/err.h"
#include "db/pool.h"

struct db_writer;
struct db_write;

/* Reads a statement's result into the write's arg (the result is borrowed). */
typedef int (*db_write_row_fn)(void *arg, const PGresult *res, struct gw_err *err);
typedef void (*db_write_done_fn)(struct db_write *w);

struct db_write {
    /* A statement ... */
    const struct db_stmt *stmt;
    const char *const *params; /* borrowed until done */
    db_write_row_fn row;       /* may be NULL */
    /* ... or, when stmt is NULL, a function run inside a transaction. It may
     * run more than once (its batch is run again when a neighbour fails), so
     * it resets whatever it leaves in arg before writing it. */
    db_tx_fn fn;
    void *arg;
    /* The rows the statement locks, as a key (NULL: none): a batch's
     * statements run in key order, so that two batches never deadlock. */
    const char *lock_key;
    int retry_unique;      /* a unique violation (23505) is retried once */
    db_write_done_fn done; /* once, when committed (rc GW_OK) or failed for good */
    void *done_arg;        /* for done */
    int rc;                /* the outcome, for done */
    struct gw_err err;
    /* the writer's own */
    struct db_write *next;
    int tries;
};

struct db_writer_opts {
    struct db_pool *pool; /* the writers' connections: one each (borrowed) */
    int writers;          /* threads, each committing one batch at a time */
    int max_batch;        /* writes in one transaction at most */
};

int db_writer_new(struct db_writer **out, const struct db_writer_opts *opts, struct gw_err *err);
/* Queues w (w->done set); it is answered later through w->done. */
void db_writer_submit(struct db_writer *wr, struct db_write *w);
/* When the writer is idle (nothing queued, no batch in flight), runs w in
 * the calling thread at once, as a batch of one, and returns 1 (w->rc is the
 * outcome; done is not called): an idle gateway's lone write costs no hand
 * over between threads. Otherwise returns 0 and w is untouched. */
int db_writer_run_if_idle(struct db_writer *wr, struct db_write *w);
/* Runs w without a writer, on a connection of pool, in the calling thread:
 * the same outcome as through a writer, one transaction per write (the
 * unbatched mode). Returns w->rc; done is not called. */
int db_write_now(struct db_pool *pool, struct db_write *w);
/* Finishes the batches in flight, fails what is still queued (GW_EUNAVAIL)
 * and joins the threads; later submits fail at once. NULL is a no-op. */
void db_writer_stop(struct db_writer *wr);
/* Frees a stopped writer; NULL is a no-op. */
void db_writer_free(struct db_writer *wr);

#endif
