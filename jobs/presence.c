/*
 * presence.c — the advisory lock that says "this gateway is alive"
 * (presence.h). A worker checks the connection every second and, when it is
 * gone, connects again and takes the lock again. Server-side TCP keepalives
 * are asked for on this connection so that a vanished host is noticed in
 * seconds, not hours.
 */
#include "jobs/presence.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/id.h"
#include "common/log.h"
#include "common/worker.h"
#include "db/pool.h"

#include "common/poison.h"

struct jobs_presence {
    const struct gw_config *cfg;
    int64_t key;
    atomic_int held;
    struct gw_worker *self;
    PGconn *conn; /* the worker's alone */
};

static void drop(struct jobs_presence *p)
{
    if (p->conn != NULL)
        PQfinish(p->conn);
    p->conn = NULL;
    atomic_store(&p->held, 0);
}

/* Runs sql (no parameters) on p->conn; 1 when it returned status. */
static int run(struct jobs_presence *p, const char *sql, ExecStatusType status)
{
    PGresult *r = PQexec(p->conn, sql);
    int ok = r != NULL && PQresultStatus(r) == status;
    PQclear(r);
    return ok;
}

static int take_lock(struct jobs_presence *p)
{
    struct gw_err err = {0};
    if (db_connect(&p->conn, p->cfg->database_url, (int)p->cfg->db_connect_timeout_s,
                   "ml-gateway-presence", &err) != GW_OK) {
        GW_LOG_DEBUG("presence: %s", err.msg);
        return 0;
    }
    char sql[96];
    gw_fmt(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", (long long)p->key);
    /* Keepalives on the server's side of this session: a dead host's lock is
     * released after about 5 + 3 x 1 seconds of silence. */
    if (!run(p, "SET tcp_keepalives_idle = 5", PGRES_COMMAND_OK) ||
        !run(p, "SET tcp_keepalives_interval = 1", PGRES_COMMAND_OK) ||
        !run(p, "SET tcp_keepalives_count = 3", PGRES_COMMAND_OK) ||
        !run(p, sql, PGRES_TUPLES_OK)) {
        drop(p);
        return 0;
    }
    atomic_store(&p->held, 1);
    GW_LOG_INFO("presence: holding gateway key %lld", (long long)p->key);
    return 1;
}

static int presence_run(void *arg)
{
    struct jobs_presence *p = arg;
    if (p->conn != NULL &&
        (PQstatus(p->conn) != CONNECTION_OK || !run(p, "SELECT 1", PGRES_TUPLES_OK))) {
        GW_LOG_WARN("presence: lost the database session; this gateway claims nothing until it "
                    "is back");
        drop(p);
    }
    if (p->conn == NULL)
        (void)take_lock(p);
    return 0;
}

int jobs_presence_start(struct jobs_presence **out, const struct gw_config *cfg, struct gw_err *err)
{
    *out = NULL;
    struct jobs_presence *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    unsigned char r[8];
    if (gw_random_bytes(r, sizeof(r)) != GW_OK) {
        free(p);
        return gw_err_set(err, GW_EIO, "no randomness for the gateway key");
    }
    uint64_t k = 0;
    for (size_t i = 0; i < sizeof(r); i++)
        k = k << 8 | r[i];
    p->key = (int64_t)(k & 0x3fffffffffffffffULL);
    if (p->key == 0)
        p->key = 1;
    p->cfg = cfg;
    atomic_init(&p->held, 0);
    (void)take_lock(p); /* now, so that dispatchers may claim at once */
    int rc = gw_worker_start(&p->self, "presence", 1000, presence_run, p);
    if (rc != GW_OK) {
        drop(p);
        free(p);
        return gw_err_set(err, rc, "cannot start the presence worker");
    }
    *out = p;
    return GW_OK;
}

void jobs_presence_stop(struct jobs_presence *p)
{
    if (p == NULL)
        return;
    gw_worker_stop(p->self);
    drop(p); /* ending the session releases the lock */
    free(p);
}

int64_t jobs_presence_key(const struct jobs_presence *p)
{
    return p->key;
}

int jobs_presence_held(const struct jobs_presence *p)
{
    return atomic_load(&((struct jobs_presence *)(uintptr_t)p)->held);
}
