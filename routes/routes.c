/*
 * routes.c — the route table: every endpoint, its methods and body kind, in
 * one place. Order matters only where patterns overlap (first match wins).
 */
#include "routes.h"

#include "../db/api_keys.h"

#include "../server/poison.h"

static const struct srv_route table[] = {
    {"/healthz", SRV_GET, SRV_BODY_NONE, rt_healthz, 0},
    {"/readyz", SRV_GET, SRV_BODY_NONE, rt_readyz, 0},
    {"/metrics", SRV_GET, SRV_BODY_NONE, rt_metrics, DB_SCOPE_JOBS_READ},
    {"/jobs", SRV_POST, SRV_BODY_JSON, rt_jobs_create, DB_SCOPE_JOBS_WRITE},
    {"/jobs", SRV_GET, SRV_BODY_NONE, rt_jobs_list, DB_SCOPE_JOBS_READ},
    {"/jobs/{id}", SRV_GET, SRV_BODY_NONE, rt_jobs_get, DB_SCOPE_JOBS_READ},
    {"/jobs/{id}/cancel", SRV_POST, SRV_BODY_NONE, rt_jobs_cancel, DB_SCOPE_JOBS_WRITE},
    {"/jobs/{id}/retry", SRV_POST, SRV_BODY_NONE, rt_jobs_retry, DB_SCOPE_ADMIN},
    {"/jobs/{id}/logs", SRV_GET, SRV_BODY_NONE, rt_jobs_logs, DB_SCOPE_JOBS_READ},
    /* Callbacks authenticate with their own schemes (routes/events.c). */
    {"/events/batch", SRV_POST, SRV_BODY_JSON, rt_events_batch, 0},
    {"/events/sns", SRV_POST, SRV_BODY_TEXT, rt_events_sns, 0},
};

const struct srv_route *rt_table(size_t *n)
{
    *n = GW_ARRAY_LEN(table);
    return table;
}
