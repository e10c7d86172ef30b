/*
 * jobs.c — SQL for jobs, job_history and idempotency_keys.
 */
#include "db/jobs.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"
#include "db/idempotency.h"

#include "common/poison.h"

#define JOB_INSERT_CTE                                                                             \
    "WITH j AS (INSERT INTO jobs (id, status, script_key, compute_type, vcpus, memory, gpus, "     \
    "args, env, timeout_seconds, max_attempts, operation, metadata, notify, dispatch, "            \
    "output_uri, api_key_id, team) VALUES ($1, 'QUEUED', $2, $3, $4, $5, $6, $7, $8, $9, $10, "    \
    "$11, $12, $13, $14, $15, $16, $17) RETURNING *), "                                            \
    "h AS (INSERT INTO job_history (job_id, status, source, at) "                                  \
    "SELECT id, 'QUEUED', 'api', created_at FROM j RETURNING status, at, source, reason), "        \
    "o AS (INSERT INTO dispatch_outbox (job_id, action, target, created_at) "                      \
    "SELECT id, 'submit', dispatch, created_at FROM j) "                                           \
    "SELECT mlgw_job_json(j::jobs, (SELECT json_agg(json_build_object('status', h.status, "        \
    "'at', mlgw_ts(h.at), 'source', h.source, 'reason', h.reason, 'applied', true)) FROM h)) "     \
    "FROM j"

/* One statement: job, first history row and the dispatch outbox row commit
 * together (the outbox's trigger wakes the dispatchers), in one round trip. */
static const struct db_stmt insert_stmt = {"job_insert", JOB_INSERT_CTE, 17};

/* The statement's parameters for jw->job, pointing into jw. */
static void job_params(struct db_job_write *jw)
{
    const struct db_job_new *job = &jw->job;
    gw_fmt(jw->nums[0], sizeof(jw->nums[0]), "%lld", job->vcpus);
    gw_fmt(jw->nums[1], sizeof(jw->nums[1]), "%lld", job->memory);
    gw_fmt(jw->nums[2], sizeof(jw->nums[2]), "%lld", job->gpus);
    gw_fmt(jw->nums[3], sizeof(jw->nums[3]), "%lld", job->max_attempts);
    gw_fmt(jw->timeout, sizeof(jw->timeout), "%lld", job->timeout_seconds);
    const char *params[17] = {
        job->id,          job->script_key, job->compute_type,
        jw->nums[0],      jw->nums[1],     jw->nums[2],
        job->args_json,   job->env_json,   job->timeout_seconds >= 0 ? jw->timeout : NULL,
        jw->nums[3],      job->operation,  job->metadata_json,
        job->notify_json, job->dispatch,   job->output_uri,
        job->api_key_id,  job->team,
    };
    memcpy(jw->params, params, sizeof(params));
}

/* The inserted job's JSON, the statement's one value. */
static int read_job(void *arg, const PGresult *res, struct gw_err *err)
{
    struct db_job_write *jw = arg;
    free(jw->out.json);
    jw->out.json = strdup(PQgetvalue(res, 0, 0));
    if (jw->out.json == NULL)
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    jw->out.status = 202;
    return GW_OK;
}

/* The job's guard (if any), then the job, on c inside a transaction. */
static int guarded_insert(struct db_job_write *jw, struct db_conn *c, struct gw_err *err)
{
    if (jw->job.guard != NULL) {
        int rc = jw->job.guard->fn(c, jw->job.id, jw->job.guard->arg, err);
        if (rc != GW_OK)
            return rc;
    }
    PGresult *res = NULL;
    int rc = db_exec(&res, c, &insert_stmt, jw->params, err);
    if (rc == GW_OK)
        rc = read_job(jw, res, err);
    PQclear(res);
    return rc;
}

void db_job_created_reset(struct db_job_created *out)
{
    free(out->json);
    memset(out, 0, sizeof(*out));
}

static int create_idempotent(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct db_job_write *jw = arg;
    db_job_created_reset(&jw->out); /* run again when its batch is */
    /* Locks the key until commit, or replays the first answer. */
    int rc = db_idem_replay(&jw->out, c, &jw->idem, err);
    if (rc != 0)
        return rc > 0 ? GW_OK : rc;
    rc = guarded_insert(jw, c, err);
    if (rc != GW_OK)
        return rc;
    char location[64];
    gw_fmt(location, sizeof(location), "/jobs/%s", jw->job.id);
    return db_idem_save(c, &jw->idem, 202, jw->out.json, location, err);
}

