/*
 * jobenv.h — the job's side of the contract of API.md: the environment a
 * job runs with and the name it carries at AWS Batch. The dispatcher (Batch)
 * and the local executor both build their jobs from it, so a script sees the
 * same variables wherever it runs.
 *
 * Pure functions on caller-owned values; safe from any thread.
 */
#ifndef MLGW_JOBENV_H
#define MLGW_JOBENV_H

#include <jansson.h>

#include "common/config.h"

/* jobName for AWS Batch: "<project>-<job id>" reduced to Batch's rules
 * (≤ 128 of [A-Za-z0-9_-], starting alphanumeric); "mlgw-<id>" without a
 * project. out: 129 bytes, caller-owned. */
void jobs_batch_job_name(char *out, const char *project, const char *job_id);

/* Where a new job's outputs go (API.md, output_uri): s3://<ML_OUTPUT_BUCKET>/jobs/<id>/,
 * else file://<MLGW_LOCAL_ROOT>/output/jobs/<id>/. Returns 0, or -1 when it
 * does not fit in outlen bytes. */
int jobs_output_uri(char *out, size_t outlen, const struct gw_config *cfg, const char *job_id);

/* The job's environment contract of API.md (new object: json_decref it):
 * ML_* buckets, OUTPUT_PREFIX, COMPUTE_TYPE, SCRIPT_KEY, JOB_ID, TRIGGER_*,
 * OPERATION, AWS_DEFAULT_REGION (when region is not NULL), ML_OUTPUT_DIR =
 * output_dir, then the job's own env where it does not clash. cfg and job
 * are only read. */
json_t *jobs_environment(const struct gw_config *cfg, const json_t *job, const char *region,
                         const char *output_dir);

#endif
