/*
 * webhook.h — one signed webhook POST of a job's JSON, to where users may
 * send it.
 *
 * The notifier's transport for webhooks: it POSTs the body to one URL
 * (https; http only where the operator allows it; no redirects followed, no
 * proxy, a 3 s connect and 10 s total deadline) with an X-Signature header
 * when a secret is set, and says whether a retry can help. The URL comes
 * from a user, so the address each connection goes to is checked after DNS
 * resolution, just before connect (CURLOPT_OPENSOCKETFUNCTION): loopback,
 * private, link-local, CGNAT, unique-local, multicast, reserved and cloud
 * metadata addresses are refused unless the operator's allow-list holds them
 * (metadata addresses: always). A failure is also sorted into a class that
 * may be shown to the client; the transport's own text is for the log.
 * Queueing, retries and which job goes where belong to the caller. Like
 * every libcurl user here it needs curl_global_init() to have run (main
 * does it).
 *
 * Nothing here keeps state: every function is safe from any thread.
 */
#ifndef MLGW_JOBS_WEBHOOK_H
#define MLGW_JOBS_WEBHOOK_H

#include <curl/curl.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/err.h"

/* How to send; all strings borrowed for the call. */
struct jobs_webhook_opts {
    const char *secret;      /* NULL: no X-Signature header */
    int allow_http;          /* MLGW_WEBHOOK_ALLOW_HTTP: http:// URLs too */
    const char *allow_cidrs; /* MLGW_WEBHOOK_ALLOW_CIDRS, or NULL */
};

/* Room for a delivery class: "refused", "timeout", "tls", "dns",
 * "http_<status>" or "error". */
enum { JOBS_WEBHOOK_CLASS_LEN = 16 };

/* POSTs body (application/json) to url; strings borrowed for the call.
 * The X-Signature header is jobs_webhook_signature(o->secret, now, body).
 * cls (JOBS_WEBHOOK_CLASS_LEN bytes, caller-owned) gets the class of a
 * failure, "" on success.
 * Returns 0 on a 2xx answer;
 *   GW_EUNAVAIL  transient: no answer (network, timeout), or 5xx, 408, 429;
 *   GW_EUPSTREAM permanent: any other status;
 *   GW_EINVAL    permanent: the URL's scheme or every address it resolved
 *                to is not allowed (class "refused"), or libcurl refused an
 *                option; GW_ENOMEM.
 * err says what happened, for the log; it holds neither the secret nor the
 * body. */
int jobs_webhook_post(char *cls, const struct jobs_webhook_opts *o, const char *url,
                      const char *body, long long now, struct gw_err *err);

/* True when a webhook may connect to sa (AF_INET or AF_INET6; IPv4-mapped
 * IPv6 addresses are judged as IPv4): not in a refused range, or in one of
 * allow_cidrs (comma-separated CIDRs, NULL for none). The cloud metadata
 * addresses (169.254.169.254, 169.254.170.2, fd00:ec2::254,
 * 100.100.100.200) are refused whatever allow_cidrs says. Public for tests. */
int jobs_webhook_address_allowed(const struct sockaddr *sa, const char *allow_cidrs);

/* The client's class of a failed transfer (out: JOBS_WEBHOOK_CLASS_LEN
 * bytes): "refused" (no connection: refused, unreachable, an address or
 * scheme not allowed), "timeout", "tls", "dns", "http_<status>" when cc is
 * CURLE_OK, else "error". Public for tests. */
void jobs_webhook_class(char *out, CURLcode cc, long status);

/* "t=<now>,v1=<hex HMAC-SHA256(secret, "<now>.<body>")>" into out (≥ 96
 * bytes; caller-owned); v1 is empty when out of memory. Public for tests. */
void jobs_webhook_signature(char *out, size_t outlen, const char *secret, long long now,
                            const char *body, size_t len);

#endif