static int create_guarded(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct db_job_write *jw = arg;
    db_job_created_reset(&jw->out); /* run again when its batch is */
    return guarded_insert(jw, c, err);
}

void db_job_write_init(struct db_job_write *jw, const struct db_job_new *job,
                       const struct db_idempotency *idem)
{
    memset(jw, 0, sizeof(*jw));
    jw->job = *job;
    job_params(jw);
    jw->w.arg = jw;
    if (idem != NULL) {
        jw->idem = *idem;
        jw->w.fn = create_idempotent;
    } else if (job->guard != NULL) {
        jw->w.fn = create_guarded;
    } else {
        jw->w.stmt = &insert_stmt;
        jw->w.params = jw->params;
        jw->w.row = read_job;
    }
}

void db_job_write_dispose(struct db_job_write *jw)
{
    db_job_created_reset(&jw->out);
}

int db_job_create(struct db_job_created *out, struct db_pool *pool, const struct db_job_new *job,
                  const struct db_idempotency *idem, struct gw_err *err)
{
    struct db_job_write jw;
    db_job_write_init(&jw, job, idem);
    int rc = db_write_now(pool, &jw.w);
    if (rc != GW_OK) {
        *err = jw.w.err;
        db_job_write_dispose(&jw);
    }
    *out = jw.out;
    return rc;
}

/* The job with its history and, last, its notifications; then its team. */
static const struct db_stmt get_stmt = {
    "job_get",
    "SELECT left(mlgw_job_json(j, mlgw_job_history(j.id))::text, -1) || ',\"notifications\":' "
    "|| mlgw_job_notifications(j.id)::text || '}', coalesce(j.team, '') FROM jobs j "
    "WHERE j.id = $1 AND ($2::text IS NULL OR j.team = $2)",
    2};

static int read_on(char **out, char *job_team, struct db_conn *c, const char *id, const char *team,
                   struct gw_err *err)
{
    *out = NULL;
    PGresult *res = NULL;
    const char *params[] = {id, team};
    int rc = db_exec(&res, c, &get_stmt, params, err);
    if (rc == GW_OK && PQntuples(res) == 0)
        rc = gw_err_public(err, GW_ENOTFOUND, "no job %s", id);
    if (rc == GW_OK && (*out = strdup(PQgetvalue(res, 0, 0))) == NULL)
        rc = gw_err_set(err, GW_ENOMEM, "out of memory");
    if (rc == GW_OK && job_team != NULL)
        gw_fmt(job_team, 65, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return rc;
}

static int get_on(char **out, struct db_conn *c, const char *id, const char *team,
                  struct gw_err *err)
{
    return read_on(out, NULL, c, id, team, err);
}

int db_job_read(char **out, char job_team[65], struct db_pool *pool, const char *id,
                const char *team, struct gw_err *err)
{
    *out = NULL;
    struct db_conn *c = NULL;
    int rc = db_pool_checkout(&c, pool, err);
    if (rc != GW_OK)
        return rc;
    rc = read_on(out, job_team, c, id, team, err);
    db_pool_checkin(pool, c);
    return rc;
}

int db_job_get(char **out, struct db_pool *pool, const char *id, const char *team,
               struct gw_err *err)
{
    return db_job_read(out, NULL, pool, id, team, err);
}

int db_job_list(char **items, char next_id[37], struct db_pool *pool, const struct db_job_filter *f,
                struct gw_err *err)
{
    *items = NULL;
    next_id[0] = '\0';
    /* The query's shape follows the filters present; values stay parameters. */
    static const struct {
        const char *column, *cast;
        size_t offset;
    } filters[] = {
        {"status", "", offsetof(struct db_job_filter, status)},
        {"compute_type", "", offsetof(struct db_job_filter, compute_type)},
        {"meta_user", "", offsetof(struct db_job_filter, user)},
        {"meta_project", "", offsetof(struct db_job_filter, project)},
        {"meta_experiment", "", offsetof(struct db_job_filter, experiment)},
        {"created_at >", "::timestamptz", offsetof(struct db_job_filter, created_after)},
        {"created_at <", "::timestamptz", offsetof(struct db_job_filter, created_before)},
        {"id <", "::uuid", offsetof(struct db_job_filter, before_id)},
        {"team", "", offsetof(struct db_job_filter, team)},
    };
    const char *params[GW_ARRAY_LEN(filters) + 1];
    int n = 0;
    struct gw_buf sql;
    gw_buf_init(&sql, 4096);
    int rc = gw_buf_adds(&sql, "SELECT mlgw_job_json(j, NULL), j.id FROM jobs j WHERE true");
    for (size_t i = 0; rc == GW_OK && i < GW_ARRAY_LEN(filters); i++) {
        const char *v;
        memcpy(&v, (const char *)f + filters[i].offset, sizeof(v));
        if (v == NULL)
            continue;
        params[n++] = v;
        const char *col = filters[i].column;
        int has_op = strchr(col, ' ') != NULL; /* "created_at >" brings its operator */
        rc = gw_buf_printf(&sql, " AND %s%s$%d%s", col, has_op ? " " : " = ", n, filters[i].cast);
    }
    char limit[16];
    gw_fmt(limit, sizeof(limit), "%d", f->limit + 1); /* one more: is there a next page? */
    params[n++] = limit;
    if (rc == GW_OK)
        rc = gw_buf_printf(&sql, " ORDER BY j.id DESC LIMIT $%d", n);
    if (rc != GW_OK) {
        gw_buf_dispose(&sql);
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    }

