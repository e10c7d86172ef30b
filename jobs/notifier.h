/*
 * notifier.h — notifier threads: they send the rows of the notification
 * outbox (email over SMTP, webhooks signed with HMAC-SHA256, a summary on the
 * SNS notifications topic), retry with backoff, and record what failed for
 * good on the job. Sending never happens on a request's path.
 */
#ifndef MLGW_NOTIFIER_H
#define MLGW_NOTIFIER_H

#include <jansson.h>

#include "aws/transport.h"
#include "jobs/app.h"

struct jobs_notifier;

int jobs_notifier_start(struct jobs_notifier **out, struct jobs_app *app, struct aws_client *aws,
                        struct gw_err *err);
void jobs_notifier_stop(struct jobs_notifier *n);

/* The plain-text summary of a finished job (new: free), for email and SNS. */
char *jobs_notify_summary(const json_t *job, const char *region);

/* "t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>" into out (≥ 96 bytes). */
void jobs_webhook_signature(char *out, size_t outlen, const char *secret, long long t,
                            const char *body, size_t len);

#endif
