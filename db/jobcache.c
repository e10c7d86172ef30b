/*
 * jobcache.c — the in-memory job cache and its polling thread. One mutex
 * guards the table, the LRU list, the invalidation counters and the live
 * deadline; it is held for lookups and copies only, never across I/O.
 */
#include "db/jobcache.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/time.h"
#include "common/worker.h"
#include "db/pool.h"

#include "common/poison.h"

/* Invalidation counters: one per stripe of ids, so a change to one job only
 * refuses the stores of reads of its stripe that were in flight. */
enum { STRIPES = 256, KEY_LEN = 36, TEAM_MAX = 64, SNAPSHOT_MAX = 8192 };

struct entry {
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU list, most recent first */
    char id[KEY_LEN + 1];
    char team[TEAM_MAX + 1];
    int has_team;
    char etag[DB_JOBCACHE_ETAG_LEN + 1];
    size_t len, cost;
    char *json; /* len bytes and a NUL, in the same allocation, after the entry */
};

struct db_jobcache {
    pthread_mutex_t mu;
    size_t max_bytes, bytes, entries, nbuckets;
    struct entry **buckets;
    struct entry lru; /* sentinel */
    uint64_t gen[STRIPES];
    int64_t live_until_ns; /* 0: not serving */
    uint64_t hits, misses, stores, invalidations, evictions, flushes;
    /* the polling thread's own */
    const char *url;
    int connect_timeout_s;
    struct gw_worker *worker;
    PGconn *conn;
    int64_t last_proof_ns, cleanup_ns;
    char snapshot[SNAPSHOT_MAX];         /* the previous poll's pg_current_snapshot() */
    char cleanup_snapshot[SNAPSHOT_MAX]; /* one taken DB_JOBCACHE_CLEANUP_MS ago or more */
};

/* The canonical (lowercase) key of a job id; 0 when it is not 36 characters. */
static int make_key(char key[KEY_LEN + 1], const char *id)
{
    size_t n = strnlen(id, KEY_LEN + 1);
    if (n != KEY_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        key[i] = (char)tolower((unsigned char)id[i]);
    key[n] = '\0';
    return 1;
}

static uint64_t key_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *p = key; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static struct entry **slot_of(struct db_jobcache *c, const char *key, uint64_t h)
{
    struct entry **pp = &c->buckets[h & (c->nbuckets - 1)];
    while (*pp != NULL && strcmp((*pp)->id, key) != 0)
        pp = &(*pp)->hnext;
    return pp;
}

static void lru_unlink(struct entry *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
}

static void lru_push_front(struct db_jobcache *c, struct entry *e)
{
    e->next = c->lru.next;
    e->prev = &c->lru;
    c->lru.next->prev = e;
    c->lru.next = e;
}

/* Unlinks and frees the entry *pp points at; mu held. */
static void remove_at(struct db_jobcache *c, struct entry **pp)
{
    struct entry *e = *pp;
    *pp = e->hnext;
    lru_unlink(e);
    c->bytes -= e->cost;
    c->entries--;
    free(e);
}

static int live_locked(const struct db_jobcache *c)
{
    return c->live_until_ns != 0 && gw_monotonic_ns() < c->live_until_ns;
}

int db_jobcache_new(struct db_jobcache **out, size_t max_bytes)
{
    *out = NULL;
    struct db_jobcache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return GW_ENOMEM;
    /* About one bucket per 2 KiB of bound (a typical document), at least 1024. */
    c->nbuckets = 1024;
    while (c->nbuckets < max_bytes / 2048 && c->nbuckets < ((size_t)1 << 22))
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof(struct entry *));
    if (c->buckets == NULL) {
        free(c);
        return GW_ENOMEM;
    }
    c->max_bytes = max_bytes;
    c->lru.next = c->lru.prev = &c->lru;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return GW_OK;
}

