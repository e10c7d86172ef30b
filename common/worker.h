/*
 * worker.h — background workers: a thread that runs one function every
 * interval (or sooner when woken) until it is stopped. Shutdown stops them
 * after the HTTP server has drained and before the pool closes.
 */
#ifndef MLGW_WORKER_H
#define MLGW_WORKER_H

#include <stdint.h>

struct gw_worker;

/* Runs once per wake-up; a negative return is logged, never fatal; a
 * positive one is the milliseconds until the next run (instead of the
 * interval) unless woken sooner. */
typedef int (*gw_worker_fn)(void *arg);

int gw_worker_start(struct gw_worker **out, const char *name, int64_t interval_ms, gw_worker_fn fn,
                    void *arg);
/* Makes the worker run now instead of at its next interval. */
void gw_worker_wake(struct gw_worker *w);
/* From inside fn: whether this run was asked for by gw_worker_wake()
 * rather than by the interval. */
int gw_worker_run_was_woken(const struct gw_worker *w);
/* The process-wide shutdown. gw_shutdown_begin (from the main thread, at the
 * first signal) records the monotonic deadline (gw_monotonic_ns) by which
 * everything must have stopped; a second call keeps the first deadline.
 * Workers look at gw_shutting_down() between items and stop taking new ones;
 * anything that waits (an AWS call, a retry's backoff, a job's grace period)
 * waits at most gw_shutdown_left_ms() (INT64_MAX while serving). All three
 * are safe from any thread. */
void gw_shutdown_begin(int64_t deadline_ns);
int gw_shutting_down(void);
int64_t gw_shutdown_left_ms(void);

/* Stops and joins the worker (after its current run); NULL is a no-op. */
void gw_worker_stop(struct gw_worker *w);

#endif
