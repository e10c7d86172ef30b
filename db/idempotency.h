/*
 * idempotency.h — the Idempotency-Key rule (API.md, "Idempotency") for every
 * creating POST (jobs, cache operations, pipelines, runs), inside the caller's
 * transaction: the key is
 * locked for the transaction (a second request with it meanwhile is a
 * conflict), an earlier answer for the same request is replayed, and a new
 * answer is saved. The rows are idempotency_keys (migrations/0002_jobs.sql),
 * purged by db_idempotency_purge (db/jobs.h).
 *
 * Safe from any thread, on a connection the caller holds in a transaction.
 */
#ifndef MLGW_DB_IDEMPOTENCY_H
#define MLGW_DB_IDEMPOTENCY_H

#include "db/jobs.h"
#include "db/pool.h"

/* 1 when *out holds the first answer to this key and request (replayed),
 * 0 when the key is new, else GW_ECONFLICT (in use by a request still in
 * progress), GW_EINVAL (used for another request), GW_EDB, GW_EUNAVAIL. */
int db_idem_replay(struct db_job_created *out, struct db_conn *c, const struct db_idempotency *idem,
                   struct gw_err *err);

/* Saves the answer (status, body, location) for the key. */
int db_idem_save(struct db_conn *c, const struct db_idempotency *idem, unsigned status,
                 const char *body, const char *location, struct gw_err *err);

#endif
