/*
 * auth.c — API-key authentication and scope checks for every route that
 * names a scope. Keys arrive as "Authorization: Bearer <key>"; only their
 * SHA-256 is looked up. Verified keys are cached for MLGW_AUTH_CACHE_SECONDS
 * (so a revocation takes effect within that time); unknown keys never are.
 */
#include <openssl/crypto.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/log.h"
#include "common/time.h"
#include "db/api_keys.h"
#include "jobs/app.h"
#include "routes/routes.h"

#include "common/poison.h"

enum { CACHE_SLOTS = 256, MAX_KEY_LEN = 256 };

struct cached_key {
    unsigned char hash[32];
    char id[40];
    unsigned scopes;
    int64_t expires_ns;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cached_key cache[CACHE_SLOTS];

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

static void cache_put(const unsigned char hash[32], const char *id, unsigned scopes,
                      long long ttl_s)
{
    if (ttl_s <= 0)
        return;
    pthread_mutex_lock(&cache_mu);
    struct cached_key *e = &cache[hash[0]];
    memcpy(e->hash, hash, 32);
    gw_fmt(e->id, sizeof(e->id), "%s", id);
    e->scopes = scopes;
    e->expires_ns = gw_monotonic_ns() + ttl_s * 1000000000LL;
    pthread_mutex_unlock(&cache_mu);
}

static int unauthorized(struct rt_request *req, struct rt_reply *out, const char *detail)
{
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

int rt_authorize(struct rt_request *req, unsigned scope, struct rt_reply *out)
{
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
        struct jobs_app *app = req->app;
        struct gw_err err = {0};
        struct db_conn *c = NULL;
        struct db_api_key_auth a;
        int rc = db_pool_checkout(&c, app->pool, &err);
        if (rc == GW_OK)
            rc = db_api_key_lookup(&a, c, hash, &err);
        if (rc == GW_OK && !a.revoked && a.touch_due && db_api_key_touch(c, a.id, &err) != GW_OK)
            GW_LOG_WARN("could not record the use of API key %s: %s", a.id, err.msg);
        db_pool_checkin(app->pool, c);
        if (rc == GW_ENOTFOUND)
            return unauthorized(req, out, "unknown API key");
        if (rc != GW_OK) {
            rt_reply_error(req, out, rc, &err);
            return 1;
        }
        if (a.revoked)
            return unauthorized(req, out, "this API key has been revoked");
        gw_fmt(k.id, sizeof(k.id), "%s", a.id);
        k.scopes = a.scopes;
        cache_put(hash, a.id, a.scopes, app->cfg->auth_cache_seconds);
    }
    gw_fmt(req->auth_key_id, sizeof(req->auth_key_id), "%s", k.id);
    req->auth_scopes = k.scopes;
    if ((k.scopes & DB_SCOPE_ADMIN) || (k.scopes & scope) == scope)
        return 0;
    char detail[96];
    gw_fmt(detail, sizeof(detail), "this API key lacks the %s scope", scope_name(scope));
    rt_reply_problem(req, out, 403, "Forbidden", detail, NULL);
    return 1;
}
