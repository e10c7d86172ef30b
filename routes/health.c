/*
 * health.c — liveness (/healthz), readiness (/readyz) and Prometheus metrics
 * (/metrics). Liveness touches nothing; readiness asks the database whether
 * it answers and whether every migration this gateway knows is applied.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "db/jobcache.h"
#include "db/local.h"
#include "db/outbox.h"
#include "jobs/app.h"
#include "jobs/executor.h"
#include "routes/routes.h"

#include "common/poison.h"

void rt_healthz(struct rt_request *req, struct rt_reply *out)
{
    (void)req;
    rt_reply_json(out, 200, json_pack("{s:s}", "status", "ok"));
}

/* The last readiness answered: 0 unknown, 1 ready, 2 not ready. Probes come
 * every few hundred milliseconds; only a change is logged. */
static atomic_int last_ready;

static void ready_changed(int now_ready, const char *why)
{
    int was = atomic_exchange(&last_ready, now_ready ? 1 : 2);
    if (now_ready && was == 2)
        GW_LOG_INFO("ready again");
    else if (!now_ready && was != 2)
        GW_LOG_WARN("not ready: %s", why);
}

void rt_readyz(struct rt_request *req, struct rt_reply *out)
{
    struct jobs_app *app = req->app;
    struct gw_err err = {0};
    struct db_conn *c = NULL;
    int pending = -1;
    int rc = db_pool_checkout(&c, app->request_pool, &err);
    if (rc == GW_OK)
        rc = db_migrations_pending(&pending, c, app->migrations, &err);
    db_pool_checkin(app->request_pool, c);

    const char *db = rc == GW_OK || rc == GW_ECONFLICT ? "ok" : "unavailable";
    if (rc == GW_OK && pending == 0) {
        ready_changed(1, NULL);
        rt_reply_json(out, 200,
                      json_pack("{s:s,s:{s:s,s:s}}", "status", "ready", "checks", "database", db,
                                "migrations", "current"));
        return;
    }
    const char *mig = rc == GW_ECONFLICT ? "changed" : (rc == GW_OK ? "pending" : "unknown");
    char reason[160];
    if (rc == GW_ECONFLICT)
        gw_fmt(reason, sizeof(reason), "an applied migration's file has changed");
    else if (rc == GW_OK)
        gw_fmt(reason, sizeof(reason), "%d migration(s) not applied yet", pending);
    else
        gw_fmt(reason, sizeof(reason), "the database is unavailable");
    char why[400];
    gw_fmt(why, sizeof(why), "%s%s%s", reason, rc != GW_OK ? ": " : "", rc != GW_OK ? err.msg : "");
    ready_changed(0, why);
    json_t *body = json_pack("{s:s,s:s,s:{s:s,s:s}}", "status", "not ready", "reason", reason,
                             "checks", "database", db, "migrations", mig);
    rt_reply_json(out, 503, body);
    rt_reply_header(out, MHD_HTTP_HEADER_RETRY_AFTER, "2");
}

/* The local executor: its capacity, what running attempts hold, the queue. */
static int local_metrics(struct gw_buf *b, struct jobs_app *app)
{
    struct jobs_executor_capacity cap;
    struct jobs_executor_usage use;
    jobs_executor_capacity(app->executor, &cap);
    jobs_executor_usage(app->executor, &use);
    int rc = gw_buf_printf(b,
                           "# HELP mlgw_local_capacity What the local executor hands out.\n"
                           "# TYPE mlgw_local_capacity gauge\n"
                           "mlgw_local_capacity{resource=\"vcpus\"} %lld\n"
                           "mlgw_local_capacity{resource=\"memory_mib\"} %lld\n"
                           "mlgw_local_capacity{resource=\"gpus\"} %lld\n"
                           "# HELP mlgw_local_in_use What running local attempts hold.\n"
                           "# TYPE mlgw_local_in_use gauge\n"
                           "mlgw_local_in_use{resource=\"vcpus\"} %lld\n"
                           "mlgw_local_in_use{resource=\"memory_mib\"} %lld\n"
                           "mlgw_local_in_use{resource=\"gpus\"} %lld\n"
                           "# HELP mlgw_local_running Local job attempts running.\n"
                           "# TYPE mlgw_local_running gauge\n"
                           "mlgw_local_running %d\n",
                           cap.vcpus, cap.memory_mib, cap.gpus, use.vcpus, use.memory_mib, use.gpus,
                           use.running);
    long waiting = 0;
    struct gw_err err = {0};
    if (rc == GW_OK && db_local_waiting(&waiting, app->request_pool, &err) == GW_OK)
        rc = gw_buf_printf(b,
                           "# HELP mlgw_local_waiting Local jobs waiting to run (QUEUED, "
                           "RUNNABLE).\n"
                           "# TYPE mlgw_local_waiting gauge\n"
                           "mlgw_local_waiting %ld\n",
                           waiting);
    return rc;
}

