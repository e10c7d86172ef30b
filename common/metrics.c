/*
 * metrics.c — fixed-size tables of series under one mutex. Lookups are linear
 * over a few dozen entries, cheaper than the request they count. When the
 * table is full (it cannot be with a fixed route table), new series are
 * dropped and counted in mlgw_metrics_dropped_total.
 */
#include "common/metrics.h"

#include <pthread.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

#include "common/poison.h"

enum { MAX_COUNTERS = 512, MAX_HISTOS = 128, NBUCKETS = 13 };

static const double buckets[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  10};

struct counter {
    const char *route, *method;
    unsigned status;
    unsigned long long n;
};

struct histo {
    const char *route, *method;
    unsigned long long counts[NBUCKETS + 1];
    double sum;
    unsigned long long n;
};

/* Named series of other subsystems. */
enum { MAX_NAMED = 256, MAX_FAMILIES = 32, LABELS_MAX = 160 };

struct named {
    const char *family;
    char labels[LABELS_MAX];
    int histogram;
    double value; /* counter value, or histogram sum */
    unsigned long long counts[NBUCKETS + 1], n;
};

struct family_doc {
    const char *family, *type, *help;
};

static struct named named[MAX_NAMED];
static size_t nnamed;
static struct family_doc docs[MAX_FAMILIES];
static size_t ndocs;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct counter counters[MAX_COUNTERS];
static struct histo histos[MAX_HISTOS];
static size_t ncounters, nhistos;
static unsigned long long dropped;

void gw_metrics_observe(const char *route, const char *method, unsigned status, double seconds)
{
    pthread_mutex_lock(&mu);
    size_t i;
    for (i = 0; i < ncounters; i++)
        if (counters[i].route == route && counters[i].status == status &&
            strcmp(counters[i].method, method) == 0)
            break;
    if (i == ncounters && ncounters < MAX_COUNTERS) {
        counters[i] = (struct counter){route, method, status, 0};
        ncounters++;
    }
    if (i < ncounters)
        counters[i].n++;
    else
        dropped++;

    for (i = 0; i < nhistos; i++)
        if (histos[i].route == route && strcmp(histos[i].method, method) == 0)
            break;
    if (i == nhistos && nhistos < MAX_HISTOS) {
        memset(&histos[i], 0, sizeof(histos[i]));
        histos[i].route = route;
        histos[i].method = method;
        nhistos++;
    }
    if (i < nhistos) {
        size_t b = 0;
        while (b < NBUCKETS && seconds > buckets[b])
            b++;
        histos[i].counts[b]++;
        histos[i].sum += seconds;
        histos[i].n++;
    }
    pthread_mutex_unlock(&mu);
}

void gw_metrics_describe(const char *family, const char *type, const char *help)
{
    pthread_mutex_lock(&mu);
    size_t i;
    for (i = 0; i < ndocs; i++)
        if (strcmp(docs[i].family, family) == 0)
            break;
    if (i == ndocs && ndocs < MAX_FAMILIES)
        docs[ndocs++] = (struct family_doc){family, type, help};
    pthread_mutex_unlock(&mu);
}

/* The series for family/labels, created when new; NULL when the table is full. */
static struct named *named_get(const char *family, const char *labels, int histogram)
{
    for (size_t i = 0; i < nnamed; i++)
        if (strcmp(named[i].family, family) == 0 && strcmp(named[i].labels, labels) == 0)
            return &named[i];
    if (nnamed == MAX_NAMED || strlen(labels) >= LABELS_MAX) {
        dropped++;
        return NULL;
    }
    struct named *n = &named[nnamed++];
    memset(n, 0, sizeof(*n));
    n->family = family;
    memcpy(n->labels, labels, strlen(labels) + 1);
    n->histogram = histogram;
    return n;
}

void gw_metrics_add(const char *family, const char *labels, double v)
{
    pthread_mutex_lock(&mu);
    struct named *n = named_get(family, labels, 0);
    if (n != NULL)
        n->value += v;
    pthread_mutex_unlock(&mu);
}

void gw_metrics_set(const char *family, const char *labels, double v)
{
    pthread_mutex_lock(&mu);
    struct named *n = named_get(family, labels, 0);
    if (n != NULL)
        n->value = v;
    pthread_mutex_unlock(&mu);
}

