/*
 * auth.c — API-key authentication and scope checks for every route that
 * names a scope. Keys arrive as "Authorization: Bearer <key>"; only their
 * SHA-256 is looked up. Verified keys are cached for MLGW_AUTH_CACHE_SECONDS
 * (so a revocation takes effect within that time); an unknown key is
 * remembered for a minute so that repeating it costs no query.
 *
 * Limits: each key has a token bucket (its own --rate/--burst, else
 * MLGW_RATE_LIMIT/MLGW_RATE_BURST): past it, 429 with Retry-After. Failed
 * authentications are counted per client address
 * (MLGW_AUTH_FAILURES_PER_MINUTE): an address over its budget gets 429
 * without a database query for any key not already verified.
 */
#include <openssl/crypto.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "common/time.h"
#include "db/api_keys.h"
#include "jobs/app.h"
#include "routes/routes.h"

#include "common/poison.h"

enum {
    CACHE_SLOTS = 256,
    MAX_KEY_LEN = 256,
    UNKNOWN_SLOTS = 1024, /* remembered unknown keys */
    UNKNOWN_TTL_S = 60,   /* how long an unknown key is not looked up again */
    LIMIT_SLOTS = 16384,  /* token buckets per table (keys; client addresses) */
};

struct cached_key {
    unsigned char hash[32];
    char id[40];
    char team[65];
    unsigned scopes;
    double rate_per_s; /* 0: the default */
    long burst;        /* 0: the default */
    int64_t expires_ns;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cached_key cache[CACHE_SLOTS];

/* Keys the database did not know: a client repeating one costs no query. */
static struct {
    unsigned char hash[32];
    int64_t expires_ns;
} unknown[UNKNOWN_SLOTS];

/* Request budgets per API key, and failed-authentication budgets per client
 * address, for the process's life. */
static pthread_once_t limits_once = PTHREAD_ONCE_INIT;
static struct gw_ratelimit *key_limits, *fail_limits;

static void limits_init(void)
{
    if (gw_ratelimit_new(&key_limits, LIMIT_SLOTS) != GW_OK ||
        gw_ratelimit_new(&fail_limits, LIMIT_SLOTS) != GW_OK)
        GW_LOG_ERROR("no memory for rate limits: requests are not limited");
}

static int cache_get(struct cached_key *out, const unsigned char hash[32])
{
    int hit = 0;
    pthread_mutex_lock(&cache_mu);
    struct cached_key *e = &cache[hash[0]];
    if (e->expires_ns > gw_monotonic_ns() && CRYPTO_memcmp(e->hash, hash, 32) == 0) {
        *out = *e;
        hit = 1;
    }
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

static void cache_put(const unsigned char hash[32], const struct cached_key *k, long long ttl_s)
{
    if (ttl_s <= 0)
        return;
    pthread_mutex_lock(&cache_mu);
    struct cached_key *e = &cache[hash[0]];
    *e = *k;
    memcpy(e->hash, hash, 32);
    e->expires_ns = gw_monotonic_ns() + ttl_s * 1000000000LL;
    pthread_mutex_unlock(&cache_mu);
}

static size_t unknown_slot(const unsigned char hash[32])
{
    return ((size_t)hash[1] << 8 | hash[2]) % UNKNOWN_SLOTS;
}

static int unknown_get(const unsigned char hash[32])
{
    pthread_mutex_lock(&cache_mu);
    size_t i = unknown_slot(hash);
    int hit =
        unknown[i].expires_ns > gw_monotonic_ns() && CRYPTO_memcmp(unknown[i].hash, hash, 32) == 0;
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

static void unknown_put(const unsigned char hash[32])
{
    pthread_mutex_lock(&cache_mu);
    size_t i = unknown_slot(hash);
    memcpy(unknown[i].hash, hash, 32);
    unknown[i].expires_ns = gw_monotonic_ns() + UNKNOWN_TTL_S * 1000000000LL;
    pthread_mutex_unlock(&cache_mu);
}

static void too_many(struct rt_request *req, struct rt_reply *out, long retry_after_s,
                     const char *detail)
{
    char ra[24];
    gw_fmt(ra, sizeof(ra), "%ld", retry_after_s);
    rt_reply_problem(req, out, 429, "Too Many Requests", detail, NULL);
    rt_reply_header(out, MHD_HTTP_HEADER_RETRY_AFTER, ra);
}

/* The client address's failed-authentication budget (a minute's worth). */
static double fail_rate(const struct gw_config *cfg)
{
    return (double)cfg->auth_failures_per_minute / 60.0;
}

static int unauthorized(struct rt_request *req, struct rt_reply *out, const char *detail)
{
    const struct gw_config *cfg = req->app->cfg;
    if (fail_limits != NULL && cfg->auth_failures_per_minute > 0)
        (void)gw_ratelimit_take(fail_limits, req->client_addr, fail_rate(cfg),
                                (double)cfg->auth_failures_per_minute, gw_monotonic_ns(), NULL);
    rt_reply_problem(req, out, 401, "Unauthorized", detail, NULL);
    rt_reply_header(out, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"ml-gateway\"");
    return 1;
}

static const char *scope_name(unsigned scope)
{
    switch (scope) {
    case DB_SCOPE_JOBS_READ: return "jobs:read";
    case DB_SCOPE_JOBS_WRITE: return "jobs:write";
    default: return "admin";
    }
}

/* Looks the key up in the database (and records its use). 0 with *k filled;
 * otherwise the reply is filled and 1 returned. */
static int lookup(struct cached_key *k, struct rt_request *req, struct rt_reply *out,
                  const unsigned char hash[32])
{
    struct jobs_app *app = req->app;
    struct gw_err err = {0};
    struct db_conn *c = NULL;
    struct db_api_key_auth a;
    int rc = db_pool_checkout(&c, app->request_pool, &err);
    if (rc == GW_OK)
        rc = db_api_key_lookup(&a, c, hash, &err);
    if (rc == GW_OK && !a.revoked && a.touch_due && db_api_key_touch(c, a.id, &err) != GW_OK)
        GW_LOG_WARN("could not record the use of API key %s: %s", a.id, err.msg);
    db_pool_checkin(app->request_pool, c);
    if (rc == GW_ENOTFOUND) {
        unknown_put(hash);
        return unauthorized(req, out, "unknown API key");
    }
    if (rc != GW_OK) {
        rt_reply_error(req, out, rc, &err);
        return 1;
    }
    if (a.revoked)
        return unauthorized(req, out, "this API key has been revoked");
    memset(k, 0, sizeof(*k));
    gw_fmt(k->id, sizeof(k->id), "%s", a.id);
    gw_fmt(k->team, sizeof(k->team), "%s", a.team);
    k->scopes = a.scopes;
    k->rate_per_s = a.rate_per_s;
    k->burst = a.burst;
    cache_put(hash, k, app->cfg->auth_cache_seconds);
    return 0;
}

int rt_authorize(struct rt_request *req, unsigned scope, struct rt_reply *out)
{
    const struct gw_config *cfg = req->app->cfg;
    (void)pthread_once(&limits_once, limits_init);
    const char *h = rt_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL)
        return unauthorized(req, out, "an API key is required (Authorization: Bearer <key>)");
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return unauthorized(req, out, "the Authorization header must be \"Bearer <key>\"");
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    size_t len = strlen(key);
    if (len == 0 || len > MAX_KEY_LEN)
        return unauthorized(req, out, "unknown API key");

    unsigned char hash[32];
    gw_sha256(hash, key, len);
    struct cached_key k;
    if (!cache_get(&k, hash)) {
        if (unknown_get(hash))
            return unauthorized(req, out, "unknown API key");
        /* An address that keeps failing is not worth a query any more. */
        long wait_s = 0;
        if (fail_limits != NULL && cfg->auth_failures_per_minute > 0 &&
            !gw_ratelimit_peek(fail_limits, req->client_addr, fail_rate(cfg),
                               (double)cfg->auth_failures_per_minute, gw_monotonic_ns(), &wait_s)) {
            too_many(req, out, wait_s, "too many failed authentications from this address");
            return 1;
        }
        if (lookup(&k, req, out, hash) != 0)
            return 1;
    }
    gw_fmt(req->auth_key_id, sizeof(req->auth_key_id), "%s", k.id);
    gw_fmt(req->auth_team, sizeof(req->auth_team), "%s", k.team);
    req->auth_scopes = k.scopes;
    if (!(k.scopes & DB_SCOPE_ADMIN) && (k.scopes & scope) != scope) {
        char detail[96];
        gw_fmt(detail, sizeof(detail), "this API key lacks the %s scope", scope_name(scope));
        rt_reply_problem(req, out, 403, "Forbidden", detail, NULL);
        return 1;
    }
    double rate = k.rate_per_s > 0 ? k.rate_per_s : (double)cfg->rate_limit;
    double burst = k.burst > 0 ? (double)k.burst : (double)cfg->rate_burst;
    long wait_s = 0;
    if (key_limits != NULL &&
        !gw_ratelimit_take(key_limits, k.id, rate, burst, gw_monotonic_ns(), &wait_s)) {
        too_many(req, out, wait_s, "this API key is over its request rate; retry later");
        return 1;
    }
    return 0;
}