    struct db_conn *c = NULL;
    PGresult *res = NULL;
    rc = db_pool_checkout(&c, pool, err);
    if (rc == GW_OK)
        rc = db_exec_params(&res, c, sql.data, n, params, err);
    db_pool_checkin(pool, c);
    gw_buf_dispose(&sql);
    if (rc != GW_OK)
        return rc;

    struct gw_buf out;
    gw_buf_init(&out, (size_t)256 << 20);
    int rows = PQntuples(res);
    int shown = rows > f->limit ? f->limit : rows;
    rc = gw_buf_adds(&out, "[");
    for (int i = 0; rc == GW_OK && i < shown; i++) {
        if (i > 0)
            rc = gw_buf_adds(&out, ",");
        if (rc == GW_OK)
            rc = gw_buf_adds(&out, PQgetvalue(res, i, 0));
    }
    if (rc == GW_OK)
        rc = gw_buf_adds(&out, "]");
    if (rows > f->limit && shown > 0)
        gw_fmt(next_id, 37, "%s", PQgetvalue(res, shown - 1, 1));
    PQclear(res);
    if (rc != GW_OK) {
        gw_buf_dispose(&out);
        return gw_err_set(err, GW_ENOMEM, "out of memory");
    }
    *items = gw_buf_steal(&out);
    return GW_OK;
}

static const struct db_stmt cancel_stmt = {
    "job_cancel",
    "WITH u AS (UPDATE jobs SET status = 'CANCELLED', status_reason = $2, updated_at = now(), "
    "stopped_at = now() WHERE id = $1 AND ($3::text IS NULL OR team = $3) AND (status = 'QUEUED' "
    "OR "
    " (dispatch = 'local' AND mlgw_status_rank(status) < 7)) RETURNING id, dispatch), "
    "o AS (DELETE FROM dispatch_outbox WHERE job_id = $1 AND action = 'submit'), "
    "h AS (INSERT INTO job_history (job_id, status, source, reason) "
    " SELECT id, 'CANCELLED', 'api', $2 FROM u) "
    "SELECT id, dispatch FROM u",
    3};

/* Wakes the local executors: one of them stops the job's processes. */
static const struct db_stmt wake_local_stmt = {"job_cancel_wake_local",
                                               "SELECT pg_notify('mlgw_outbox', 'cancel')", 0};

static const struct db_stmt status_stmt = {"job_status",
                                           "SELECT status, batch_job_id IS NOT NULL FROM jobs "
                                           "WHERE id = $1 AND ($2::text IS NULL OR team = $2)",
                                           2};

/* After hand-over: CancelJob/TerminateJob happen through the outbox. */
static const struct db_stmt request_cancel_stmt = {
    "job_request_cancel",
    "WITH o AS (INSERT INTO dispatch_outbox (job_id, action, target) "
    " VALUES ($1, 'cancel', 'batch') ON CONFLICT DO NOTHING RETURNING job_id) "
    "INSERT INTO job_history (job_id, status, source, reason) "
    "SELECT j.id, j.status, 'api', 'cancellation requested: ' || $2 FROM jobs j, o "
    "WHERE j.id = o.job_id",
    2};

struct cancel_ctx {
    char **out;
    const char *id, *team, *reason;
};

static int cancel_tx(struct db_conn *c, void *arg, struct gw_err *err)
{
    struct cancel_ctx *x = arg;
    PGresult *res = NULL;
    const char *params[] = {x->id, x->reason, x->team};
    int rc = db_exec(&res, c, &cancel_stmt, params, err);
    if (rc != GW_OK)
        return rc;
    int cancelled = PQntuples(res) == 1;
    int local = cancelled && strcmp(PQgetvalue(res, 0, 1), "local") == 0;
    PQclear(res);
    if (local && (rc = db_exec(NULL, c, &wake_local_stmt, NULL, err)) != GW_OK)
        return rc;
    if (!cancelled) {
        const char *status_params[] = {x->id, x->team};
        rc = db_exec(&res, c, &status_stmt, status_params, err);
        if (rc != GW_OK)
            return rc;
        if (PQntuples(res) == 0) {
            rc = gw_err_public(err, GW_ENOTFOUND, "no job %s", x->id);
        } else {
            char st[32];
            gw_fmt(st, sizeof(st), "%s", PQgetvalue(res, 0, 0));
            int has_batch_id = PQgetvalue(res, 0, 1)[0] == 't';
            int terminal = strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "FAILED") == 0 ||
                           strcmp(st, "CANCELLED") == 0 || strcmp(st, "DISPATCH_FAILED") == 0;
            PQclear(res);
            res = NULL;
            if (terminal)
                return gw_err_public(err, GW_ECONFLICT, "the job has already ended (%s)", st);
            if (!has_batch_id)
                return gw_err_public(err, GW_ECONFLICT,
                                     "the job was handed to SNS (%s) and its AWS Batch id is not "
                                     "known yet; cancel it once its first state event arrives",
                                     st);
            rc = db_exec(NULL, c, &request_cancel_stmt, params, err);
            if (rc != GW_OK)
                return rc;
            return get_on(x->out, c, x->id, x->team, err);
        }
        PQclear(res);
        return rc;
    }
    return get_on(x->out, c, x->id, x->team, err);
}

