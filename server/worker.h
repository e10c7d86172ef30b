/*
 * worker.h — background workers: a thread that runs one function every
 * interval (or sooner when woken) until it is stopped. Shutdown stops them
 * after the HTTP server has drained and before the pool closes.
 */
#ifndef MLGW_WORKER_H
#define MLGW_WORKER_H

#include <stdint.h>

struct srv_worker;

/* Runs once per wake-up; a negative return is logged, never fatal. */
typedef int (*srv_worker_fn)(void *arg);

int srv_worker_start(struct srv_worker **out, const char *name, int64_t interval_ms,
                     srv_worker_fn fn, void *arg);
/* Makes the worker run now instead of at its next interval. */
void srv_worker_wake(struct srv_worker *w);
/* Stops and joins the worker (after its current run); NULL is a no-op. */
void srv_worker_stop(struct srv_worker *w);

#endif
