/*
 * notifier.h — notifier threads: they send the rows of the notification
 * outbox (email over SMTP, webhooks signed with HMAC-SHA256, a summary on the
 * SNS notifications topic), retry with backoff, and record what failed for
 * good on the job. Sending never happens on a request's path.
 *
 * Start and stop are called by one thread (main); the workers share nothing
 * but the borrowed app and aws, which must outlive jobs_notifier_stop.
 */
#ifndef MLGW_NOTIFIER_H
#define MLGW_NOTIFIER_H

#include <jansson.h>

#include "aws/transport.h"
#include "jobs/app.h"

struct jobs_notifier;

/* Starts cfg->notify_workers workers and their LISTEN; *out is new (stop
 * it). aws may be NULL (SNS notifications then fail). GW_ENOMEM. */
int jobs_notifier_start(struct jobs_notifier **out, struct jobs_app *app, struct aws_client *aws,
                        struct gw_err *err);
/* Stops the workers and frees n; NULL is a no-op. */
void jobs_notifier_stop(struct jobs_notifier *n);

#endif
