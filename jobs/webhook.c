/*
 * webhook.c — a job's JSON POSTed to a webhook, signed with HMAC-SHA256.
 *
 * The handle comes from common/curl (allow-listed http and https, no
 * redirects, deadlines, every option checked); the answer's body is thrown
 * away and only its status counts. The status decides between "retry later"
 * (no answer, 5xx, 408, 429) and "will not work" (anything else). Retries,
 * the outbox and the choice of receivers are the notifier's.
 */
#include "jobs/webhook.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "common/buf.h"
#include "common/curl.h"
#include "common/encode.h"
#include "common/err.h"

#include "common/poison.h"

enum { WEBHOOK_TIMEOUT_MS = 10000, WEBHOOK_CONNECT_TIMEOUT_MS = 3000 };

void jobs_webhook_signature(char *out, size_t outlen, const char *secret, long long now,
                            const char *body, size_t len)
{
    struct gw_buf msg;
    gw_buf_init(&msg, len + 32);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
    if (gw_buf_printf(&msg, "%lld.", now) == GW_OK && gw_buf_add(&msg, body, len) == GW_OK &&
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg.data, msg.len,
             mac, &maclen) != NULL)
        gw_hex(hex, mac, maclen);
    gw_buf_dispose(&msg);
    gw_fmt(out, outlen, "t=%lld,v1=%s", now, hex);
}

/* The request headers; on failure *out is NULL (gw_curl_header freed it). */
static int webhook_headers(struct curl_slist **out, const char *body, const char *secret,
                           long long now, struct gw_err *err)
{
    *out = NULL;
    int rc = gw_curl_header(out, "Content-Type: application/json", err);
    if (rc == GW_OK)
        rc = gw_curl_header(out, "Expect:", err); /* no 100-continue round trip */
    if (rc == GW_OK && secret != NULL) {
        char sig[128], line[160];
        jobs_webhook_signature(sig, sizeof(sig), secret, now, body, strlen(body));
        gw_fmt(line, sizeof(line), "X-Signature: %s", sig);
        rc = gw_curl_header(out, line, err);
    }
    return rc;
}

int jobs_webhook_post(const char *url, const char *body, const char *secret, long long now,
                      struct gw_err *err)
{
    struct curl_slist *hl = NULL;
    CURL *h = NULL;
    CURLcode cc;
    long status = 0;
    struct gw_curl_opts o = {.url = url,
                             .protocols = "http,https",
                             .connect_timeout_ms = WEBHOOK_CONNECT_TIMEOUT_MS,
                             .timeout_ms = WEBHOOK_TIMEOUT_MS,
                             .user_agent = "ml-gateway"};
    int rc = webhook_headers(&hl, body, secret, now, err);
    if (rc == GW_OK)
        rc = gw_curl_new(&h, &o, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_HTTPHEADER, hl, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_POSTFIELDS, body, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body), err);
    if (rc != GW_OK)
        goto cleanup;

    cc = curl_easy_perform(h);
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (cc != CURLE_OK)
        rc = gw_err_set(err, GW_EUNAVAIL, "%s", curl_easy_strerror(cc));
    else if (status >= 200 && status < 300)
        rc = GW_OK;
    else if (status >= 500 || status == 408 || status == 429)
        rc = gw_err_set(err, GW_EUNAVAIL, "the receiver answered %ld", status);
    else
        rc = gw_err_set(err, GW_EUPSTREAM, "the receiver answered %ld", status);

cleanup:
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    return rc;
}
