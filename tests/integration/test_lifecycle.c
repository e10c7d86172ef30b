/*
 * Process lifecycle of the real binary: configuration errors, signals and
 * graceful shutdown, and riding out a PostgreSQL outage without a restart.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../harness/harness.h"

static void expect_config_error(const char *assignment, const char *name)
{
    const char *env[] = {assignment, NULL};
    char *err = NULL;
    int rc = th_gw_run(&err, NULL, "dbname=unused", env, 20);
    cr_assert_eq(rc, 2, "%s exits 2, got %d: %s", assignment, rc, err ? err : "");
    cr_assert(err != NULL && strstr(err, name) != NULL, "the message names %s: %s", name, err);
    size_t lines = 0;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 1, "one clear line, got: %s", err);
    free(err);
}

Test(lifecycle, invalid_settings_exit_2_with_one_line_naming_the_variable)
{
    expect_config_error("MLGW_LISTEN=not-an-address", "MLGW_LISTEN");
    expect_config_error("MLGW_LISTEN=127.0.0.1:99999", "MLGW_LISTEN");
    expect_config_error("MLGW_DB_POOL_SIZE=0", "MLGW_DB_POOL_SIZE");
    expect_config_error("MLGW_THREADS=lots", "MLGW_THREADS");
    expect_config_error("MLGW_LOG_LEVEL=chatty", "MLGW_LOG_LEVEL");
    expect_config_error("MLGW_MAX_BODY_BYTES=12", "MLGW_MAX_BODY_BYTES");
}

Test(lifecycle, missing_database_url_exits_2)
{
    char *err = NULL;
    int rc = th_gw_run(&err, NULL, NULL, NULL, 20);
    cr_assert_eq(rc, 2, "%s", err ? err : "");
    cr_assert(strstr(err, "DATABASE_URL") != NULL);
    free(err);
}

Test(lifecycle, unknown_command_is_a_usage_error)
{
    const char *args[] = {"frobnicate", NULL};
    char *err = NULL;
    cr_assert_eq(th_gw_run(&err, args, NULL, NULL, 20), 2);
    cr_assert(strstr(err, "unknown command") != NULL);
    free(err);
}

Test(lifecycle, sigterm_when_idle_exits_0_promptly)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    struct th_gw gw;
    th_gw_start(&gw, db, NULL);
    int64_t t0 = th_now_ms();
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 10), 0);
    cr_assert_lt(th_now_ms() - t0, 3000, "stops within 3 s");
    char *log = th_gw_log(&gw);
    cr_assert(strstr(log, "\"msg\":\"stopped\"") != NULL);
    free(log);
}

struct slow_call {
    char url[256];
    struct th_resp resp;
};

static void *do_get(void *arg)
{
    struct slow_call *c = arg;
    th_http(&c->resp, "GET", c->url, NULL, NULL, 0);
    return NULL;
}

/* Waits (up to 30 s) until a query on db waits for a lock; whether one does.
 * Only db's locks count: other tests share the server. */
static int wait_for_a_lock_waiter(const char *db)
{
    int waiting = 0;
    for (int64_t end = th_deadline(30000); !waiting && th_before(end);) {
        char *n =
            th_db_scalar(db, "SELECT count(*) FROM pg_locks WHERE NOT granted AND database = "
                             "(SELECT oid FROM pg_database WHERE datname = current_database())");
        waiting = n != NULL && strcmp(n, "0") != 0;
        free(n);
        if (!waiting)
            th_sleep_ms(50);
    }
    return waiting;
}

/* Waits (up to 30 s) until gw's log holds needle; whether it does. */
static int wait_for_log(const struct th_gw *gw, const char *needle)
{
    int seen = 0;
    for (int64_t end = th_deadline(30000); !seen && th_before(end);) {
        char *log = th_gw_log(gw);
        seen = log != NULL && strstr(log, needle) != NULL;
        free(log);
        if (!seen)
            th_sleep_ms(50);
    }
    return seen;
}

