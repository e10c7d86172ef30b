/*
 * routes.c — the route table: every endpoint, its methods and body kind, in
 * one place. Order matters only where patterns overlap (first match wins).
 */
#include "routes.h"

#include "../server/poison.h"

static const struct srv_route table[] = {
    {"/healthz", SRV_GET, SRV_BODY_NONE, rt_healthz},
    {"/readyz", SRV_GET, SRV_BODY_NONE, rt_readyz},
    {"/metrics", SRV_GET, SRV_BODY_NONE, rt_metrics},
};

const struct srv_route *rt_table(size_t *n)
{
    *n = GW_ARRAY_LEN(table);
    return table;
}
