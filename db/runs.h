/*
 * runs.h — the pipeline runs aggregate: a run with its planned steps and the
 * jobs of its first steps created in one transaction (optionally under an
 * Idempotency-Key), lookups, the filtered list, and the start of a cancel.
 * Later steps are started by the database itself when their parents end
 * (mlgw_pipeline_job_changed, migrations/0009_pipelines.sql).
 *
 * Every function takes the shared pool and is safe from any thread. JSON
 * text handed out is new: the caller free()s it.
 */
#ifndef MLGW_DB_RUNS_H
#define MLGW_DB_RUNS_H

#include "db/jobs.h"
#include "db/notifications.h"
#include "db/pool.h"

struct db_run_new {
    char id[37];
    const char *team, *pipeline;
    long long version;
    const char *metadata_json, *notify_json;
    const char *dispatch;     /* the run's override, or NULL */
    const char *notify_topic; /* SNS summary topic, or NULL */
    const char *output_base;  /* a job's output_uri is this + its id + "/" */
    const char *api_key_id;
    const char *steps_json; /* the plan (routes/pipeline_request.h) */
};

/* A run's creation as a group-commit write (writer.h), a function run in
 * the batch's transaction: stores the run QUEUED and starts its steps
 * without parents. With idem, replays the first answer for the same key and
 * request (out.replayed). Once it is done, w.rc is GW_OK, GW_ECONFLICT (key
 * in use by a request in progress), GW_EINVAL (key used for another
 * request), GW_EUNAVAIL or GW_EDB, with w.err, and out is the answer. rw
 * must stay where it is from init to dispose; the run's strings are
 * borrowed for as long. */
struct db_run_write {
    struct db_write w;
    struct db_job_created out; /* dispose frees out.json unless taken (set to NULL) */
    struct db_run_new run;
    struct db_idempotency idem; /* key NULL: none */
};
void db_run_write_init(struct db_run_write *rw, const struct db_run_new *run,
                       const struct db_idempotency *idem);
void db_run_write_dispose(struct db_run_write *rw);

/* The run with its steps, their jobs and its history. team NULL: any.
 * GW_ENOTFOUND. */
int db_run_get(char **out, struct db_pool *pool, const char *team, const char *pipeline,
               const char *id, struct gw_err *err);

struct db_run_filter {
    const char *team; /* NULL: every team */
    const char *pipeline;
    const char *status;    /* or NULL */
    const char *before_id; /* cursor */
    int limit;
};

/* Newest first; *items a JSON array text (new); *next_id as db_job_list. */
int db_run_list(char **items, char next_id[37], struct db_pool *pool, const struct db_run_filter *f,
                struct gw_err *err);

/* Marks the run cancelled: waiting steps CANCELLED, no step starts any more;
 * ends it at once when nothing is running. *jobs (new: PQclear) are the
 * ids of its jobs still active, which the caller cancels one by one (as
 * POST /jobs/{id}/cancel does); the run ends CANCELLED when the last ends.
 * GW_ENOTFOUND; GW_ECONFLICT when the run has ended. */
int db_run_cancel(PGresult **jobs, struct db_pool *pool, const char *team, const char *pipeline,
                  const char *id, struct gw_err *err);

/*
 * The run notification outbox (pipeline_run_notifications), as
 * db/notifications.h is the jobs' one: a claimed row's job_json holds the
 * run with its steps and history. GW_ENOTFOUND when nothing is due.
 */
int db_run_notification_claim(struct db_notification *out, struct db_pool *pool, int lease_s,
                              struct gw_err *err);
int db_run_notification_sent(struct db_pool *pool, const char *id, struct gw_err *err);
int db_run_notification_retry(struct db_pool *pool, const char *id, const char *error,
                              const char *error_class, long delay_ms, struct gw_err *err);
int db_run_notification_failed(struct db_pool *pool, const char *id, const char *error,
                               const char *error_class, struct gw_err *err);

#endif
