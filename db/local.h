/*
 * local.h — the local executor's rows: a job joins one executor's
 * first-in first-out queue (local_node, local_queued_at), runs, and leaves
 * it. Every status change goes
 * through mlgw_apply_job_event, as AWS's reports do, so history and
 * notifications behave the same for local jobs.
 *
 * Called from the executor thread; every function goes through the shared
 * pool and is safe from any thread. Rows handed out are new where a function
 * says so.
 */
#ifndef MLGW_DB_LOCAL_H
#define MLGW_DB_LOCAL_H

#include <jansson.h>

#include "db/events.h"
#include "db/outbox.h"
#include "db/pool.h"

/* A claimed local submit: the job, still QUEUED, joins node's queue and ev
 * (RUNNABLE, or FAILED when it can never run here) is applied; the outbox
 * row goes in the same transaction. *accepted = 0 when the job had left
 * QUEUED meanwhile (cancelled): only the row goes. GW_ECONFLICT when the
 * lease was lost. */
int db_local_accept(int *accepted, struct db_pool *pool, const struct db_outbox_item *it,
                    const char *node, const struct db_job_event *ev, struct gw_err *err);

/* The job at the head of node's queue as a JSON object (new), or NULL. */
int db_local_head(json_t **job, struct db_pool *pool, const char *node, struct gw_err *err);

/* The first attempt's process was started at started_ms: the job's
 * started_at (later attempts keep it). */
int db_local_started(struct db_pool *pool, const char *job_id, long long started_ms,
                     struct gw_err *err);

/* An attempt ended (or never started): ev is applied (a terminal status, or
 * RUNNABLE for the next attempt, which goes to the back of the queue), in
 * one transaction. */
int db_local_finish(struct db_job_event_result *out, struct db_pool *pool,
                    const struct db_job_event *ev, int requeue, struct gw_err *err);

/* Jobs node had running when its last gateway stopped: rows (id, attempts,
 * max_attempts) (new: PQclear). */
int db_local_orphans(PGresult **out, struct db_pool *pool, const char *node, struct gw_err *err);

/* Which of ids (a PostgreSQL array text of uuids) have ended meanwhile (a
 * user cancelled them): rows (id, status) (new: PQclear). */
int db_local_ended(PGresult **out, struct db_pool *pool, const char *ids, struct gw_err *err);

/* Local jobs waiting to run (QUEUED or RUNNABLE), on any executor. */
int db_local_waiting(long *n, struct db_pool *pool, struct gw_err *err);

/* Frees the leases on local submits, which a crashed gateway may hold: the
 * caller holds the executor lock of its root. */
int db_local_release_leases(struct db_pool *pool, struct gw_err *err);

#endif
