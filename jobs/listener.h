/*
 * listener.h — one PostgreSQL LISTEN channel that wakes a set of workers the
 * moment a NOTIFY commits (the outbox and notification triggers). Workers
 * still poll, so a lost notification only costs latency; while the database
 * is unreachable the listener retries once a second.
 *
 * The listener owns one thread and one connection of its own (not from the
 * pool). Start and stop from the main thread; the workers it wakes are
 * borrowed and must outlive it.
 */
#ifndef MLGW_LISTENER_H
#define MLGW_LISTENER_H

#include "common/config.h"
#include "common/worker.h"

struct jobs_listener;

/* Wakes workers[0..n) (borrowed; they must outlive the listener) on every
 * NOTIFY on channel (a static identifier). */
int jobs_listener_start(struct jobs_listener **out, const struct gw_config *cfg,
                        const char *channel, struct gw_worker *const *workers, int n);
/* Stops it and closes its connection; NULL is a no-op. */
void jobs_listener_stop(struct jobs_listener *l);

#endif
