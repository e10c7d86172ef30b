/*
 * batch.h — the AWS Batch calls the gateway makes (REST-JSON protocol):
 * SubmitJob, DescribeJobs, ListJobs, CancelJob, TerminateJob.
 *
 * Each call blocks for the network (retries included) and may run on any
 * thread: threads share one aws_client (transport.h). The inputs are
 * borrowed for the call; what comes back (ids copied into the caller's
 * arrays, new json_t arrays) is the caller's.
 */
#ifndef MLGW_AWS_BATCH_H
#define MLGW_AWS_BATCH_H

#include <jansson.h>

#include "aws/transport.h"

struct aws_batch_submit {
    const char *job_name; /* ≤ 128 of [A-Za-z0-9_-], starting alphanumeric */
    const char *job_queue;
    const char *job_definition;
    long long vcpus, memory_mib, gpus; /* resourceRequirements; gpus 0: none */
    json_t *environment;               /* borrowed: {"NAME": "value"} or NULL */
    json_t *command;                   /* borrowed: ["arg", ...] or NULL */
    long long attempt_duration_s;      /* timeout; 0: none (Batch's floor is 60) */
    long long attempts;                /* retryStrategy; 0 or 1: none */
    /* With attempts > 1: retry spot reclaims (onStatusReason "Host EC2*"),
     * exit on everything else. */
    int retry_spot_only;
    json_t *tags;         /* borrowed: {"k": "v"} or NULL */
    int propagate_tags;   /* tags reach the ECS tasks */
    json_t *depends_on;   /* borrowed: ["job id", ...] or NULL */
    long long array_size; /* 0: not an array job; else 2..10000 */
};

/* SubmitJob; job_id/job_arn get Batch's answer. A timeout after sending is
 * reported as err->ambiguous (SubmitJob has no client token). */
int aws_batch_submit_job(char job_id[128], char job_arn[512], struct aws_client *c,
                         const struct aws_batch_submit *in, struct aws_error *err);

/* DescribeJobs for any number of ids, in groups of 100; *jobs is a new array
 * of Batch's job details (ids Batch does not know are simply absent). */
int aws_batch_describe_jobs(json_t **jobs, struct aws_client *c, const char *const *ids,
                            size_t nids, struct aws_error *err);

struct aws_batch_list {
    const char *job_queue;
    const char *job_status; /* NULL: any (only with a filter) */
    const char *job_name;   /* JOB_NAME filter (exact name, or a prefix ending in '*') */
    int max_pages;          /* 0: 10 */
};

/* ListJobs, following nextToken; *jobs is a new array of job summaries. */
int aws_batch_list_jobs(json_t **jobs, struct aws_client *c, const struct aws_batch_list *in,
                        struct aws_error *err);

int aws_batch_cancel_job(struct aws_client *c, const char *job_id, const char *reason,
                         struct aws_error *err);
int aws_batch_terminate_job(struct aws_client *c, const char *job_id, const char *reason,
                            struct aws_error *err);

#endif
