/*
 * routes.c — the route table: every endpoint, its methods and body kind, in
 * one place. Order matters only where patterns overlap (first match wins).
 */
#include "routes/routes.h"

#include "common/err.h"
#include "db/api_keys.h"

#include "common/poison.h"

static const struct rt_route table[] = {
    {"/healthz", RT_GET, RT_BODY_NONE, rt_healthz, 0},
    {"/readyz", RT_GET, RT_BODY_NONE, rt_readyz, 0},
    {"/metrics", RT_GET, RT_BODY_NONE, rt_metrics, DB_SCOPE_JOBS_READ},
    {"/jobs", RT_POST, RT_BODY_JSON, rt_jobs_create, DB_SCOPE_JOBS_WRITE},
    {"/jobs", RT_GET, RT_BODY_NONE, rt_jobs_list, DB_SCOPE_JOBS_READ},
    {"/jobs/{id}", RT_GET, RT_BODY_NONE, rt_jobs_get, DB_SCOPE_JOBS_READ},
    {"/jobs/{id}/cancel", RT_POST, RT_BODY_NONE, rt_jobs_cancel, DB_SCOPE_JOBS_WRITE},
    {"/jobs/{id}/retry", RT_POST, RT_BODY_NONE, rt_jobs_retry, DB_SCOPE_ADMIN},
    {"/jobs/{id}/logs", RT_GET, RT_BODY_NONE, rt_jobs_logs, DB_SCOPE_JOBS_READ},
    {"/cache", RT_GET, RT_BODY_NONE, rt_cache_get, DB_SCOPE_JOBS_READ},
    {"/cache/warm", RT_POST, RT_BODY_JSON, rt_cache_warm, DB_SCOPE_JOBS_WRITE},
    {"/cache/cleanup", RT_POST, RT_BODY_JSON, rt_cache_cleanup, DB_SCOPE_ADMIN},
    {"/pipelines", RT_POST, RT_BODY_JSON, rt_pipelines_create, DB_SCOPE_JOBS_WRITE},
    {"/pipelines", RT_GET, RT_BODY_NONE, rt_pipelines_list, DB_SCOPE_JOBS_READ},
    {"/pipelines/{name}", RT_GET, RT_BODY_NONE, rt_pipelines_get, DB_SCOPE_JOBS_READ},
    {"/pipelines/{name}", RT_PUT, RT_BODY_JSON, rt_pipelines_update, DB_SCOPE_JOBS_WRITE},
    {"/pipelines/{name}", RT_DELETE, RT_BODY_NONE, rt_pipelines_delete, DB_SCOPE_ADMIN},
    {"/pipelines/{name}/versions/{version}", RT_GET, RT_BODY_NONE, rt_pipelines_version,
     DB_SCOPE_JOBS_READ},
    {"/pipelines/{name}/runs", RT_POST, RT_BODY_JSON, rt_pipeline_runs_create, DB_SCOPE_JOBS_WRITE},
    {"/pipelines/{name}/runs", RT_GET, RT_BODY_NONE, rt_pipeline_runs_list, DB_SCOPE_JOBS_READ},
    {"/pipelines/{name}/runs/{id}", RT_GET, RT_BODY_NONE, rt_pipeline_runs_get, DB_SCOPE_JOBS_READ},
    {"/pipelines/{name}/runs/{id}/cancel", RT_POST, RT_BODY_NONE, rt_pipeline_runs_cancel,
     DB_SCOPE_JOBS_WRITE},
    /* Callbacks authenticate with their own schemes (routes/events.c). */
    {"/events/batch", RT_POST, RT_BODY_JSON, rt_events_batch, 0},
    {"/events/sns", RT_POST, RT_BODY_TEXT, rt_events_sns, 0},
};

const struct rt_route *rt_table(size_t *n)
{
    *n = GW_ARRAY_LEN(table);
    return table;
}