static void flush_locked(struct db_jobcache *c)
{
    for (size_t i = 0; i < c->nbuckets; i++)
        while (c->buckets[i] != NULL)
            remove_at(c, &c->buckets[i]);
    for (size_t i = 0; i < STRIPES; i++)
        c->gen[i]++;
    c->flushes++;
}

void db_jobcache_flush(struct db_jobcache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    flush_locked(c);
    pthread_mutex_unlock(&c->mu);
}

void db_jobcache_set_live(struct db_jobcache *c, int live)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    if (!live)
        flush_locked(c);
    c->live_until_ns = live ? INT64_MAX : 0;
    pthread_mutex_unlock(&c->mu);
}

int db_jobcache_get(struct db_jobcache *c, const char *id, const char *team, char **json,
                    size_t *len, char etag[DB_JOBCACHE_ETAG_LEN + 1])
{
    *json = NULL;
    char key[KEY_LEN + 1];
    if (c == NULL || !make_key(key, id))
        return 0;
    uint64_t h = key_hash(key);
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    struct entry *e = live_locked(c) ? *slot_of(c, key, h) : NULL;
    /* Another team's job is not answered from here: the database says 404. */
    if (e != NULL && (team == NULL || (e->has_team && strcmp(team, e->team) == 0))) {
        *json = malloc(e->len + 1);
        if (*json != NULL) {
            memcpy(*json, e->json, e->len + 1);
            *len = e->len;
            memcpy(etag, e->etag, DB_JOBCACHE_ETAG_LEN + 1);
            lru_unlink(e);
            lru_push_front(c, e);
            hit = 1;
        }
    }
    if (hit)
        c->hits++;
    else
        c->misses++;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

uint64_t db_jobcache_ticket(struct db_jobcache *c, const char *id)
{
    char key[KEY_LEN + 1];
    if (c == NULL || !make_key(key, id))
        return 0;
    pthread_mutex_lock(&c->mu);
    uint64_t t = c->gen[key_hash(key) % STRIPES];
    pthread_mutex_unlock(&c->mu);
    return t;
}

/* Evicts least recently used entries until need more bytes fit; mu held. */
static void make_room(struct db_jobcache *c, size_t need)
{
    while (c->bytes + need > c->max_bytes && c->lru.prev != &c->lru) {
        struct entry *victim = c->lru.prev;
        remove_at(c, slot_of(c, victim->id, key_hash(victim->id)));
        c->evictions++;
    }
}

void db_jobcache_put(struct db_jobcache *c, uint64_t ticket, const char *id, const char *job_team,
                     const char *json, size_t len, const char *etag)
{
    char key[KEY_LEN + 1];
    if (c == NULL || !make_key(key, id) || (job_team != NULL && strlen(job_team) > TEAM_MAX))
        return;
    size_t cost = sizeof(struct entry) + len + 1;
    if (cost > c->max_bytes / 8)
        return;
    struct entry *e = malloc(cost);
    if (e == NULL)
        return;
    memset(e, 0, sizeof(*e));
    e->json = (char *)(e + 1);
    memcpy(e->id, key, sizeof(key));
    e->has_team = job_team != NULL;
    if (job_team != NULL)
        memcpy(e->team, job_team, strlen(job_team) + 1);
    memcpy(e->etag, etag, DB_JOBCACHE_ETAG_LEN);
    e->etag[DB_JOBCACHE_ETAG_LEN] = '\0';
    memcpy(e->json, json, len);
    e->json[len] = '\0';
    e->len = len;
    e->cost = cost;

    uint64_t h = key_hash(key);
    pthread_mutex_lock(&c->mu);
    if (!live_locked(c) || c->gen[h % STRIPES] != ticket) {
        pthread_mutex_unlock(&c->mu);
        free(e);
        return;
    }
    struct entry **pp = slot_of(c, key, h);
    if (*pp != NULL)
        remove_at(c, pp);
    make_room(c, cost);
    pp = &c->buckets[h & (c->nbuckets - 1)];
    e->hnext = *pp;
    *pp = e;
    lru_push_front(c, e);
    c->bytes += cost;
    c->entries++;
    c->stores++;
    pthread_mutex_unlock(&c->mu);
}

void db_jobcache_forget(struct db_jobcache *c, const char *id)
{
    char key[KEY_LEN + 1];
    if (c == NULL || !make_key(key, id))
        return;
    uint64_t h = key_hash(key);
    pthread_mutex_lock(&c->mu);
    c->gen[h % STRIPES]++;
    struct entry **pp = slot_of(c, key, h);
    if (*pp != NULL)
        remove_at(c, pp);
    c->invalidations++;
    pthread_mutex_unlock(&c->mu);
}

void db_jobcache_stats(struct db_jobcache *c, struct db_jobcache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    out->bytes = c->bytes;
    out->max_bytes = c->max_bytes;
    out->entries = c->entries;
    out->hits = c->hits;
    out->misses = c->misses;
    out->stores = c->stores;
    out->invalidations = c->invalidations;
    out->evictions = c->evictions;
    out->flushes = c->flushes;
    out->live = live_locked(c);
    pthread_mutex_unlock(&c->mu);
}

void db_jobcache_etag(char out[DB_JOBCACHE_ETAG_LEN + 1], const char *json, size_t len)
{
    unsigned char d[32];
    gw_sha256(d, json, len);
    out[0] = '"';
    gw_hex(out + 1, d, 16);
    out[DB_JOBCACHE_ETAG_LEN - 1] = '"';
    out[DB_JOBCACHE_ETAG_LEN] = '\0';
}

static const struct db_stmt trim_stmt = {
    "job_changes_trim",
    "WITH d AS (DELETE FROM job_changes WHERE $1 <> '' "
    "AND xid < pg_snapshot_xmin(nullif($1, '')::pg_snapshot) RETURNING 1) "
    "SELECT pg_current_snapshot()::text, (SELECT count(*) FROM d)",
    1};

int db_job_changes_trim(long *deleted, struct db_pool *pool, char *snapshot, size_t len,
                        struct gw_err *err)
{
    *deleted = 0;
    const char *params[] = {snapshot};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &trim_stmt, params, err);
    if (rc == GW_OK) {
        long long n = 0;
        if (gw_parse_ll(&n, PQgetvalue(res, 0, 1), 0, (long long)1 << 62) == GW_OK)
            *deleted = (long)n;
        const char *now = PQgetvalue(res, 0, 0);
        /* A snapshot that does not fit: start over next time. */
        if (strlen(now) < len)
            memcpy(snapshot, now, strlen(now) + 1);
        else
            snapshot[0] = '\0';
    }
    PQclear(res);
    return rc;
}

