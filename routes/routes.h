/*
 * routes.h — the gateway's route table and the handlers of each endpoint
 * group. Handlers parse, validate, call db/ or aws/, and reply; they hold no
 * SQL and make no AWS calls of their own.
 */
#ifndef MLGW_ROUTES_H
#define MLGW_ROUTES_H

#include <stddef.h>

#include "../server/http.h"

/* The whole table (borrowed, static). */
const struct srv_route *rt_table(size_t *n);

/* auth.c: the srv_authorize_fn of the gateway */
int rt_authorize(struct srv_request *req, unsigned scope, struct srv_reply *out);
void rt_auth_cache_clear(void);

/* jobs.c */
void rt_jobs_create(struct srv_request *req, struct srv_reply *out);
void rt_jobs_list(struct srv_request *req, struct srv_reply *out);
void rt_jobs_get(struct srv_request *req, struct srv_reply *out);
void rt_jobs_cancel(struct srv_request *req, struct srv_reply *out);
void rt_jobs_retry(struct srv_request *req, struct srv_reply *out);

/* logs.c */
void rt_jobs_logs(struct srv_request *req, struct srv_reply *out);

/* events.c */
void rt_events_batch(struct srv_request *req, struct srv_reply *out);
void rt_events_sns(struct srv_request *req, struct srv_reply *out);
/* Applies one Batch Job State Change event (from EventBridge or SNS) and
 * replies; 422 when it is not one. */
int rt_apply_batch_event(struct srv_request *req, struct srv_reply *out, json_t *event,
                         const char *source);

/* health.c */
void rt_healthz(struct srv_request *req, struct srv_reply *out);
void rt_readyz(struct srv_request *req, struct srv_reply *out);
void rt_metrics(struct srv_request *req, struct srv_reply *out);

#endif
