/*
 * report.h — the local executor's reports of job ends to the database.
 *
 * Every state change of a local job is a db_job_event with source "local"
 * and the gateway's notification policy (jobs_report_event). An attempt's
 * end, or a job's return to the queue, goes through db_local_finish; while
 * the database cannot take it, it waits here, in order, and is tried again,
 * so an attempt that ended during an outage is not lost. What a restart
 * cannot recover (the gateway stopped before the database came back) is
 * logged as lost; the next start treats those jobs as interrupted.
 * Decides nothing about what the end is (supervise.h does).
 *
 * Thread-safety: a struct jobs_reports belongs to the executor's thread
 * (and to jobs_executor_stop once that thread has ended).
 */
#ifndef MLGW_JOBS_REPORT_H
#define MLGW_JOBS_REPORT_H

#include <stdint.h>

#include "db/events.h"
#include "jobs/app.h"

struct jobs_pending;

struct jobs_reports {
    struct jobs_app *app;
    struct jobs_pending *head, **tail; /* not recorded yet, oldest first */
    int64_t last_flush_ns;
};

/* An empty queue reporting through app (kept, not owned). */
void jobs_reports_init(struct jobs_reports *r, struct jobs_app *app);

/* A local event for job_id: status and reason (borrowed: they must outlive
 * the event), everything else unknown, and app's notification policy. */
struct db_job_event jobs_report_event(const struct jobs_app *app, const char *job_id,
                                      const char *status, const char *reason);

/* Records ev, a job's end (requeue 0) or its return to the back of the
 * queue (requeue 1): now when nothing older waits and the database takes
 * it, else later (a copy is kept). GW_OK when recorded or kept; GW_ENOMEM
 * when it could not even be kept (logged: the job's end is lost until a
 * restart). */
int jobs_report_end(struct jobs_reports *r, const struct db_job_event *ev, int requeue);

/* Tries the waiting reports again, oldest first, stopping at the first the
 * database refuses; at most once a second unless now is set. GW_OK when
 * none waits any more, GW_EUNAVAIL when it is too soon to try again, else
 * the database's code. */
int jobs_reports_flush(struct jobs_reports *r, int now);

/* Counts an attempt's end in mlgw_local_attempts_total{result}: result is
 * "succeeded", "failed" or "not-started". */
void jobs_report_attempt(const char *result);

/* Describes mlgw_local_attempts_total to the metrics registry. */
void jobs_report_describe_metrics(void);

/* Whether reports are waiting. */
int jobs_reports_waiting(const struct jobs_reports *r);

/* Logs each report still waiting as lost and frees it. */
void jobs_reports_dispose(struct jobs_reports *r);

#endif
