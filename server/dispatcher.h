/*
 * dispatcher.h — the background side of the data path: dispatcher threads
 * that hand queued jobs to AWS Batch or SNS through the outbox (woken by
 * LISTEN/NOTIFY, polling as a fallback), carry out cancellations, and a
 * reconciler that asks Batch about jobs nobody has heard of for a while.
 */
#ifndef MLGW_DISPATCHER_H
#define MLGW_DISPATCHER_H

#include "../aws/transport.h"
#include "app.h"

struct srv_dispatcher;

/* Starts cfg->dispatch_workers dispatchers, the notification listener and
 * the reconciler. aws may be NULL when no AWS target is configured (batch
 * and sns jobs then wait). */
int srv_dispatcher_start(struct srv_dispatcher **out, struct srv_app *app, struct aws_client *aws,
                         struct gw_err *err);
void srv_dispatcher_stop(struct srv_dispatcher *d);

/* jobName for AWS Batch: "<project>-<job id>" reduced to Batch's rules
 * (≤ 128 of [A-Za-z0-9_-], starting alphanumeric); "mlgw-<id>" without a
 * project. out: 129 bytes. */
void srv_batch_job_name(char *out, const char *project, const char *job_id);

#endif
