/*
 * cache.h — the model cache seen from the gateway (API.md, "The model
 * cache"): the background scanner that keeps db/cache.h's snapshot of
 * cfg->cache_dir, the size policy, and the jobs that warm and clean the
 * cache (ordinary jobs of cfg->cache_script_key, recorded as cache
 * operations).
 *
 * The scanner is one worker thread per gateway. Every tick (2 s) it asks the
 * database whether a warm or cleanup job has ended since its last scan and
 * scans then, or when MLGW_CACHE_SCAN_INTERVAL has passed; it reads finished
 * cleanups' summary.json (file:// or S3) for what they freed. A scan larger
 * than MLGW_CACHE_MAX_BYTES starts one least-recently-used cleanup down to
 * 80 % of it, unless a cache operation is already running. Never on the
 * request path.
 */
#ifndef MLGW_JOBS_CACHE_H
#define MLGW_JOBS_CACHE_H

#include <jansson.h>

#include "aws/transport.h"
#include "jobs/app.h"

struct jobs_cache;

/* Starts the scanner (none when cfg->cache_scan_interval_s is 0: *out stays
 * NULL). aws (may be NULL) reads summaries from S3; app and aws must
 * outlive jobs_cache_stop. GW_ENOMEM, or gw_worker_start's code. */
int jobs_cache_start(struct jobs_cache **out, struct jobs_app *app, struct aws_client *aws,
                     struct gw_err *err);
/* Stops the scanner and frees c; NULL is a no-op. */
void jobs_cache_stop(struct jobs_cache *c);

/* The POST /jobs request of a cache operation (new: json_decref): the cache
 * script on CPU with operation ("warm-cache" or "cleanup-cache") and its
 * arguments — models (an array of names, may be NULL) or, for a cleanup,
 * older_than_days (> 0) — dispatched where cfg says cache jobs run. NULL
 * when out of memory. */
json_t *jobs_cache_request(const struct gw_config *cfg, const char *operation, const json_t *models,
                           long long older_than_days);

/* The dispatch target of cache jobs (MLGW_CACHE_DISPATCH, else MLGW_DISPATCH). */
const char *jobs_cache_dispatch(const struct gw_config *cfg);

/* Whether name can be a cache entry a job is asked about: 1–128 of
 * [A-Za-z0-9._-] starting with a letter or digit (cleanup_processor.py's rule). */
int jobs_cache_name_ok(const char *name);

#endif