/* ---- the polling thread ---- */

/* The connection is gone or cannot be trusted: stop serving, start empty. */
static void poll_lost(struct db_jobcache *c)
{
    if (c->conn != NULL) {
        PQfinish(c->conn);
        c->conn = NULL;
        GW_LOG_WARN("job cache: lost its database connection; serving from the database until "
                    "it is back");
    }
    db_jobcache_set_live(c, 0);
}

/* Every change up to the snapshot just taken is applied: the cache may
 * serve for DB_JOBCACHE_LIVE_MS more. */
static void prove_alive(struct db_jobcache *c, int64_t now)
{
    c->last_proof_ns = now;
    pthread_mutex_lock(&c->mu);
    c->live_until_ns = now + (int64_t)DB_JOBCACHE_LIVE_MS * 1000000;
    pthread_mutex_unlock(&c->mu);
}

static int poll_connect(struct db_jobcache *c)
{
    struct gw_err err = {0};
    PGresult *r = NULL;
    if (db_connect(&c->conn, c->url, c->connect_timeout_s, "ml-gateway-jobcache", &err) != GW_OK)
        return GW_EUNAVAIL;
    /* Until migrations/0012 is applied nothing records changes. */
    r = PQexec(c->conn, "SELECT pg_current_snapshot()::text FROM pg_class "
                        "WHERE oid = to_regclass('job_changes')");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        gw_fmt(c->snapshot, sizeof(c->snapshot), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!ok) {
        PQfinish(c->conn);
        c->conn = NULL;
        return GW_EUNAVAIL;
    }
    /* Changes before that snapshot are not reported: start empty. */
    db_jobcache_flush(c);
    int64_t now = gw_monotonic_ns();
    c->cleanup_ns = now;
    memcpy(c->cleanup_snapshot, c->snapshot, sizeof(c->snapshot));
    prove_alive(c, now);
    GW_LOG_INFO("job cache: following job changes");
    return GW_OK;
}