/* GET /jobs/{id}'s in-memory documents (db/jobcache.h). */
static int jobcache_metrics(struct gw_buf *b, struct db_jobcache *jc)
{
    struct db_jobcache_stats st;
    db_jobcache_stats(jc, &st);
    return gw_buf_printf(
        b,
        "# HELP mlgw_job_cache_bytes Bytes of job documents held, and the bound.\n"
        "# TYPE mlgw_job_cache_bytes gauge\n"
        "mlgw_job_cache_bytes{kind=\"used\"} %zu\n"
        "mlgw_job_cache_bytes{kind=\"max\"} %zu\n"
        "# HELP mlgw_job_cache_entries Job documents held.\n"
        "# TYPE mlgw_job_cache_entries gauge\n"
        "mlgw_job_cache_entries %zu\n"
        "# HELP mlgw_job_cache_live 1 while the cache serves (its connection polls job changes).\n"
        "# TYPE mlgw_job_cache_live gauge\n"
        "mlgw_job_cache_live %d\n"
        "# HELP mlgw_job_cache_events_total Lookups and changes of the job cache.\n"
        "# TYPE mlgw_job_cache_events_total counter\n"
        "mlgw_job_cache_events_total{event=\"hit\"} %llu\n"
        "mlgw_job_cache_events_total{event=\"miss\"} %llu\n"
        "mlgw_job_cache_events_total{event=\"store\"} %llu\n"
        "mlgw_job_cache_events_total{event=\"invalidation\"} %llu\n"
        "mlgw_job_cache_events_total{event=\"eviction\"} %llu\n"
        "mlgw_job_cache_events_total{event=\"flush\"} %llu\n",
        st.bytes, st.max_bytes, st.entries, st.live, (unsigned long long)st.hits,
        (unsigned long long)st.misses, (unsigned long long)st.stores,
        (unsigned long long)st.invalidations, (unsigned long long)st.evictions,
        (unsigned long long)st.flushes);
}

void rt_metrics(struct rt_request *req, struct rt_reply *out)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)4 << 20);
    int rc = gw_metrics_render(&b);
    struct db_pool_stats st;
    db_pool_stats(req->app->request_pool, &st);
    if (rc == GW_OK)
        rc = gw_buf_printf(
            &b,
            "# HELP mlgw_db_pool_connections Pool connections by state.\n"
            "# TYPE mlgw_db_pool_connections gauge\n"
            "mlgw_db_pool_connections{state=\"size\"} %d\n"
            "mlgw_db_pool_connections{state=\"open\"} %d\n"
            "mlgw_db_pool_connections{state=\"in_use\"} %d\n"
            "# HELP mlgw_db_pool_waiting Requests waiting for a pooled connection.\n"
            "# TYPE mlgw_db_pool_waiting gauge\n"
            "mlgw_db_pool_waiting %d\n"
            "# HELP mlgw_db_pool_checkout_timeouts_total Checkouts that gave up waiting.\n"
            "# TYPE mlgw_db_pool_checkout_timeouts_total counter\n"
            "mlgw_db_pool_checkout_timeouts_total %llu\n"
            "# HELP mlgw_db_pool_connect_failures_total Failed attempts to connect.\n"
            "# TYPE mlgw_db_pool_connect_failures_total counter\n"
            "mlgw_db_pool_connect_failures_total %llu\n"
            "# HELP mlgw_db_pool_reconnects_total Broken connections replaced.\n"
            "# TYPE mlgw_db_pool_reconnects_total counter\n"
            "mlgw_db_pool_reconnects_total %llu\n"
            "# HELP mlgw_process_start_time_seconds Start time of the process.\n"
            "# TYPE mlgw_process_start_time_seconds gauge\n"
            "mlgw_process_start_time_seconds %lld\n",
            st.size, st.open, st.in_use, st.waiting, (unsigned long long)st.checkout_timeouts,
            (unsigned long long)st.connect_failures, (unsigned long long)st.reconnects,
            (long long)(req->app->started_ms / 1000));
    long depth = 0;
    double oldest = 0;
    struct gw_err err = {0};
    if (rc == GW_OK && db_outbox_stats(&depth, &oldest, req->app->request_pool, &err) == GW_OK)
        rc = gw_buf_printf(&b,
                           "# HELP mlgw_outbox_depth Actions waiting to be handed to AWS.\n"
                           "# TYPE mlgw_outbox_depth gauge\n"
                           "mlgw_outbox_depth %ld\n"
                           "# HELP mlgw_outbox_oldest_seconds Age of the oldest waiting action.\n"
                           "# TYPE mlgw_outbox_oldest_seconds gauge\n"
                           "mlgw_outbox_oldest_seconds %.3f\n",
                           depth, oldest);
    if (rc == GW_OK && req->app->executor != NULL)
        rc = local_metrics(&b, req->app);
    if (rc == GW_OK && req->app->jobcache != NULL)
        rc = jobcache_metrics(&b, req->app->jobcache);
    if (rc != GW_OK) {
        gw_buf_dispose(&b);
        rt_reply_error(req, out, GW_ENOMEM, NULL);
        return;
    }
    size_t len = b.len;
    rt_reply_bytes(out, 200, "text/plain; version=0.0.4; charset=utf-8", gw_buf_steal(&b), len);
}
