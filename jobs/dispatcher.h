/*
 * dispatcher.h — the background side of the data path: dispatcher threads
 * that hand queued jobs to AWS Batch or SNS through the outbox (woken by
 * LISTEN/NOTIFY, polling as a fallback), carry out cancellations, and a
 * reconciler that asks Batch about jobs nobody has heard of for a while.
 */
#ifndef MLGW_DISPATCHER_H
#define MLGW_DISPATCHER_H

#include <jansson.h>

#include "aws/transport.h"
#include "jobs/app.h"

struct jobs_dispatcher;

/* Starts cfg->dispatch_workers dispatchers, the notification listener and
 * the reconciler. aws may be NULL when no AWS target is configured (batch
 * and sns jobs then wait). */
int jobs_dispatcher_start(struct jobs_dispatcher **out, struct jobs_app *app,
                          struct aws_client *aws, struct gw_err *err);
void jobs_dispatcher_stop(struct jobs_dispatcher *d);

/* jobName for AWS Batch: "<project>-<job id>" reduced to Batch's rules
 * (≤ 128 of [A-Za-z0-9_-], starting alphanumeric); "mlgw-<id>" without a
 * project. out: 129 bytes. */
void jobs_batch_job_name(char *out, const char *project, const char *job_id);

/* The job's environment contract of API.md (new object): ML_* buckets,
 * OUTPUT_PREFIX, COMPUTE_TYPE, SCRIPT_KEY, JOB_ID, TRIGGER_*, OPERATION,
 * AWS_DEFAULT_REGION (when region is not NULL), ML_OUTPUT_DIR = output_dir,
 * then the job's own env where it does not clash. Batch and the local
 * executor both use it. */
json_t *jobs_environment(const struct gw_config *cfg, const json_t *job, const char *region,
                         const char *output_dir);

#endif
