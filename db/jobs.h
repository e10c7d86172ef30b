/*
 * jobs.h — the jobs aggregate: creation (job + first history row in one
 * statement, or with an Idempotency-Key in one transaction), lookup, the
 * filtered list with its cursor, and cancellation before dispatch.
 *
 * The job resource's JSON is built by PostgreSQL (mlgw_job_json in
 * migrations/0002_jobs.sql), so reads hand text straight to the client.
 *
 * Every function takes the shared pool and is safe from any thread. JSON
 * text handed out is new: the caller free()s it.
 */
#ifndef MLGW_DB_JOBS_H
#define MLGW_DB_JOBS_H

#include "db/pool.h"
#include "db/writer.h"

/* Work done inside the transaction that stores a new job, after its
 * Idempotency-Key (if any) was found unused and before the job is inserted:
 * fn may refuse (its error is the creation's) or write rows of its own that
 * commit with the job. */
struct db_job_guard {
    int (*fn)(struct db_conn *c, const char *job_id, void *arg, struct gw_err *err);
    void *arg;
};

struct db_job_new {
    char id[37];
    const char *script_key;
    const char *compute_type;
    long long vcpus, memory, gpus;
    const char *args_json;     /* JSON array text */
    const char *env_json;      /* JSON object text */
    long long timeout_seconds; /* < 0: none */
    long long max_attempts;
    const char *operation; /* NULL: none */
    const char *metadata_json;
    const char *notify_json;
    const char *dispatch;
    const char *output_uri;
    const char *api_key_id;
    const char *team;                 /* the creating key's team */
    const struct db_job_guard *guard; /* NULL: none */
};

struct db_idempotency {
    const char *api_key_id;
    const char *key;
    unsigned char request_hash[32];
    long long ttl_hours;
};

struct db_job_created {
    char *json; /* new: free() */
    unsigned status;
    int replayed;
};
/* Frees out's JSON and empties it, for a write that starts again. */
void db_job_created_reset(struct db_job_created *out);

/*
 * Stores a new QUEUED job and its first history row. With idem, replays the
 * first answer for the same key and request. Errors: GW_ECONFLICT (the same
 * key is being used by a request still in progress), GW_EINVAL (the key was
 * used for a different request), GW_EUNAVAIL, GW_EDB.
 */
int db_job_create(struct db_job_created *out, struct db_pool *pool, const struct db_job_new *job,
                  const struct db_idempotency *idem, struct gw_err *err);

/* A job's creation as a group-commit write (writer.h): one statement when
 * there is neither Idempotency-Key nor guard, else a function. Once it is
 * done, w.rc and w.err are db_job_create's outcome and out its answer. jw
 * must stay where it is from init to dispose; the job's strings are borrowed
 * for as long. */
struct db_job_write {
    struct db_write w;
    struct db_job_created out; /* dispose frees out.json unless taken (set to NULL) */
    struct db_job_new job;
    struct db_idempotency idem;
    char nums[4][24], timeout[24];
    const char *params[17];
};
void db_job_write_init(struct db_job_write *jw, const struct db_job_new *job,
                       const struct db_idempotency *idem);
void db_job_write_dispose(struct db_job_write *jw);

/* The job with its history (new: free()). team: the caller's team, or NULL
 * for any (admin, callbacks, the executor). GW_ENOTFOUND for an unknown job
 * and for another team's: existence is not revealed. */
int db_job_get(char **out, struct db_pool *pool, const char *id, const char *team,
               struct gw_err *err);
/* db_job_get, also giving the job's own team (job_team[0] == '\0': none),
 * which the job cache keeps beside the document. */
int db_job_read(char **out, char job_team[65], struct db_pool *pool, const char *id,
                const char *team, struct gw_err *err);

struct db_job_filter {
    const char *status, *compute_type, *user, *project, *experiment;
    const char *created_after, *created_before; /* RFC 3339 */
    const char *before_id;                      /* cursor: only ids below this */
    const char *team;                           /* NULL: every team */
    int limit;
};

/* Newest first. *items is a JSON array text (new: free()); *next_id is the
 * last id returned when more rows follow, else empty. */
int db_job_list(char **items, char next_id[37], struct db_pool *pool, const struct db_job_filter *f,
                struct gw_err *err);

/* QUEUED (or any local job not yet ended) → CANCELLED, at once; the local
 * executor then stops its processes. A Batch job gets a cancel action for
 * the dispatcher. GW_ENOTFOUND; GW_ECONFLICT when the job has ended or was
 * handed to SNS and has no Batch id yet. *out is the job with history (new:
 * free()). */
int db_job_cancel(char **out, struct db_pool *pool, const char *id, const char *team,
                  const char *reason, struct gw_err *err);

/* Batch jobs in a non-terminal state that nobody has heard of for
 * after_s seconds: rows (id, batch_job_id), oldest first (new: PQclear). */
int db_jobs_stale_batch(PGresult **out, struct db_pool *pool, long long after_s, int limit,
                        struct gw_err *err);

/* Deletes idempotency keys older than ttl_hours; *deleted gets the count. */
int db_idempotency_purge(long *deleted, struct db_pool *pool, long long ttl_hours,
                         struct gw_err *err);

#endif
