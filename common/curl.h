/*
 * curl.h — the one way the gateway sets up a libcurl easy handle.
 *
 * Every outbound request (AWS, instance metadata, SNS certificates and
 * subscription URLs, webhooks, SMTP) starts from gw_curl_prepare, so each
 * handle gets the same safe ground: CURLOPT_NOSIGNAL (threads, no SIGALRM),
 * an explicit protocol allow-list (redirects included), no redirects
 * followed, connect and total timeouts, a response body bounded by the
 * caller's gw_buf, and an error buffer. Every setopt result is checked.
 * TLS verification is libcurl's default (on) and nothing here turns it off.
 *
 * A CURL handle is used by one thread at a time (libcurl's rule); these
 * functions keep no state of their own and are safe from any thread.
 */
#ifndef MLGW_COMMON_CURL_H
#define MLGW_COMMON_CURL_H

#include <curl/curl.h>
#include <stddef.h>

#include "common/err.h"

struct gw_buf;

struct gw_curl_opts {
    const char *url;         /* borrowed; copied by libcurl */
    const char *protocols;   /* allow-list, e.g. "https" or "http,https" (required) */
    long connect_timeout_ms; /* 0: timeout_ms */
    long timeout_ms;         /* whole transfer; > 0 */
    struct gw_buf *sink;     /* response body, bounded by its max; NULL: discarded */
    char *errbuf;            /* CURL_ERROR_SIZE bytes for libcurl's message, or NULL */
    const char *user_agent;  /* NULL: "ml-gateway/<version>" */
};

/* Sets the common options of curl.h on h (a new or curl_easy_reset handle).
 * GW_EINVAL (naming the option) when libcurl refuses one. A sink with a max
 * also sets CURLOPT_MAXFILESIZE_LARGE, which libcurl checks against an
 * announced Content-Length even with CURLOPT_NOBODY: a HEAD request that
 * wants the size of something larger sets it back to 0. A body over the
 * limit ends the transfer with CURLE_FILESIZE_EXCEEDED (announced) or
 * CURLE_WRITE_ERROR (found while receiving). */
int gw_curl_prepare(CURL *h, const struct gw_curl_opts *o, struct gw_err *err);

/* curl_easy_init + gw_curl_prepare. *out is new (curl_easy_cleanup it) on
 * success and NULL on failure: GW_ENOMEM or gw_curl_prepare's code. */
int gw_curl_new(CURL **out, const struct gw_curl_opts *o, struct gw_err *err);

/* Checks one curl_easy_setopt result: GW_OK, or GW_EINVAL naming the option.
 * Use through GW_CURL_SET so the option's name is the message. */
int gw_curl_checked(CURLcode rc, const char *option, struct gw_err *err);
#define GW_CURL_SET(h, opt, val, err)                                                              \
    gw_curl_checked(curl_easy_setopt((h), (opt), (val)), #opt, (err))

/* Appends a header line to *list (libcurl copies it). On failure the whole
 * list is wiped (a line may hold a secret) and freed, *list is NULL and
 * GW_ENOMEM is returned, so a chain of appends cannot leak. */
int gw_curl_header(struct curl_slist **list, const char *line, struct gw_err *err);

#endif
