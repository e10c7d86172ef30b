/*
 * dispatcher.h — the background side of the data path: dispatcher threads
 * that hand queued jobs to AWS Batch or SNS through the outbox (woken by
 * LISTEN/NOTIFY, polling as a fallback) and carry out cancellations; they
 * start and stop the reconciler (jobs/reconciler.h) with them.
 *
 * Start and stop are called by one thread (main); the threads borrow app
 * and aws, which must outlive jobs_dispatcher_stop.
 */
#ifndef MLGW_DISPATCHER_H
#define MLGW_DISPATCHER_H

#include "aws/transport.h"
#include "jobs/app.h"

struct jobs_dispatcher;

/* Starts cfg->dispatch_workers dispatchers, the outbox listener and the
 * reconciler (none of them when dispatch_workers is 0); *out is new (stop
 * it). aws may be NULL when no AWS target is configured (batch and sns jobs
 * then fail as not configured). GW_ENOMEM. */
int jobs_dispatcher_start(struct jobs_dispatcher **out, struct jobs_app *app,
                          struct aws_client *aws, struct gw_err *err);
/* Stops them all and frees d; NULL is a no-op. */
void jobs_dispatcher_stop(struct jobs_dispatcher *d);

#endif