/* The jobs whose changes committed after the previous snapshot and up to
 * this statement's own (which becomes the next "previous"). */
static const char poll_sql[] =
    "SELECT pg_current_snapshot()::text, coalesce((SELECT string_agg(DISTINCT job_id::text, ',') "
    "FROM job_changes WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) "
    "AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)), '')";

/* Rows of transactions that ended before a snapshot taken a minute ago:
 * every serving cache has read them since (it polls every few milliseconds
 * and stops serving after DB_JOBCACHE_LIVE_MS without a poll). */
static const char cleanup_sql[] =
    "DELETE FROM job_changes WHERE xid < pg_snapshot_xmin($1::pg_snapshot)";

static void apply_changes(struct db_jobcache *c, const char *ids)
{
    char id[KEY_LEN + 1];
    for (const char *p = ids; *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == KEY_LEN) {
            memcpy(id, p, n);
            id[n] = '\0';
            db_jobcache_forget(c, id);
        }
        p += n;
        if (*p == ',')
            p++;
    }
}

static void cleanup(struct db_jobcache *c, int64_t now)
{
    if (now - c->cleanup_ns < (int64_t)DB_JOBCACHE_CLEANUP_MS * 1000000)
        return;
    const char *params[] = {c->cleanup_snapshot};
    PGresult *r = PQexecParams(c->conn, cleanup_sql, 1, NULL, params, NULL, NULL, 0);
    PQclear(r);
    c->cleanup_ns = now;
    memcpy(c->cleanup_snapshot, c->snapshot, sizeof(c->snapshot));
}

/* One turn: (re)connect if needed, then read which jobs changed since the
 * last turn and drop them; next turn in DB_JOBCACHE_POLL_MS. */
static int poll_run(void *arg)
{
    struct db_jobcache *c = arg;
    if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK) {
        poll_lost(c);
        if (poll_connect(c) != GW_OK) {
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
            return 0;
        }
    }
    const char *params[] = {c->snapshot};
    PGresult *r = PQexecParams(c->conn, poll_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        PQclear(r);
        poll_lost(c);
        return 0;
    }
    int64_t now = gw_monotonic_ns();
    apply_changes(c, PQgetvalue(r, 0, 1));
    gw_fmt(c->snapshot, sizeof(c->snapshot), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    /* A turn that came too late: other gateways may have cleaned up rows
     * this one never read. */
    if (now - c->last_proof_ns > (int64_t)DB_JOBCACHE_LIVE_MS * 1000000)
        db_jobcache_flush(c);
    prove_alive(c, now);
    cleanup(c, now);
    return DB_JOBCACHE_POLL_MS;
}

int db_jobcache_start(struct db_jobcache *c, const char *url, int connect_timeout_s)
{
    c->url = url;
    c->connect_timeout_s = connect_timeout_s;
    return gw_worker_start(&c->worker, "jobcache", DB_JOBCACHE_POLL_MS, poll_run, c);
}

void db_jobcache_free(struct db_jobcache *c)
{
    if (c == NULL)
        return;
    gw_worker_stop(c->worker);
    if (c->conn != NULL)
        PQfinish(c->conn);
    db_jobcache_flush(c);
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
