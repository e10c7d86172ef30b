/*
 * listener.c — a worker of its own that holds one connection in LISTEN and
 * turns notifications into gw_worker_wake() calls. It never touches rows.
 */
#include "jobs/listener.h"

#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "db/pool.h"

#include "common/poison.h"

struct jobs_listener {
    const struct gw_config *cfg;
    const char *channel;
    struct gw_worker *const *workers;
    int n;
    struct gw_worker *self;
    PGconn *conn;
};

static void drop(struct jobs_listener *l)
{
    if (l->conn != NULL)
        PQfinish(l->conn);
    l->conn = NULL;
}

/* One turn: (re)connect if needed, then wait up to 500 ms for notifications. */
static int listen_run(void *arg)
{
    struct jobs_listener *l = arg;
    if (l->conn == NULL || PQstatus(l->conn) != CONNECTION_OK) {
        drop(l);
        struct gw_err err = {0};
        char sql[96];
        gw_fmt(sql, sizeof(sql), "LISTEN %s", l->channel);
        PGresult *r = NULL;
        if (db_connect(&l->conn, l->cfg->database_url, (int)l->cfg->db_connect_timeout_s,
                       "ml-gateway-listen", &err) != GW_OK ||
            PQresultStatus(r = PQexec(l->conn, sql)) != PGRES_COMMAND_OK) {
            PQclear(r);
            drop(l);
            /* Polling covers the workers meanwhile; do not hammer a database
             * that is down. */
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
            return 0;
        }
        PQclear(r);
    }
    struct pollfd pfd = {.fd = PQsocket(l->conn), .events = POLLIN};
    if (poll(&pfd, 1, 500) <= 0)
        return 0;
    if (PQconsumeInput(l->conn) == 0) {
        drop(l);
        return 0;
    }
    int woke = 0;
    PGnotify *nf;
    while ((nf = PQnotifies(l->conn)) != NULL) {
        PQfreemem(nf);
        woke = 1;
    }
    for (int i = 0; woke && i < l->n; i++)
        gw_worker_wake(l->workers[i]);
    return 0;
}

int jobs_listener_start(struct jobs_listener **out, const struct gw_config *cfg,
                        const char *channel, struct gw_worker *const *workers, int n)
{
    *out = NULL;
    struct jobs_listener *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return GW_ENOMEM;
    l->cfg = cfg;
    l->channel = channel;
    l->workers = workers;
    l->n = n;
    int rc = gw_worker_start(&l->self, channel, 1, listen_run, l);
    if (rc != GW_OK) {
        free(l);
        return rc;
    }
    *out = l;
    return GW_OK;
}

void jobs_listener_stop(struct jobs_listener *l)
{
    if (l == NULL)
        return;
    gw_worker_stop(l->self);
    drop(l);
    free(l);
}
