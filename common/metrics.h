/*
 * metrics.h — request counters and latency histograms in Prometheus text
 * format. Series are keyed by route pattern (never the raw path, so ids do
 * not explode the label space), method and status.
 *
 * One registry for the process. Every function is thread-safe (a mutex
 * guards the registry); strings passed in are copied unless noted as
 * static. gw_metrics_render appends to the caller's buffer.
 */
#ifndef MLGW_METRICS_H
#define MLGW_METRICS_H

#include "common/buf.h"

/* route and method must be static strings (patterns, method names). */
void gw_metrics_observe(const char *route, const char *method, unsigned status, double seconds);
/* Other subsystems' metrics. family is a static name; labels is the inside
 * of {} ("target=\"batch\",result=\"ok\""), copied, from a bounded set. */
void gw_metrics_describe(const char *family, const char *type, const char *help);
void gw_metrics_add(const char *family, const char *labels, double v);
/* A gauge: the series takes the value v. */
void gw_metrics_set(const char *family, const char *labels, double v);
/* A latency histogram (seconds) per family and labels. */
void gw_metrics_time(const char *family, const char *labels, double seconds);

/* Appends the request families to out. */
int gw_metrics_render(struct gw_buf *out);
void gw_metrics_reset(void); /* tests */

#endif
