/*
 * run_notify.h — the one message per pipeline run end: an email with a table
 * of the steps, a signed webhook POST of the run's JSON, and a summary
 * published to the configured SNS topic. The rows are written by the engine
 * when a run ends (mlgw_pipeline_maybe_end, migrations/0009_pipelines.sql);
 * this module claims and sends them with the retry rules of the job
 * notifications (jobs/notifier.c), from the notifier's workers.
 *
 * Safe from any thread; several workers claim disjoint rows.
 */
#ifndef MLGW_JOBS_RUN_NOTIFY_H
#define MLGW_JOBS_RUN_NOTIFY_H

#include <jansson.h>

#include "aws/transport.h"
#include "jobs/app.h"

/* Sends what is due, at most max rows; returns how many were handled. aws
 * may be NULL (no SNS). */
int jobs_run_notify_due(struct jobs_app *app, struct aws_client *aws, int max);

/* The plain-text summary of an ended run (new: free): status, times and
 * one line per step with its status and its jobs' outcome. Public for
 * tests. */
char *jobs_run_summary(const json_t *run);

#endif
