/*
 * cache.c — the model cache's scanner, size policy and jobs (cache.h).
 */
#include "jobs/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/s3.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/id.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/time.h"
#include "common/worker.h"
#include "db/cache.h"
#include "db/jobs.h"
#include "jobs/cachewalk.h"
#include "jobs/jobenv.h"

#include "common/poison.h"

enum {
    TICK_MS = 2000,          /* how often the database is asked whether to scan */
    SUMMARIES_PER_TICK = 16, /* cleanup summaries read per tick */
    SUMMARY_MAX = 1 << 20,   /* bytes of a summary.json read at most */
    SUMMARY_RETRY_S = 60,    /* after a failed S3 read */
    MAX_NAME = 128,          /* cleanup_processor.py's model names */
};

struct jobs_cache {
    struct jobs_app *app;
    struct aws_client *aws;
    struct gw_worker *worker;
    int64_t last_scan_ns; /* 0: none yet */
    int64_t summary_retry_ns;
};

int jobs_cache_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '.' && ch != '_' && ch != '-')))
            return 0;
    }
    return 1;
}

const char *jobs_cache_dispatch(const struct gw_config *cfg)
{
    int d = cfg->cache_dispatch > 0 ? cfg->cache_dispatch - 1 : cfg->dispatch;
    return gw_dispatch_names[d];
}

/* The script's arguments (new array; NULL when out of memory); the job's
 * operation reaches it as OPERATION. */
static json_t *cache_args(const json_t *models, long long older_than_days)
{
    json_t *args = json_array();
    if (args == NULL)
        return NULL;
    if (json_array_size(models) > 0) {
        json_array_append_new(args, json_string("--models"));
        for (size_t i = 0; i < json_array_size(models); i++)
            json_array_append_new(args, json_string(json_string_value(json_array_get(models, i))));
    }
    if (older_than_days > 0) {
        char days[24];
        gw_fmt(days, sizeof(days), "%lld", older_than_days);
        json_array_append_new(args, json_string("--older-than-days"));
        json_array_append_new(args, json_string(days));
    }
    return args;
}

json_t *jobs_cache_request(const struct gw_config *cfg, const char *operation, const json_t *models,
                           long long older_than_days)
{
    json_t *args = cache_args(models, older_than_days);
    if (args == NULL)
        return NULL;
    return json_pack("{s:s,s:s,s:s,s:o,s:{s:s},s:s}", "script_key", cfg->cache_script_key,
                     "compute_type", "cpu", "operation", operation, "args", args, "metadata",
                     "project", "model-cache", "dispatch", jobs_cache_dispatch(cfg));
}

/* ---- the size policy ------------------------------------------------------------ */

/* Stores the policy's cleanup job of the entries named in models. */
static int policy_job(struct jobs_cache *c, json_t *models, json_t *request, char id[37],
                      struct gw_err *err)
{
    const struct gw_config *cfg = c->app->cfg;
    json_t *args = cache_args(models, 0);
    char *args_json = args ? json_dumps(args, JSON_COMPACT) : NULL;
    char *request_json = json_dumps(request, JSON_COMPACT);
    json_decref(args);
    char uri[4200];
    int rc = GW_ENOMEM;
    if (args_json != NULL && request_json != NULL && gw_uuid7(id) == GW_OK &&
        jobs_output_uri(uri, sizeof(uri), cfg, id) == 0) {
        struct db_cache_op op = {"cleanup-cache", "policy", request_json};
        struct db_job_guard guard = {db_cache_op_guard, &op};
        struct db_job_new job = {
            .script_key = cfg->cache_script_key,
            .compute_type = "cpu",
            .vcpus = cfg->cpu_job_vcpus,
            .memory = cfg->cpu_job_memory,
            .args_json = args_json,
            .env_json = "{}",
            .timeout_seconds = -1,
            .max_attempts = 1,
            .operation = "cleanup-cache",
            .metadata_json = "{\"project\":\"model-cache\"}",
            .notify_json = "{\"emails\":[],\"webhooks\":[]}",
            .dispatch = jobs_cache_dispatch(cfg),
            .output_uri = uri,
            .guard = &guard,
        };
        gw_fmt(job.id, sizeof(job.id), "%s", id);
        struct db_job_created created;
        rc = db_job_create(&created, c->app->pool, &job, NULL, err);
        if (rc == GW_OK)
            free(created.json);
    } else {
        gw_err_set(err, rc, "out of memory");
    }
    free(args_json);
    free(request_json);
    return rc;
}

/* Above the maximum: one cleanup of the least recently used entries down to
 * 80 % of it, unless a cache operation is running (it will change the
 * picture; the next scan decides again). */
