/*
 * cache.h — the model cache aggregate (migrations/0010_cache.sql): the last
 * scan of a cache root and its entries, and the cache operations (warm and
 * cleanup jobs) with what a cleanup freed.
 *
 * Every function takes the shared pool (or a connection inside a caller's
 * transaction) and is safe from any thread.
 */
#ifndef MLGW_DB_CACHE_H
#define MLGW_DB_CACHE_H

#include "db/pool.h"

/* One top-level entry of a scan (strings borrowed). */
struct db_cache_entry {
    const char *name;
    long long bytes, files;
    long long last_used_ms; /* Unix ms of the newest use seen; 0: none */
};

struct db_cache_scan {
    const char *root;
    const char *started_at; /* the database's time when the walk began (db_cache_pending) */
    long long duration_ms, bytes, files;
    int complete;      /* 0: stopped at its file or time bound */
    const char *error; /* NULL, or why the root could not be read */
    const struct db_cache_entry *entries;
    size_t nentries;
};

/* Stores a scan as root's latest: totals, entries (an entry keeps its first
 * sighting and its newest use; after a complete scan, entries no longer
 * there are removed). GW_EUNAVAIL, GW_EDB, GW_ENOMEM. */
int db_cache_scan_save(struct db_pool *pool, const struct db_cache_scan *s, struct gw_err *err);

/* The body of GET /cache for root (new: free()): the last scan with its
 * entries (largest first), max_bytes (0: null), last_cleanup and the
 * latest ops_limit operations. */
int db_cache_status(char **out, struct db_pool *pool, const char *root, long long max_bytes,
                    int ops_limit, struct gw_err *err);

/* A cache operation to record with the job that carries it. */
struct db_cache_op {
    const char *operation;    /* "warm-cache" or "cleanup-cache" */
    const char *origin;       /* "api" or "policy" */
    const char *request_json; /* what was asked: {"models": [...]}… */
};

/* For a struct db_job_guard (arg: a struct db_cache_op): inside the job's
 * transaction, takes the cache operations' lock, refuses with GW_ECONFLICT
 * (naming the job) while a warm or cleanup job is not finished, else records
 * the operation for job_id. */
int db_cache_op_guard(struct db_conn *c, const char *job_id, void *arg, struct gw_err *err);

/* What the scanner should do next for root. now gets the database's time
 * (a scan begun now is stored with it, so that an operation ending during
 * the walk still asks for the next one); *rescan is set when a cache
 * operation finished after root's last scan began, or root was never
 * scanned. */
int db_cache_pending(int *rescan, char now[64], struct db_pool *pool, const char *root,
                     struct gw_err *err);

/* Finished cleanup operations whose summary.json has not been read: rows
 * (job_id, output_uri, status), oldest first, at most limit (new: PQclear). */
int db_cache_unread(PGresult **out, struct db_pool *pool, int limit, struct gw_err *err);

/* Records what a cleanup freed (freed < 0: unknown) and that its summary was
 * read (or given up on). */
int db_cache_op_freed(struct db_pool *pool, const char *job_id, long long freed,
                      struct gw_err *err);

#endif
