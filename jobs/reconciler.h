/*
 * reconciler.h — the worker that asks AWS Batch about jobs nobody has heard
 * of for a while (cfg->reconcile_after_s without an event, not in a final
 * state) every cfg->reconcile_interval_s, and applies what Batch says as a
 * job event from source "reconciler". It covers lost EventBridge/SNS
 * callbacks; it neither submits nor cancels anything.
 *
 * Start and stop are called by one thread (the dispatcher's start and stop);
 * the worker borrows app and aws, which must outlive jobs_reconciler_stop.
 */
#ifndef MLGW_RECONCILER_H
#define MLGW_RECONCILER_H

#include "aws/transport.h"
#include "jobs/app.h"

struct jobs_reconciler;

/* Starts the worker; *out is new (stop it). With aws NULL the worker starts
 * but asks nothing. GW_ENOMEM, or gw_worker_start's code. */
int jobs_reconciler_start(struct jobs_reconciler **out, struct jobs_app *app,
                          struct aws_client *aws, struct gw_err *err);
/* Stops the worker and frees r; NULL is a no-op. */
void jobs_reconciler_stop(struct jobs_reconciler *r);

#endif
