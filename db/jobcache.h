/*
 * jobcache.h — job JSON kept in memory so that GET /jobs/{id} of a job read
 * recently touches no database.
 *
 * The cache holds what db_job_read() returned (the whole job document, its
 * team and its ETag), bounded in bytes, least recently used out first. It is
 * kept exact by invalidation, never by updating copies:
 *  - every change to a job, its history or its notifications adds a row to
 *    job_changes stamped with its transaction id
 *    (migrations/0012_job_changes.sql); a thread of the cache polls, every
 *    DB_JOBCACHE_POLL_MS on a connection of its own, for the jobs whose
 *    changes committed between its previous snapshot and now, and drops
 *    their copies (exact: a long transaction committing late is still
 *    reported, because its id was in progress in the previous snapshot);
 *  - this gateway's own writes through HTTP drop the copy themselves after
 *    they commit (read-your-writes on one gateway, without waiting a poll);
 *  - a copy read from the database is stored only if no invalidation of its
 *    job (nor a flush) happened since the read began (db_jobcache_ticket), so
 *    a change reported while a slow read was under way cannot leave an old
 *    copy;
 *  - while the polling connection is down, or has not polled successfully
 *    for DB_JOBCACHE_LIVE_MS, the cache answers nothing and stores nothing;
 *    when it comes back the cache starts empty.
 * Rows of job_changes older than DB_JOBCACHE_CLEANUP_MS are deleted by the
 * pollers themselves.
 *
 * Every function is safe from any thread. A NULL cache is a valid, empty,
 * switched-off one for every function.
 */
#ifndef MLGW_DB_JOBCACHE_H
#define MLGW_DB_JOBCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "db/pool.h"

/* The ETag of a job document: a quoted hex SHA-256 prefix of its bytes. */
enum {
    DB_JOBCACHE_ETAG_LEN = 34,
    DB_JOBCACHE_POLL_MS = 10,
    DB_JOBCACHE_LIVE_MS = 15000,
    DB_JOBCACHE_CLEANUP_MS = 60000,
};

struct db_jobcache;

struct db_jobcache_stats {
    size_t bytes, max_bytes, entries;
    uint64_t hits, misses, stores, invalidations, evictions, flushes;
    int live; /* serving: the polling connection is up and has polled recently */
};

/* A cache of at most max_bytes (entries, their documents and bookkeeping);
 * it serves nothing until db_jobcache_start's thread has polled once (or, in
 * tests, db_jobcache_set_live). */
int db_jobcache_new(struct db_jobcache **out, size_t max_bytes);
/* Starts the polling thread on a connection of its own to url (borrowed for
 * the cache's life). */
int db_jobcache_start(struct db_jobcache *c, const char *url, int connect_timeout_s);
/* Stops the thread and frees everything; NULL is a no-op. */
void db_jobcache_free(struct db_jobcache *c);

/* The job's document if cached, live and visible to team (NULL: every
 * team): 1 with *json new (free it), *len and etag set; 0 otherwise. */
int db_jobcache_get(struct db_jobcache *c, const char *id, const char *team, char **json,
                    size_t *len, char etag[DB_JOBCACHE_ETAG_LEN + 1]);
/* Taken before reading the job from the database, handed to put. */
uint64_t db_jobcache_ticket(struct db_jobcache *c, const char *id);
/* Stores a copy of json (job_team: the job's team, NULL for none) unless the
 * job was invalidated since ticket, the cache is not live, or the document
 * is too large for it (over an eighth of the bound). */
void db_jobcache_put(struct db_jobcache *c, uint64_t ticket, const char *id, const char *job_team,
                     const char *json, size_t len, const char *etag);
/* Drops the job's copy (after a write to it commits). */
void db_jobcache_forget(struct db_jobcache *c, const char *id);
/* Drops every copy. */
void db_jobcache_flush(struct db_jobcache *c);
/* For tests without a polling thread: live (1) until set to 0. */
void db_jobcache_set_live(struct db_jobcache *c, int live);
void db_jobcache_stats(struct db_jobcache *c, struct db_jobcache_stats *out);

/* The janitor's share of keeping job_changes small, whether or not any
 * gateway runs a cache: deletes the rows of transactions that had ended when
 * *snapshot (the previous call's, "" at the first) was taken, then puts the
 * current snapshot there (len bytes). Called every few minutes, so a serving
 * cache (which polls every DB_JOBCACHE_POLL_MS) has read every row deleted. */
int db_job_changes_trim(long *deleted, struct db_pool *pool, char *snapshot, size_t len,
                        struct gw_err *err);

/* The ETag of a document: "\"" + 32 hex digits + "\"". */
void db_jobcache_etag(char out[DB_JOBCACHE_ETAG_LEN + 1], const char *json, size_t len);

#endif
