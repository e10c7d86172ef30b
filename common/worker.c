/*
 * worker.c — one thread per worker, sleeping on a condition variable between
 * runs so that wake and stop take effect at once.
 */
#include "common/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/time.h"

#include "common/poison.h"

struct gw_worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char name[48];
    int64_t interval_ms;
    gw_worker_fn fn;
    void *arg;
    int stop;
    int woken;
    int run_woken; /* the current run was asked for (worker thread only) */
};

/* The process's shutdown: 0 while serving, else the monotonic time (ns) by
 * which everything must have stopped. */
static _Atomic int64_t shutdown_deadline_ns;

void gw_shutdown_begin(int64_t deadline_ns)
{
    int64_t none = 0;
    (void)atomic_compare_exchange_strong(&shutdown_deadline_ns, &none,
                                         deadline_ns > 0 ? deadline_ns : 1);
}

int gw_shutting_down(void)
{
    return atomic_load(&shutdown_deadline_ns) != 0;
}

int64_t gw_shutdown_left_ms(void)
{
    int64_t d = atomic_load(&shutdown_deadline_ns);
    if (d == 0)
        return INT64_MAX;
    int64_t left = (d - gw_monotonic_ns()) / 1000000;
    return left > 0 ? left : 0;
}

static void *worker_main(void *p)
{
    struct gw_worker *w = p;
    int64_t wait_ms = w->interval_ms;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!w->stop && !w->woken &&
               pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT) {
        }
        int stop = w->stop;
        w->run_woken = w->woken;
        w->woken = 0;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        int next = w->fn(w->arg);
        if (next < 0)
            GW_LOG_WARN("worker %s: run failed", w->name);
        wait_ms = next > 0 ? next : w->interval_ms;
    }
    return NULL;
}

int gw_worker_start(struct gw_worker **out, const char *name, int64_t interval_ms, gw_worker_fn fn,
                    void *arg)
{
    *out = NULL;
    struct gw_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return GW_ENOMEM;
    gw_fmt(w->name, sizeof(w->name), "%s", name);
    w->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    w->fn = fn;
    w->arg = arg;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return GW_ENOMEM;
    }
    *out = w;
    return GW_OK;
}

void gw_worker_wake(struct gw_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->woken = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void gw_worker_stop(struct gw_worker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

int gw_worker_run_was_woken(const struct gw_worker *w)
{
    return w->run_woken;
}
