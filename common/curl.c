/*
 * curl.c — checked libcurl easy-handle set-up (curl.h).
 */
#include "common/curl.h"

#include <openssl/crypto.h>
#include <string.h>

#include "common/buf.h"

#include "common/poison.h"

int gw_curl_checked(CURLcode rc, const char *option, struct gw_err *err)
{
    if (rc == CURLE_OK)
        return GW_OK;
    return gw_err_set(err, GW_EINVAL, "libcurl refused %s: %s", option, curl_easy_strerror(rc));
}

/* The bounded write callback (userdata: a struct gw_buf *, or NULL to
 * discard): a body past the buffer's max stops the transfer. */
static size_t write_bounded(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct gw_buf *b = userdata;
    if (nmemb != 0 && size > (size_t)-1 / nmemb)
        return 0;
    size_t n = size * nmemb;
    if (b == NULL)
        return n;
    return gw_buf_add(b, ptr, n) == GW_OK ? n : 0; /* 0 stops the transfer */
}

int gw_curl_prepare(CURL *h, const struct gw_curl_opts *o, struct gw_err *err)
{
    if (o->protocols == NULL || o->protocols[0] == '\0' || o->timeout_ms <= 0)
        return gw_err_set(err, GW_EINVAL, "curl handle: protocols and a timeout are required");
    long connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : o->timeout_ms;
    const char *ua = o->user_agent != NULL ? o->user_agent : "ml-gateway/" MLGW_VERSION;
    int rc = GW_OK;
    if (o->url != NULL)
        rc = GW_CURL_SET(h, CURLOPT_URL, o->url, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_NOSIGNAL, 1L, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_PROTOCOLS_STR, o->protocols, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_REDIR_PROTOCOLS_STR, o->protocols, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_FOLLOWLOCATION, 0L, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_TIMEOUT_MS, o->timeout_ms, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_USERAGENT, ua, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_WRITEFUNCTION, write_bounded, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_WRITEDATA, (void *)o->sink, err);
    if (rc == GW_OK && o->sink != NULL && o->sink->max > 0)
        rc = GW_CURL_SET(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->sink->max, err);
    if (rc == GW_OK && o->errbuf != NULL) {
        o->errbuf[0] = '\0';
        rc = GW_CURL_SET(h, CURLOPT_ERRORBUFFER, o->errbuf, err);
    }
    return rc;
}

int gw_curl_new(CURL **out, const struct gw_curl_opts *o, struct gw_err *err)
{
    *out = NULL;
    CURL *h = curl_easy_init();
    if (h == NULL)
        return gw_err_set(err, GW_ENOMEM, "curl_easy_init failed");
    int rc = gw_curl_prepare(h, o, err);
    if (rc != GW_OK) {
        curl_easy_cleanup(h);
        return rc;
    }
    *out = h;
    return GW_OK;
}

int gw_curl_header(struct curl_slist **list, const char *line, struct gw_err *err)
{
    struct curl_slist *n = curl_slist_append(*list, line);
    if (n == NULL) {
        /* A header may carry a secret (a token, a signature): wiped first. */
        for (struct curl_slist *s = *list; s != NULL; s = s->next)
            OPENSSL_cleanse(s->data, strlen(s->data));
        curl_slist_free_all(*list);
        *list = NULL;
        return gw_err_set(err, GW_ENOMEM, "out of memory for a request header");
    }
    *list = n;
    return GW_OK;
}
