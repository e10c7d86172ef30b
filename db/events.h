/*
 * events.h — applying reported job states (EventBridge and SNS callbacks, the
 * reconciler, the local executor) through one database function,
 * mlgw_apply_job_event: dedup, matching, forward-only transitions, history
 * and notification rows, in one round trip.
 *
 * Safe from any thread (through the shared pool or a connection the caller
 * holds). An event's strings are borrowed for the call; the result is filled
 * in place. db_pg_array_from_csv returns new memory.
 */
#ifndef MLGW_DB_EVENTS_H
#define MLGW_DB_EVENTS_H

#include "db/pool.h"
#include "db/writer.h"

struct db_job_event {
    const char *event_id;     /* NULL: no dedup (reconciler, local) */
    const char *source;       /* eventbridge | sns | reconciler | local */
    const char *batch_job_id; /* NULL for local jobs */
    const char *gateway_id;   /* the gateway's job id, if known (tags, name), or NULL */
    const char *new_id;       /* id for a job never seen before (UUIDv7) */
    const char *status;
    const char *reason;
    int exit_code; /* < 0: unknown */
    int attempts;  /* < 0: unknown */
    const char *log_stream;
    long long started_ms, stopped_ms; /* 0: unknown */
    /* What a job created from the event is made of. */
    const char *job_name, *queue, *script_key, *output_uri;
    long long vcpus, memory, gpus; /* < 0: unknown */
    /* Notification policy, as PostgreSQL array texts ("{SUCCEEDED,FAILED}"). */
    const char *notify_statuses, *global_emails, *topic;
};

struct db_job_event_result {
    char result[16]; /* applied | ignored | duplicate | created */
    char job_id[37]; /* "" when a duplicate matched no job */
    char status[33];
};

int db_job_event_apply(struct db_job_event_result *out, struct db_pool *pool,
                       const struct db_job_event *ev, struct gw_err *err);

/* The same on a connection the caller holds (inside its transaction). */
int db_job_event_apply_on(struct db_job_event_result *out, struct db_conn *c,
                          const struct db_job_event *ev, struct gw_err *err);

/* An event's application as a group-commit write (writer.h): once done,
 * w.rc and w.err are db_job_event_apply's outcome and out its result. ev's
 * strings are borrowed until then; ew must stay where it is. */
struct db_job_event_write {
    struct db_write w;
    struct db_job_event_result out;
    char exit_code[16], attempts[16], started[24], stopped[24], vcpus[24], memory[24], gpus[24];
    const char *params[22];
};
void db_job_event_write_init(struct db_job_event_write *ew, const struct db_job_event *ev);

/* "a, b,c" → "{a,b,c}" (quoted elements); NULL stays NULL (new: free). */
char *db_pg_array_from_csv(const char *csv);

#endif