Test(lifecycle, sigterm_lets_an_in_flight_request_finish_and_refuses_new_connections)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    struct th_gw gw;
    th_gw_start(&gw, db, NULL);

    /* Hold a lock that makes /readyz's query wait: a request in flight. */
    PGconn *locker = PQconnectdb(db);
    cr_assert_eq(PQstatus(locker), CONNECTION_OK);
    PQclear(PQexec(locker, "BEGIN"));
    PGresult *lr = PQexec(locker, "LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE");
    cr_assert_eq(PQresultStatus(lr), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(lr));
    PQclear(lr);

    struct slow_call call;
    snprintf(call.url, sizeof(call.url), "%s/readyz", gw.base);
    pthread_t t;
    pthread_create(&t, NULL, do_get, &call);
    /* Wait until the gateway's query is blocked on our lock. */
    cr_assert(wait_for_a_lock_waiter(db), "the readyz query is waiting on the lock");

    kill(gw.pid, SIGTERM);
    /* Quiesced: a new connection is refused while the old request goes on. */
    char url[256];
    snprintf(url, sizeof(url), "%s/healthz", gw.base);
    int refused = 0;
    for (int64_t end = th_deadline(30000); !refused && th_before(end);) {
        struct th_resp fresh;
        refused = th_http(&fresh, "GET", url, NULL, NULL, 0) != 0;
        th_resp_dispose(&fresh);
        if (!refused)
            th_sleep_ms(100);
    }
    cr_assert(refused, "new connection refused");

    PQclear(PQexec(locker, "COMMIT"));
    PQfinish(locker);
    pthread_join(t, NULL);
    cr_assert_eq(call.resp.status, 200, "the in-flight request completed: %s", call.resp.body);
    th_resp_dispose(&call.resp);
    cr_assert_eq(th_gw_stop(&gw, 0, 10), 0, "then the gateway exits 0");
}

Test(lifecycle, second_signal_exits_at_once)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    struct th_gw gw;
    const char *env[] = {"MLGW_SHUTDOWN_TIMEOUT=60", NULL};
    th_gw_start(&gw, db, env);
    PGconn *locker = PQconnectdb(db);
    PQclear(PQexec(locker, "BEGIN"));
    PQclear(PQexec(locker, "LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE"));
    struct slow_call call;
    snprintf(call.url, sizeof(call.url), "%s/readyz", gw.base);
    pthread_t t;
    pthread_create(&t, NULL, do_get, &call);
    cr_assert(wait_for_a_lock_waiter(db), "the readyz query is waiting on the lock");
    kill(gw.pid, SIGTERM);
    cr_assert(wait_for_log(&gw, "\"msg\":\"shutting down"), "the first signal began the shutdown");
    int64_t t0 = th_now_ms();
    int rc = th_gw_stop(&gw, SIGINT, 10);
    cr_assert_eq(rc, 1, "second signal: immediate exit status 1, got %d", rc);
    cr_assert_lt(th_now_ms() - t0, 2000);
    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);
    pthread_join(t, NULL);
    th_resp_dispose(&call.resp);
}

/* Every line of log is one JSON object; returns how many lines hold needle. */
static int json_lines_with(const char *log, const char *needle)
{
    int hits = 0;
    for (const char *p = log; *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        json_error_t je;
        json_t *j = json_loadb(p, n, 0, &je);
        cr_assert(json_is_object(j), "a stderr line that is not JSON: %.*s", (int)n, p);
        json_decref(j);
        char line[2048];
        snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), p);
        hits += strstr(line, needle) != NULL;
        p += n + (end != NULL);
    }
    return hits;
}

Test(lifecycle, readyz_follows_postgresql_down_and_up_without_a_restart)
{
    struct th_pg pg = {0};
    th_pg_start(&pg);
    struct th_gw gw;
    const char *env[] = {"MLGW_DB_CONNECT_TIMEOUT=2", NULL};
    th_gw_start(&gw, pg.url, env);
    char ready[256], health[256];
    snprintf(ready, sizeof(ready), "%s/readyz", gw.base);
    snprintf(health, sizeof(health), "%s/healthz", gw.base);
    cr_assert_eq(th_wait_status(ready, 200, 10), 200);

    th_pg_stop(&pg);
    cr_assert_eq(th_wait_status(ready, 503, 15), 503, "not ready while PostgreSQL is down");
    struct th_resp r;
    th_http(&r, "GET", ready, NULL, NULL, 0);
    char *ra = th_resp_header(&r, "Retry-After");
    cr_assert(ra != NULL);
    free(ra);
    json_t *body = th_resp_json(&r);
    cr_assert(strstr(th_str(body, "reason"), "unavailable") != NULL, "%s", r.body);
    json_decref(body);
    th_resp_dispose(&r);
    /* A probe every 100 ms, as load balancers do: one line for the change. */
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(th_wait_status(ready, 503, 2), 503);
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(th_wait_status(health, 200, 5), 200, "still alive");

    th_pg_start(&pg);
    if (th_wait_status(ready, 200, 30) != 200) {
        char *log = th_gw_log(&gw);
        cr_assert_fail("not ready 30 s after PostgreSQL came back (%s); log:\n%s", pg.url, log);
    }
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 10), 0);
    /* The whole stderr of a run with a PostgreSQL restart is JSON lines, the
     * server's own notices and errors included, and readiness is logged once
     * per change however often it was probed. */
    char *log = th_gw_log(&gw);
    cr_assert_not_null(log);
    cr_expect_eq(json_lines_with(log, "\"not ready: "), 1, "%s", log);
    cr_expect_eq(json_lines_with(log, "\"ready again\""), 1, "%s", log);
    free(log);
    th_pg_destroy(&pg);
}

