/*
 * webhook.h — one signed webhook POST of a job's JSON.
 *
 * The notifier's transport for webhooks: it POSTs the body to one URL
 * (http or https, no redirects followed, a 3 s connect and 10 s total
 * deadline) with an X-Signature header when a secret is set, and says
 * whether a retry can help. Queueing, retries and which job goes where
 * belong to the caller. Like every libcurl user here it needs
 * curl_global_init() to have run (main does it).
 *
 * Nothing here keeps state: both functions are safe from any thread.
 */
#ifndef MLGW_JOBS_WEBHOOK_H
#define MLGW_JOBS_WEBHOOK_H

#include <stddef.h>

#include "common/err.h"

/* POSTs body (application/json) to url; all strings borrowed for the call.
 * secret NULL: no X-Signature header; else the header is
 * jobs_webhook_signature(secret, now, body).
 * Returns 0 on a 2xx answer;
 *   GW_EUNAVAIL  transient: no answer (network, timeout), or 5xx, 408, 429;
 *   GW_EUPSTREAM permanent: any other status;
 *   GW_ENOMEM, GW_EINVAL (libcurl refused an option).
 * err says what happened; it holds neither the secret nor the body. */
int jobs_webhook_post(const char *url, const char *body, const char *secret, long long now,
                      struct gw_err *err);

/* "t=<now>,v1=<hex HMAC-SHA256(secret, "<now>.<body>")>" into out (≥ 96
 * bytes; caller-owned); v1 is empty when out of memory. Public for tests. */
void jobs_webhook_signature(char *out, size_t outlen, const char *secret, long long now,
                            const char *body, size_t len);

#endif
