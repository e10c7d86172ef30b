/*
 * routes.h — the gateway's route table and the handlers of each endpoint
 * group. Handlers parse, validate, call db/ or aws/, and reply; they hold no
 * SQL and make no AWS calls of their own.
 *
 * Handlers run on libmicrohttpd's worker threads, several at once, each on
 * its own request; they share only the read-only jobs_app and the
 * thread-safe pool, clients and registries behind it.
 */
#ifndef MLGW_ROUTES_H
#define MLGW_ROUTES_H

#include <stddef.h>

#include "routes/http.h"

/* The whole table (borrowed, static). */
const struct rt_route *rt_table(size_t *n);

/* auth.c: the rt_authorize_fn of the gateway */
int rt_authorize(struct rt_request *req, unsigned scope, struct rt_reply *out);

struct db_job_guard;

/* jobs.c */
/* Validates body as a POST /jobs request and stores the job (the guard runs
 * in its transaction), answering 202 with the job, 400/422 naming the fields,
 * or the guard's error. what names the operation in Idempotency-Key hashes
 * ("POST /jobs"). body is only read. */
void rt_jobs_submit(struct rt_request *req, struct rt_reply *out, json_t *body, const char *what,
                    const struct db_job_guard *guard);
void rt_jobs_create(struct rt_request *req, struct rt_reply *out);
void rt_jobs_list(struct rt_request *req, struct rt_reply *out);
void rt_jobs_get(struct rt_request *req, struct rt_reply *out);
void rt_jobs_cancel(struct rt_request *req, struct rt_reply *out);
void rt_jobs_retry(struct rt_request *req, struct rt_reply *out);
/* What POST /jobs checks beyond the body, for other routes that create jobs:
 * a problem appended to errors when jr's dispatch target is not configured
 * here, one per resource when a local job cannot fit this machine's local
 * executor (e may be NULL: no local executor). */
struct gw_config;
struct rt_job_request;
struct jobs_executor;
void rt_job_check_dispatch(const struct gw_config *cfg, const struct rt_job_request *jr,
                           json_t *errors);
void rt_job_check_local_fits(const struct jobs_executor *e, const struct rt_job_request *jr,
                             json_t *errors);

/* pipelines.c */
void rt_pipelines_create(struct rt_request *req, struct rt_reply *out);
void rt_pipelines_list(struct rt_request *req, struct rt_reply *out);
void rt_pipelines_get(struct rt_request *req, struct rt_reply *out);
void rt_pipelines_update(struct rt_request *req, struct rt_reply *out);
void rt_pipelines_delete(struct rt_request *req, struct rt_reply *out);
void rt_pipelines_version(struct rt_request *req, struct rt_reply *out);
void rt_pipeline_runs_create(struct rt_request *req, struct rt_reply *out);
void rt_pipeline_runs_list(struct rt_request *req, struct rt_reply *out);
void rt_pipeline_runs_get(struct rt_request *req, struct rt_reply *out);
void rt_pipeline_runs_cancel(struct rt_request *req, struct rt_reply *out);

/* logs.c */
void rt_jobs_logs(struct rt_request *req, struct rt_reply *out);

/* events.c */
void rt_events_batch(struct rt_request *req, struct rt_reply *out);
void rt_events_sns(struct rt_request *req, struct rt_reply *out);

/* cache.c */
void rt_cache_get(struct rt_request *req, struct rt_reply *out);
void rt_cache_warm(struct rt_request *req, struct rt_reply *out);
void rt_cache_cleanup(struct rt_request *req, struct rt_reply *out);

/* health.c */
void rt_healthz(struct rt_request *req, struct rt_reply *out);
void rt_readyz(struct rt_request *req, struct rt_reply *out);
void rt_metrics(struct rt_request *req, struct rt_reply *out);

#endif
