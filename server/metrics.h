/*
 * metrics.h — request counters and latency histograms in Prometheus text
 * format. Series are keyed by route pattern (never the raw path, so ids do
 * not explode the label space), method and status.
 */
#ifndef MLGW_METRICS_H
#define MLGW_METRICS_H

#include "gw.h"

/* route and method must be static strings (patterns, method names). */
void srv_metrics_observe(const char *route, const char *method, unsigned status, double seconds);
/* Appends the request families to out. */
int srv_metrics_render(struct gw_buf *out);
void srv_metrics_reset(void); /* tests */

#endif