void gw_metrics_time(const char *family, const char *labels, double seconds)
{
    pthread_mutex_lock(&mu);
    struct named *n = named_get(family, labels, 1);
    if (n != NULL) {
        size_t b = 0;
        while (b < NBUCKETS && seconds > buckets[b])
            b++;
        n->counts[b]++;
        n->value += seconds;
        n->n++;
    }
    pthread_mutex_unlock(&mu);
}

/* Appends every named family, HELP and TYPE once each. */
static int render_named(struct gw_buf *out)
{
    int rc = GW_OK;
    for (size_t d = 0; rc == GW_OK && d < ndocs; d++) {
        const char *fam = docs[d].family;
        rc = gw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam, docs[d].help, fam,
                           docs[d].type);
        for (size_t i = 0; rc == GW_OK && i < nnamed; i++) {
            const struct named *n = &named[i];
            if (strcmp(n->family, fam) != 0)
                continue;
            const char *sep = n->labels[0] ? "," : "";
            const char *open = n->labels[0] ? "{" : "", *close = n->labels[0] ? "}" : "";
            if (!n->histogram) {
                rc = gw_buf_printf(out, "%s%s%s%s %.17g\n", fam, open, n->labels, close, n->value);
                continue;
            }
            unsigned long long cum = 0;
            for (size_t b = 0; rc == GW_OK && b < NBUCKETS; b++) {
                cum += n->counts[b];
                rc = gw_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", fam, n->labels, sep,
                                   buckets[b], cum);
            }
            cum += n->counts[NBUCKETS];
            if (rc == GW_OK)
                rc = gw_buf_printf(out,
                                   "%s_bucket{%s%sle=\"+Inf\"} %llu\n%s_sum%s%s%s %.6f\n"
                                   "%s_count%s%s%s %llu\n",
                                   fam, n->labels, sep, cum, fam, open, n->labels, close, n->value,
                                   fam, open, n->labels, close, n->n);
        }
    }
    return rc;
}

int gw_metrics_render(struct gw_buf *out)
{
    int rc = GW_OK;
/* Appends while everything so far succeeded; rc keeps the first failure. */
#define ADD(expr)                                                                                  \
    do {                                                                                           \
        if (rc == GW_OK)                                                                           \
            rc = (expr);                                                                           \
    } while (0)
    pthread_mutex_lock(&mu);
    ADD(gw_buf_adds(out, "# HELP mlgw_http_requests_total HTTP requests by route, method and "
                         "status.\n# TYPE mlgw_http_requests_total counter\n"));
    for (size_t i = 0; i < ncounters; i++)
        ADD(gw_buf_printf(out,
                          "mlgw_http_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} "
                          "%llu\n",
                          counters[i].route, counters[i].method, counters[i].status,
                          counters[i].n));
    ADD(gw_buf_adds(out, "# HELP mlgw_http_request_duration_seconds Time from request headers "
                         "to response queued.\n# TYPE mlgw_http_request_duration_seconds "
                         "histogram\n"));
    for (size_t i = 0; i < nhistos; i++) {
        const struct histo *h = &histos[i];
        unsigned long long cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += h->counts[b];
            ADD(gw_buf_printf(
                out,
                "mlgw_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                "le=\"%g\"} %llu\n",
                h->route, h->method, buckets[b], cum));
        }
        cum += h->counts[NBUCKETS];
        ADD(gw_buf_printf(out,
                          "mlgw_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\","
                          "le=\"+Inf\"} %llu\n"
                          "mlgw_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} "
                          "%.6f\n"
                          "mlgw_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} "
                          "%llu\n",
                          h->route, h->method, cum, h->route, h->method, h->sum, h->route,
                          h->method, h->n));
    }
    ADD(render_named(out));
    ADD(gw_buf_printf(out,
                      "# HELP mlgw_metrics_dropped_total Observations without room for a new "
                      "series.\n# TYPE mlgw_metrics_dropped_total counter\n"
                      "mlgw_metrics_dropped_total %llu\n",
                      dropped));
    pthread_mutex_unlock(&mu);
#undef ADD
    return rc;
}

void gw_metrics_reset(void)
{
    pthread_mutex_lock(&mu);
    ncounters = 0;
    nhistos = 0;
    nnamed = 0;
    ndocs = 0;
    dropped = 0;
    pthread_mutex_unlock(&mu);
}