static void policy(struct jobs_cache *c, const struct jobs_cache_walk *w)
{
    long long max = c->app->cfg->cache_max_bytes;
    if (max <= 0 || !w->complete || w->error[0] != '\0' || w->bytes <= max)
        return;
    long long target = max - max / 5;
    size_t *order = calloc(w->n ? w->n : 1, sizeof(*order));
    size_t n = order ? jobs_cache_lru(w, target, order) : 0;
    json_t *models = json_array();
    for (size_t i = 0; models != NULL && i < n; i++)
        if (jobs_cache_name_ok(w->items[order[i]].name))
            json_array_append_new(models, json_string(w->items[order[i]].name));
    free(order);
    json_t *request =
        json_pack("{s:O,s:I,s:I,s:I}", "models", models, "bytes", (json_int_t)w->bytes, "max_bytes",
                  (json_int_t)max, "target_bytes", (json_int_t)target);
    char id[37];
    struct gw_err err = {0};
    int rc = json_array_size(models) == 0 || request == NULL
                 ? GW_EINVAL
                 : policy_job(c, models, request, id, &err);
    if (rc == GW_OK) {
        gw_metrics_add("mlgw_cache_policy_cleanups_total", "", 1);
        GW_LOG_INFO("cache: %lld bytes is above MLGW_CACHE_MAX_BYTES (%lld): cleanup job %s "
                    "removes %zu least recently used entr%s to reach %lld",
                    w->bytes, max, id, json_array_size(models),
                    json_array_size(models) == 1 ? "y" : "ies", target);
    } else if (rc == GW_ECONFLICT) {
        GW_LOG_DEBUG("cache: above its maximum, but %s", err.msg);
    } else if (rc != GW_EINVAL) {
        GW_LOG_WARN("cache: cannot start the size policy's cleanup: %s", err.msg);
    }
    json_decref(models);
    json_decref(request);
}

/* ---- scans ---------------------------------------------------------------------- */

static void scan_metrics(const struct jobs_cache_walk *w, double seconds)
{
    gw_metrics_set("mlgw_cache_bytes", "", (double)w->bytes);
    gw_metrics_set("mlgw_cache_files", "", (double)w->files);
    gw_metrics_set("mlgw_cache_entries", "", (double)w->n);
    gw_metrics_add("mlgw_cache_scans_total",
                   w->error[0]   ? "result=\"error\""
                   : w->complete ? "result=\"complete\""
                                 : "result=\"partial\"",
                   1);
    gw_metrics_time("mlgw_cache_scan_duration_seconds", "", seconds);
}

static void scan(struct jobs_cache *c, const char *started_at)
{
    const struct gw_config *cfg = c->app->cfg;
    int64_t start = gw_monotonic_ns();
    struct jobs_cache_walk w;
    if (jobs_cache_walk(&w, cfg->cache_dir, cfg->cache_scan_max_files,
                        start + cfg->cache_scan_timeout_s * 1000000000LL) != GW_OK) {
        GW_LOG_WARN("cache: out of memory scanning %s", cfg->cache_dir);
        return;
    }
    int64_t took_ns = gw_monotonic_ns() - start;
    struct db_cache_entry *entries = calloc(w.n ? w.n : 1, sizeof(*entries));
    if (entries == NULL) {
        jobs_cache_walk_dispose(&w);
        return;
    }
    for (size_t i = 0; i < w.n; i++)
        entries[i] = (struct db_cache_entry){w.items[i].name, w.items[i].bytes, w.items[i].files,
                                             w.items[i].used_ms};
    struct db_cache_scan s = {
        .root = cfg->cache_dir,
        .started_at = started_at,
        .duration_ms = took_ns / 1000000,
        .bytes = w.bytes,
        .files = w.files,
        .complete = w.complete,
        .error = w.error[0] ? w.error : NULL,
        .entries = entries,
        .nentries = w.n,
    };
    struct gw_err err = {0};
    if (db_cache_scan_save(c->app->pool, &s, &err) != GW_OK) {
        GW_LOG_WARN("cache: cannot store the scan of %s: %s", cfg->cache_dir, err.msg);
    } else {
        c->last_scan_ns = start;
        scan_metrics(&w, (double)took_ns / 1e9);
        if (w.error[0] != '\0' || !w.complete)
            GW_LOG_WARN("cache: scan of %s %s after %lld ms and %lld files", cfg->cache_dir,
                        w.error[0] ? w.error : "stopped at its bound", s.duration_ms, w.files);
        policy(c, &w);
    }
    free(entries);
    jobs_cache_walk_dispose(&w);
}

/* ---- cleanup summaries ------------------------------------------------------------ */

/* freed_bytes of a summary.json text; -1 when it has none. */
static long long summary_freed(const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, 0, NULL);
    json_t *v = json_object_get(j, "freed_bytes");
    long long freed =
        json_is_integer(v) && json_integer_value(v) >= 0 ? (long long)json_integer_value(v) : -1;
    json_decref(j);
    return freed;
}

/* Reads summary.json below output_uri into out. GW_ENOTFOUND when there is
 * none (or it cannot be reached from here for good), GW_EUNAVAIL to try
 * again later. */