Test(lifecycle, gateway_started_while_postgresql_is_down_migrates_when_it_returns)
{
    struct th_pg pg = {0};
    th_pg_start(&pg);
    th_pg_stop(&pg);
    char dir[] = "/tmp/mlgw-mig-XXXXXX";
    cr_assert(mkdtemp(dir) != NULL);
    char path[128], envdir[160];
    snprintf(path, sizeof(path), "%s/0001_things.sql", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs("CREATE TABLE things (id int);\n", f);
    fclose(f);
    snprintf(envdir, sizeof(envdir), "MLGW_MIGRATIONS_DIR=%s", dir);
    struct th_gw gw;
    const char *env[] = {"MLGW_DB_CONNECT_TIMEOUT=2", envdir, NULL};
    th_gw_start(&gw, pg.url, env);
    char ready[256];
    snprintf(ready, sizeof(ready), "%s/readyz", gw.base);
    cr_assert_eq(th_wait_status(ready, 503, 10), 503);
    th_pg_start(&pg);
    if (th_wait_status(ready, 200, 30) != 200) {
        char *log = th_gw_log(&gw);
        cr_assert_fail("not ready 30 s after PostgreSQL came back; log:\n%s", log);
    }
    char *n = th_db_scalar(pg.url, "SELECT count(*) FROM things");
    cr_assert(n != NULL, "the pending migration was applied once PostgreSQL returned");
    free(n);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 10), 0);
    th_pg_destroy(&pg);
    unlink(path);
    rmdir(dir);
}

Test(lifecycle, a_request_stuck_past_the_statement_timeout_is_503_and_its_shape_is_logged)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    char key[96];
    th_key_create(key, sizeof(key), db, "reader", "jobs:read");
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    const char *env[] = {"MLGW_DB_STATEMENT_TIMEOUT_MS=500", "MLGW_AUTH_CACHE_SECONDS=60", NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    char url[256];
    snprintf(url, sizeof(url), "%s/jobs/0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d7e", gw.base);
    const char *h[] = {auth, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "GET", url, h, NULL, 0), 0);
    cr_assert_eq(r.status, 404, "%s", r.body); /* the key is verified and cached */
    th_resp_dispose(&r);

    /* Someone holds the jobs table: the lookup waits, then is cut off. */
    PGconn *locker = PQconnectdb(db);
    cr_assert_eq(PQstatus(locker), CONNECTION_OK);
    PQclear(PQexec(locker, "BEGIN"));
    PGresult *lr = PQexec(locker, "LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE");
    cr_assert_eq(PQresultStatus(lr), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(lr));
    PQclear(lr);
    int64_t t0 = th_now_ms();
    cr_assert_eq(th_http(&r, "GET", url, h, NULL, 0), 0);
    int64_t took = th_now_ms() - t0;
    th_assert_problem(&r, 503);
    char *ra = th_resp_header(&r, "Retry-After");
    cr_assert_not_null(ra, "503 carries Retry-After");
    free(ra);
    th_resp_dispose(&r);
    cr_expect(took >= 400 && took < 5000, "cut off after the 500 ms timeout: %lld ms",
              (long long)took);
    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);

    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 10), 0);
    char *log = th_gw_log(&gw);
    const char *line = strstr(log, "statement job_get ran past the statement timeout");
    cr_assert_not_null(line, "%s", log);
    const char *eol = strchr(line, '\n');
    const char *id = strstr(line, "0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d7e");
    cr_assert(id == NULL || (eol != NULL && id > eol), "the statement's shape, not its values");
    free(log);
}
