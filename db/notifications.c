/*
 * notifications.c — SQL for the notifications table.
 */
#include "db/notifications.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"

#include "common/poison.h"

void db_notification_dispose(struct db_notification *n)
{
    if (n == NULL)
        return;
    free(n->recipient);
    free(n->job_json);
    n->recipient = NULL;
    n->job_json = NULL;
}

static const struct db_stmt claim_stmt = {
    "notification_claim",
    "WITH c AS (SELECT id FROM notifications WHERE sent_at IS NULL AND failed_at IS NULL "
    " AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now()) "
    " ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED LIMIT 1) "
    "UPDATE notifications n SET lease_until = now() + make_interval(secs => $1), "
    " attempts = n.attempts + 1 FROM c, jobs j WHERE n.id = c.id AND j.id = n.job_id "
    "RETURNING n.id, n.channel, n.status, n.recipient, n.attempts, "
    " mlgw_job_json(j, mlgw_job_history(j.id))",
    1};

int db_notification_claim(struct db_notification *out, struct db_pool *pool, int lease_s,
                          struct gw_err *err)
{
    return db_notification_claim_with(out, pool, &claim_stmt, lease_s, err);
}

int db_notification_claim_with(struct db_notification *out, struct db_pool *pool,
                               const struct db_stmt *claim, int lease_s, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    char lease[16];
    gw_fmt(lease, sizeof(lease), "%d", lease_s);
    const char *params[] = {lease};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, claim, params, err);
    if (rc == GW_OK && PQntuples(res) == 0)
        rc = GW_ENOTFOUND;
    if (rc == GW_OK) {
        gw_fmt(out->id, sizeof(out->id), "%s", PQgetvalue(res, 0, 0));
        gw_fmt(out->channel, sizeof(out->channel), "%s", PQgetvalue(res, 0, 1));
        gw_fmt(out->status, sizeof(out->status), "%s", PQgetvalue(res, 0, 2));
        out->recipient = strdup(PQgetvalue(res, 0, 3));
        long long n = 0;
        if (gw_parse_ll(&n, PQgetvalue(res, 0, 4), 0, 1000000) == GW_OK)
            out->attempts = (int)n;
        out->job_json = strdup(PQgetvalue(res, 0, 5));
        if (out->recipient == NULL || out->job_json == NULL) {
            db_notification_dispose(out);
            rc = gw_err_set(err, GW_ENOMEM, "out of memory");
        }
    }
    PQclear(res);
    return rc;
}

static const struct db_stmt sent_stmt = {
    "notification_sent",
    "UPDATE notifications SET sent_at = now(), lease_until = NULL, last_error = NULL, "
    "error_class = NULL WHERE id = $1",
    1};

int db_notification_sent(struct db_pool *pool, const char *id, struct gw_err *err)
{
    const char *p[] = {id};
    return db_pool_exec(NULL, pool, &sent_stmt, p, err);
}

static const struct db_stmt retry_stmt = {
    "notification_retry",
    "UPDATE notifications SET lease_until = NULL, last_error = $2, error_class = $4, "
    "next_attempt_at = now() + make_interval(secs => $3::float8 / 1000) WHERE id = $1",
    4};

int db_notification_retry(struct db_pool *pool, const char *id, const char *error,
                          const char *error_class, long delay_ms, struct gw_err *err)
{
    char delay[24];
    gw_fmt(delay, sizeof(delay), "%ld", delay_ms);
    const char *p[] = {id, error, delay, error_class};
    return db_pool_exec(NULL, pool, &retry_stmt, p, err);
}

static const struct db_stmt failed_stmt = {
    "notification_failed",
    "UPDATE notifications SET failed_at = now(), lease_until = NULL, last_error = $2, "
    "error_class = $3 WHERE id = $1",
    3};

int db_notification_failed(struct db_pool *pool, const char *id, const char *error,
                           const char *error_class, struct gw_err *err)
{
    const char *p[] = {id, error, error_class};
    return db_pool_exec(NULL, pool, &failed_stmt, p, err);
}
