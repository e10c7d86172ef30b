/*
 * outbox.h — the dispatch outbox aggregate: claiming due actions under a
 * lease, recording their outcome together with the job's new status and
 * history, backing off, giving up, and the figures /metrics shows.
 *
 * Safe from any thread; several dispatchers, in one gateway or many, claim
 * disjoint rows (FOR UPDATE SKIP LOCKED). Claimed items are new: the caller
 * disposes of them.
 */
#ifndef MLGW_DB_OUTBOX_H
#define MLGW_DB_OUTBOX_H

#include <jansson.h>

#include <stdint.h>

#include "db/pool.h"

struct db_outbox_item {
    char job_id[37];
    char action[8]; /* "submit" or "cancel" */
    char target[8]; /* "batch", "sns" or "local" */
    char lease_owner[37];
    int attempts;     /* including this one */
    int was_in_doubt; /* an earlier attempt may have reached AWS */
    json_t *job;      /* the job row as JSON (new: db_outbox_item_dispose) */
};

void db_outbox_item_dispose(struct db_outbox_item *it);

/* Leases the oldest due action for one of targets (a PostgreSQL array text,
 * e.g. "{batch,sns}") for lease_s seconds, recording holder (the claiming
 * gateway's presence key, jobs/presence.h; 0: none). An action is due when
 * its lease expired or its holder's presence lock is gone (that gateway
 * died). GW_ENOTFOUND when none is due. */
int db_outbox_claim(struct db_outbox_item *out, struct db_pool *pool, const char *targets,
                    int lease_s, int64_t holder, struct gw_err *err);

/* A submit went through: the job moves to status (SUBMITTED or DISPATCHED)
 * with the Batch id or SNS message id, history gets a dispatcher row, and the
 * action is done. When the job was cancelled meanwhile, the id is still
 * recorded and a cancel action is queued (*cancelled = 1). GW_ECONFLICT when
 * the lease was lost (another dispatcher took over). */
int db_outbox_submitted(int *cancelled, struct db_pool *pool, const struct db_outbox_item *it,
                        const char *status, const char *batch_job_id, const char *message_id,
                        struct gw_err *err);

/* The action failed for now: try again after delay_ms; error and the attempt
 * count show on the job; in_doubt keeps the look-up-first flag. */
int db_outbox_retry_later(struct db_pool *pool, const struct db_outbox_item *it, const char *error,
                          int in_doubt, long delay_ms, struct gw_err *err);

/* The submit cannot succeed: the job becomes DISPATCH_FAILED with reason. */
int db_outbox_failed(struct db_pool *pool, const struct db_outbox_item *it, const char *reason,
                     struct gw_err *err);

/* Removes the claimed row inside the caller's transaction; GW_ECONFLICT
 * (and *owned = 0) when the lease was lost to another dispatcher. */
int db_outbox_release_on(int *owned, struct db_conn *c, const struct db_outbox_item *it,
                         struct gw_err *err);

/* A cancel action was carried out (or is moot): remove it. */
int db_outbox_done(struct db_pool *pool, const struct db_outbox_item *it, struct gw_err *err);

/* Rows waiting and the age of the oldest, in seconds (0 when empty). */
int db_outbox_stats(long *depth, double *oldest_s, struct db_pool *pool, struct gw_err *err);

/* DISPATCH_FAILED → QUEUED with a fresh submit action (admin retry). *out is
 * the job with history (new). GW_ENOTFOUND; GW_ECONFLICT when not failed. */
int db_job_requeue(char **out, struct db_pool *pool, const char *id, struct gw_err *err);

#endif