int db_job_cancel(char **out, struct db_pool *pool, const char *id, const char *team,
                  const char *reason, struct gw_err *err)
{
    *out = NULL;
    struct cancel_ctx x = {out, id, team, reason};
    int rc = db_tx(pool, cancel_tx, &x, err);
    if (rc != GW_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static const struct db_stmt purge_stmt = {
    "idem_purge",
    "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)", 1};

int db_idempotency_purge(long *deleted, struct db_pool *pool, long long ttl_hours,
                         struct gw_err *err)
{
    *deleted = 0;
    char ttl[24];
    gw_fmt(ttl, sizeof(ttl), "%lld", ttl_hours);
    const char *params[] = {ttl};
    PGresult *res = NULL;
    int rc = db_pool_exec(&res, pool, &purge_stmt, params, err);
    if (rc == GW_OK) {
        long long n = 0;
        if (gw_parse_ll(&n, PQcmdTuples(res), 0, (long long)1 << 62) == GW_OK)
            *deleted = (long)n;
    }
    PQclear(res);
    return rc;
}

static const struct db_stmt stale_stmt = {
    "jobs_stale_batch",
    "SELECT id, batch_job_id FROM jobs WHERE batch_job_id IS NOT NULL "
    "AND status IN ('SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING') "
    "AND coalesce(checked_at, updated_at) < now() - make_interval(secs => $1) "
    "ORDER BY coalesce(checked_at, updated_at) LIMIT $2",
    2};

int db_jobs_stale_batch(PGresult **out, struct db_pool *pool, long long after_s, int limit,
                        struct gw_err *err)
{
    char after[24], lim[16];
    gw_fmt(after, sizeof(after), "%lld", after_s);
    gw_fmt(lim, sizeof(lim), "%d", limit);
    const char *params[] = {after, lim};
    int rc = db_pool_exec(out, pool, &stale_stmt, params, err);
    return rc;
}