static int summary_read(struct gw_buf *out, struct jobs_cache *c, const char *output_uri)
{
    char where[4200];
    if (strncmp(output_uri, "file://", 7) == 0) {
        int n = snprintf(where, sizeof(where), "%ssummary.json", output_uri + 7);
        FILE *f = n > 0 && (size_t)n < sizeof(where) ? fopen(where, "rb") : NULL;
        if (f == NULL)
            return GW_ENOTFOUND;
        char chunk[4096];
        size_t got;
        int rc = GW_OK;
        /* gw_buf_add is GW_ETOOBIG past SUMMARY_MAX; a read-only file's fclose cannot lose data */
        while (rc == GW_OK && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
            rc = gw_buf_add(out, chunk, got);
        (void)fclose(f);
        return rc == GW_OK ? GW_OK : GW_ENOTFOUND;
    }
    const char *bucket = strncmp(output_uri, "s3://", 5) == 0 ? output_uri + 5 : NULL;
    const char *slash = bucket ? strchr(bucket, '/') : NULL;
    if (slash == NULL || c->aws == NULL || (size_t)(slash - bucket) >= 64)
        return GW_ENOTFOUND;
    char name[64];
    gw_fmt(name, sizeof(name), "%.*s", (int)(slash - bucket), bucket);
    int n = snprintf(where, sizeof(where), "%ssummary.json", slash + 1);
    if (n < 0 || (size_t)n >= sizeof(where))
        return GW_ENOTFOUND;
    struct aws_error aerr;
    int rc = aws_s3_get_object(out, c->aws, name, where, SUMMARY_MAX, &aerr);
    if (rc == GW_ENOTFOUND || rc == GW_OK)
        return rc;
    GW_LOG_WARN("cache: cannot read s3://%s/%s: %s %s", name, where, aerr.code, aerr.message);
    return GW_EUNAVAIL;
}

static void read_summaries(struct jobs_cache *c)
{
    if (gw_monotonic_ns() < c->summary_retry_ns)
        return;
    PGresult *res = NULL;
    struct gw_err err = {0};
    if (db_cache_unread(&res, c->app->pool, SUMMARIES_PER_TICK, &err) != GW_OK)
        return;
    for (int i = 0; i < PQntuples(res) && !gw_shutting_down(); i++) {
        struct gw_buf b;
        gw_buf_init(&b, SUMMARY_MAX);
        int rc = summary_read(&b, c, PQgetvalue(res, i, 1));
        long long freed = rc == GW_OK ? summary_freed(b.data, b.len) : -1;
        gw_buf_dispose(&b);
        if (rc == GW_EUNAVAIL) {
            c->summary_retry_ns = gw_monotonic_ns() + SUMMARY_RETRY_S * 1000000000LL;
            break;
        }
        if (db_cache_op_freed(c->app->pool, PQgetvalue(res, i, 0), freed, &err) == GW_OK &&
            freed >= 0)
            GW_LOG_INFO("cache: cleanup job %s freed %lld bytes", PQgetvalue(res, i, 0), freed);
    }
    PQclear(res);
}

static int cache_run(void *arg)
{
    struct jobs_cache *c = arg;
    if (gw_shutting_down())
        return 0;
    const struct gw_config *cfg = c->app->cfg;
    int rescan = 0;
    char now[64];
    struct gw_err err = {0};
    if (db_cache_pending(&rescan, now, c->app->pool, cfg->cache_dir, &err) != GW_OK)
        return 0; /* the database is away: the next tick asks again */
    int64_t t = gw_monotonic_ns();
    if (rescan || c->last_scan_ns == 0 ||
        t - c->last_scan_ns >= cfg->cache_scan_interval_s * 1000000000LL)
        scan(c, now);
    read_summaries(c);
    return 0;
}

int jobs_cache_start(struct jobs_cache **out, struct jobs_app *app, struct aws_client *aws,
                     struct gw_err *err)
{
    *out = NULL;
    if (app->cfg->cache_scan_interval_s == 0)
        return GW_OK;
    gw_metrics_describe("mlgw_cache_bytes", "gauge", "Bytes in the model cache at the last scan.");
    gw_metrics_describe("mlgw_cache_files", "gauge", "Files in the model cache at the last scan.");
    gw_metrics_describe("mlgw_cache_entries", "gauge",
                        "Top-level entries (models) in the model cache at the last scan.");
    gw_metrics_describe("mlgw_cache_scans_total", "counter",
                        "Model cache scans by result (complete, partial: stopped at a bound, "
                        "error: the root could not be read).");
    gw_metrics_describe("mlgw_cache_scan_duration_seconds", "histogram",
                        "Time one model cache scan took.");
    gw_metrics_describe("mlgw_cache_policy_cleanups_total", "counter",
                        "Cleanups started because the cache was above MLGW_CACHE_MAX_BYTES.");
    struct jobs_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    c->app = app;
    c->aws = aws;
    int rc = gw_worker_start(&c->worker, "cache", TICK_MS, cache_run, c);
    if (rc != GW_OK) {
        free(c);
        return gw_err_set(err, rc, "cannot start the cache scanner's thread");
    }
    *out = c;
    return GW_OK;
}

void jobs_cache_stop(struct jobs_cache *c)
{
    if (c == NULL)
        return;
    gw_worker_stop(c->worker);
    free(c);
}
