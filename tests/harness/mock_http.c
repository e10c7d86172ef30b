/*
 * mock_http.c — the scripted loopback HTTP server of mock_http.h, on
 * libmicrohttpd with a thread per connection (tests are small).
 */
#include "mock_http.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { MAX_REPLIES = 64, MAX_REQUESTS = 1024, MAX_BODY = 8 * 1024 * 1024 };

struct stored_reply {
    unsigned status;
    char *content_type, *body, *header_name, *header_value;
    int delay_ms;
};

struct th_mock {
    struct MHD_Daemon *d;
    char url[64];
    pthread_mutex_t mu;
    struct stored_reply replies[MAX_REPLIES];
    size_t nreplies;
    struct th_mock_request *reqs;
    size_t nreqs;
};

struct conn_state {
    struct th_mock_request req;
    size_t cap;
};

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    struct conn_state *st = cls;
    size_t old = st->req.headers ? strlen(st->req.headers) : 0;
    size_t add = strlen(key) + strlen(value) + 4;
    char *p = realloc(st->req.headers, old + add);
    if (p == NULL)
        return MHD_NO;
    st->req.headers = p;
    char *w = p + old;
    for (const char *k = key; *k; k++)
        *w++ = (char)tolower((unsigned char)*k);
    snprintf(w, add, ": %s\n", value);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct th_mock *m = cls;
    struct conn_state *st = *con_cls;
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return MHD_NO;
        *con_cls = st;
        snprintf(st->req.method, sizeof(st->req.method), "%s", method);
        snprintf(st->req.path, sizeof(st->req.path), "%s", url); /* without the query */
        st->req.headers = strdup("");
        MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, st);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (st->req.body_len + n + 1 > st->cap) {
            size_t ncap = (st->req.body_len + n + 1) * 2;
            if (ncap > MAX_BODY)
                return MHD_NO;
            char *p = realloc(st->req.body, ncap);
            if (p == NULL)
                return MHD_NO;
            st->req.body = p;
            st->cap = ncap;
        }
        memcpy(st->req.body + st->req.body_len, upload_data, n);
        st->req.body_len += n;
        st->req.body[st->req.body_len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st->req.body == NULL)
        st->req.body = strdup("");

    struct stored_reply r = {200, NULL, NULL, NULL, NULL, 0};
    pthread_mutex_lock(&m->mu);
    if (m->nreqs < MAX_REQUESTS) {
        m->reqs[m->nreqs++] = st->req;
        st->req.headers = NULL;
        st->req.body = NULL;
    }
    if (m->nreplies > 0) {
        struct stored_reply *s = &m->replies[0];
        r.status = s->status;
        r.content_type = dup_or_null(s->content_type);
        r.body = dup_or_null(s->body);
        r.header_name = dup_or_null(s->header_name);
        r.header_value = dup_or_null(s->header_value);
        r.delay_ms = s->delay_ms;
        if (m->nreplies > 1) {
            free(s->content_type);
            free(s->body);
            free(s->header_name);
            free(s->header_value);
            memmove(&m->replies[0], &m->replies[1], (m->nreplies - 1) * sizeof(m->replies[0]));
            m->nreplies--;
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (r.delay_ms > 0) {
        struct timespec ts = {r.delay_ms / 1000, (long)(r.delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    const char *body = r.body ? r.body : "";
    char expanded[4096];
    const char *mark = strstr(body, "%N%");
    if (mark != NULL) { /* a unique number per request, for ids */
        pthread_mutex_lock(&m->mu);
        size_t n = m->nreqs;
        pthread_mutex_unlock(&m->mu);
        snprintf(expanded, sizeof(expanded), "%.*s%zu%s", (int)(mark - body), body, n, mark + 3);
        body = expanded;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (r.content_type)
        MHD_add_response_header(resp, "Content-Type", r.content_type);
    if (r.header_name)
        MHD_add_response_header(resp, r.header_name, r.header_value ? r.header_value : "");
    enum MHD_Result ret = MHD_queue_response(conn, r.status, resp);
    MHD_destroy_response(resp);
    free(r.content_type);
    free(r.body);
    free(r.header_name);
    free(r.header_value);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct conn_state *st = *con_cls;
    if (st == NULL)
        return;
    free(st->req.headers);
    free(st->req.body);
    free(st);
    *con_cls = NULL;
}

struct th_mock *th_mock_start(void)
{
    struct th_mock *m = calloc(1, sizeof(*m));
    cr_assert(m != NULL);
    m->reqs = calloc(MAX_REQUESTS, sizeof(*m->reqs));
    cr_assert(m->reqs != NULL);
    pthread_mutex_init(&m->mu, NULL);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    m->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                            NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR, &sin,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, m, MHD_OPTION_END);
    cr_assert(m->d != NULL, "mock server did not start");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%u", info ? info->port : 0);
    return m;
}

void th_mock_stop(struct th_mock *m)
{
    if (m == NULL)
        return;
    MHD_stop_daemon(m->d);
    for (size_t i = 0; i < m->nreplies; i++) {
        free(m->replies[i].content_type);
        free(m->replies[i].body);
        free(m->replies[i].header_name);
        free(m->replies[i].header_value);
    }
    for (size_t i = 0; i < m->nreqs; i++)
        th_mock_request_dispose(&m->reqs[i]);
    free(m->reqs);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

const char *th_mock_url(const struct th_mock *m)
{
    return m->url;
}

void th_mock_set(struct th_mock *m, const struct th_mock_reply *r)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nreplies; i++) {
        free(m->replies[i].content_type);
        free(m->replies[i].body);
        free(m->replies[i].header_name);
        free(m->replies[i].header_value);
    }
    m->nreplies = 0;
    pthread_mutex_unlock(&m->mu);
    th_mock_push(m, r);
}

void th_mock_push(struct th_mock *m, const struct th_mock_reply *r)
{
    pthread_mutex_lock(&m->mu);
    cr_assert(m->nreplies < MAX_REPLIES);
    struct stored_reply *s = &m->replies[m->nreplies++];
    s->status = r->status;
    s->content_type = dup_or_null(r->content_type);
    s->body = dup_or_null(r->body);
    s->header_name = dup_or_null(r->header_name);
    s->header_value = dup_or_null(r->header_value);
    s->delay_ms = r->delay_ms;
    pthread_mutex_unlock(&m->mu);
}

size_t th_mock_count(struct th_mock *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->nreqs;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void th_mock_request(struct th_mock_request *out, struct th_mock *m, size_t i)
{
    pthread_mutex_lock(&m->mu);
    cr_assert(i < m->nreqs, "request %zu of %zu", i, m->nreqs);
    *out = m->reqs[i];
    out->headers = strdup(m->reqs[i].headers ? m->reqs[i].headers : "");
    out->body = malloc(m->reqs[i].body_len + 1);
    memcpy(out->body, m->reqs[i].body ? m->reqs[i].body : "", m->reqs[i].body_len);
    out->body[m->reqs[i].body_len] = '\0';
    pthread_mutex_unlock(&m->mu);
}

void th_mock_request_dispose(struct th_mock_request *r)
{
    free(r->headers);
    free(r->body);
    r->headers = NULL;
    r->body = NULL;
}

char *th_mock_header(const struct th_mock_request *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n + 1 && strncasecmp(p, name, n) == 0 && p[n] == ':')
            return strndup(p + n + 2, len - n - 2);
        p = eol ? eol + 1 : p + len;
    }
    return NULL;
}
