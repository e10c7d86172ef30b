/*
 * worker.h — background workers: a thread that runs one function every
 * interval (or sooner when woken) until it is stopped. Shutdown stops them
 * after the HTTP server has drained and before the pool closes.
 */
#ifndef MLGW_WORKER_H
#define MLGW_WORKER_H

#include <stdint.h>

struct srv_worker;

/* Runs once per wake-up; a negative return is logged, never fatal; a
 * positive one is the milliseconds until the next run (instead of the
 * interval) unless woken sooner. */
typedef int (*srv_worker_fn)(void *arg);

int srv_worker_start(struct srv_worker **out, const char *name, int64_t interval_ms,
                     srv_worker_fn fn, void *arg);
/* Makes the worker run now instead of at its next interval. */
void srv_worker_wake(struct srv_worker *w);
/* From inside fn: whether this run was asked for by srv_worker_wake()
 * rather than by the interval. */
int srv_worker_run_was_woken(const struct srv_worker *w);
/* Stops and joins the worker (after its current run); NULL is a no-op. */
void srv_worker_stop(struct srv_worker *w);

#endif
