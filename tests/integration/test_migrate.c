/*
 * The migration runner through `ml-gateway migrate` and server start, on
 * fresh databases: order, idempotence, checksums, failed migrations, and two
 * runners at once.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness/harness.h"

static char dir[64];
static char envdir[128];

static void write_file(const char *name, const char *sql)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs(sql, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mlgw-mig-XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    snprintf(envdir, sizeof(envdir), "MLGW_MIGRATIONS_DIR=%s", dir);
    write_file("0001_widgets.sql", "CREATE TABLE widgets (id bigint PRIMARY KEY, name text);\n");
    write_file("0002_widget_index.sql", "CREATE INDEX widgets_name ON widgets (name);\n"
                                        "SELECT pg_sleep(0.3);\n");
    write_file("0010_gadgets.sql", "CREATE TABLE gadgets (id bigint REFERENCES widgets);\n");
    write_file("README.md", "not a migration\n");
}

static void teardown(void)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(migrate, .init = setup, .fini = teardown);

static int migrate(const char *db, char **log)
{
    const char *args[] = {"migrate", NULL};
    const char *env[] = {envdir, NULL};
    return th_gw_run(log, args, db, env, 60);
}

/* `ml-gateway migrate` with the repository's migrations/ (the harness's default). */
static int migrate_real(const char *db, char **log)
{
    const char *args[] = {"migrate", NULL};
    return th_gw_run(log, args, db, NULL, 90);
}

static long scalar_long(const char *db, const char *sql)
{
    char *s = th_db_scalar(db, sql);
    cr_assert(s != NULL, "%s returned nothing", sql);
    long v = strtol(s, NULL, 10);
    free(s);
    return v;
}

Test(migrate, applies_every_file_in_version_order_and_records_checksums)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    char *log = NULL;
    cr_assert_eq(migrate(db, &log), 0, "%s", log);
    cr_assert(strstr(log, "applied migration 0001_widgets.sql") <
                  strstr(log, "applied migration 0002_widget_index.sql"),
              "order: %s", log);
    free(log);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM schema_migrations"), 3);
    char *sum = th_db_scalar(db, "SELECT checksum FROM schema_migrations WHERE version = 1");
    /* sha256("CREATE TABLE widgets (id bigint PRIMARY KEY, name text);\n") */
    cr_assert_eq(strlen(sum), 64);
    free(sum);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM gadgets"), 0);
}

Test(migrate, running_again_changes_nothing)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    cr_assert_eq(migrate(db, NULL), 0);
    char *log = NULL;
    cr_assert_eq(migrate(db, &log), 0);
    cr_assert(strstr(log, "applied migration") == NULL, "%s", log);
    cr_assert(strstr(log, "0 applied now, 3 known") != NULL, "%s", log);
    free(log);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM schema_migrations"), 3);
}

Test(migrate, a_changed_applied_migration_is_refused_by_migrate_and_by_the_server)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    cr_assert_eq(migrate(db, NULL), 0);
    write_file("0001_widgets.sql", "CREATE TABLE widgets (id bigint PRIMARY KEY);\n");
    char *log = NULL;
    cr_assert_eq(migrate(db, &log), 1);
    cr_assert(strstr(log, "0001_widgets.sql was changed after it was applied") != NULL, "%s", log);
    free(log);
    const char *env[] = {envdir, NULL};
    cr_assert_eq(th_gw_run(&log, NULL, db, env, 30), 1, "the server refuses to start: %s", log);
    cr_assert(strstr(log, "was changed after it was applied") != NULL);
    free(log);
}

Test(migrate, a_failing_migration_keeps_nothing_of_itself_and_stops_later_ones)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    write_file("0003_broken.sql", "CREATE TABLE half_done (id int);\nSELECT no_such_function();\n");
    char *log = NULL;
    cr_assert_eq(migrate(db, &log), 1);
    cr_assert(strstr(log, "migration 0003_broken.sql failed") != NULL, "%s", log);
    free(log);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM schema_migrations"), 2);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'"),
                 0);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'gadgets'"), 0,
                 "0010 did not run after 0003 failed");
}

Test(migrate, badly_named_files_stop_the_runner_before_it_touches_the_database)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    write_file("12_oops.sql", "SELECT 1;\n");
    char *log = NULL;
    cr_assert_eq(migrate(db, &log), 1);
    cr_assert(strstr(log, "12_oops.sql") != NULL, "%s", log);
    free(log);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM pg_tables WHERE tablename = "
                                 "'schema_migrations'"),
                 0);
}

Test(migrate, two_runners_at_once_apply_each_migration_exactly_once)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        cr_assert(kids[i] >= 0);
        if (kids[i] == 0)
            _exit(migrate(db, NULL));
    }
    for (int i = 0; i < 4; i++) {
        int st = 0;
        waitpid(kids[i], &st, 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "runner %d failed (%d)", i, st);
    }
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM schema_migrations"), 3);
}

Test(migrate, two_gateways_starting_together_are_both_ready)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    const char *env[] = {envdir, NULL};
    struct th_gw a, b;
    th_gw_start(&a, db, env);
    th_gw_start(&b, db, env);
    char url[256];
    snprintf(url, sizeof(url), "%s/readyz", a.base);
    cr_assert_eq(th_wait_status(url, 200, 10), 200);
    snprintf(url, sizeof(url), "%s/readyz", b.base);
    cr_assert_eq(th_wait_status(url, 200, 10), 200);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM schema_migrations"), 3);
    cr_assert_eq(th_gw_stop(&a, SIGTERM, 10), 0);
    cr_assert_eq(th_gw_stop(&b, SIGTERM, 10), 0);
}

Test(migrate, readyz_is_503_while_a_known_migration_is_not_applied)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    const char *env[] = {envdir, NULL};
    struct th_gw gw;
    th_gw_start(&gw, db, env);
    char url[256];
    snprintf(url, sizeof(url), "%s/readyz", gw.base);
    cr_assert_eq(th_wait_status(url, 200, 10), 200);
    /* Someone removes a row behind the gateway's back: no longer current. */
    cr_assert_eq(th_db_exec(db, "DELETE FROM schema_migrations WHERE version = 10"), 0);
    struct th_resp r;
    th_http(&r, "GET", url, NULL, NULL, 0);
    cr_assert_eq(r.status, 503, "%s", r.body);
    cr_assert(strstr(r.body, "\"migrations\":\"pending\"") != NULL, "%s", r.body);
    th_resp_dispose(&r);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 10), 0);
}

/* migrations/0011: a job an event recorded under 0004's placeholders keeps
 * what the event said and loses the rest (NULL), and its null metadata values. */
Test(migrate, jobs_recorded_from_events_lose_their_placeholders_at_0011)
{
    char db[1024], cmd[1024];
    th_db_create(db, sizeof(db), NULL);
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/* && cp '%s'/000[1-8]_*.sql '%s'/", dir,
             th_source_path("migrations"), dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char *log = NULL;
    cr_assert_eq(migrate(db, &log), 0, "%s", log);
    free(log);
    /* Two events as 0004 recorded them: one without a container, one with. */
    cr_assert_eq(th_db_exec(db, "SELECT mlgw_apply_job_event('e1', 'eventbridge', 'b1', NULL, "
                                "'0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d71', 'RUNNING', NULL, NULL, "
                                "NULL, NULL, NULL, NULL, 'bare', NULL, NULL, NULL, NULL, NULL, "
                                "'file:///o/', '{}', '{}', NULL)"),
                 0);
    cr_assert_eq(th_db_exec(db, "SELECT mlgw_apply_job_event('e2', 'sns', 'b2', NULL, "
                                "'0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d72', 'RUNNING', NULL, NULL, "
                                "NULL, NULL, NULL, NULL, 'told', 'q', 2, 2048, 1, 'jobs/t.py', "
                                "'file:///o/', '{}', '{}', NULL)"),
                 0);
    char *before = th_db_scalar(db, "SELECT script_key || vcpus || memory FROM jobs "
                                    "WHERE batch_job_id = 'b1'");
    cr_assert_str_eq(before, "unknown11", "0004 as it was");
    free(before);

    snprintf(cmd, sizeof(cmd), "cp '%s'/0011_*.sql '%s'/", th_source_path("migrations"), dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    cr_assert_eq(migrate(db, &log), 0, "%s", log);
    free(log);
    char *bare = th_db_scalar(
        db, "SELECT concat_ws(' ', coalesce(script_key, '-'), coalesce(compute_type, '-'), "
            "coalesce(vcpus::text, '-'), coalesce(memory::text, '-'), coalesce(gpus::text, '-'), "
            "metadata::text) FROM jobs WHERE batch_job_id = 'b1'");
    cr_expect_str_eq(bare, "- - - - - {\"batch_job_name\": \"bare\"}");
    free(bare);
    char *told =
        th_db_scalar(db, "SELECT concat_ws(' ', script_key, compute_type, vcpus, memory, gpus, "
                         "metadata::text) FROM jobs WHERE batch_job_id = 'b2'");
    cr_expect_str_eq(told,
                     "jobs/t.py gpu 2 2048 1 {\"batch_job_name\": \"told\", \"batch_job_queue\": "
                     "\"q\"}");
    free(told);
    /* A job submitted through the API still needs every field (refused in the
     * database; caught there, so that nothing is printed for it). */
    cr_expect_eq(th_db_exec(db, "DO $$ BEGIN UPDATE jobs SET source = 'api' WHERE batch_job_id = "
                                "'b1'; RAISE EXCEPTION 'an api job without a script was kept'; "
                                "EXCEPTION WHEN check_violation THEN NULL; END $$"),
                 0);
}

/* ---- two tasks starting at the same moment (deploy/modules/gateway) ------------------- */

/* The runner's advisory lock key (db/migrate.c), as pg_locks shows a bigint key below 2^32:
 * classid 0, objid the key. */
#define MIGRATE_LOCK_OBJID "1835820919"

static long count_sql_files(const char *path)
{
    DIR *d = opendir(path);
    cr_assert_not_null(d, "%s", path);
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".sql") == 0)
            n++;
    }
    closedir(d);
    return n;
}

static long count_of(const char *text, const char *needle)
{
    long n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/*
 * What two ECS tasks of a new deployment do against an empty RDS database: both run every
 * migration of the repository at start. The test holds the runners' advisory lock first, so
 * that both runners are provably waiting on it at the same moment, then lets go: one applies
 * every file, the other finds them applied and applies none; both succeed.
 */
Test(migrate, two_runners_released_together_on_an_empty_database_apply_the_real_migrations_once,
     .timeout = 120)
{
    char db[1024];
    th_db_create(db, sizeof(db), NULL);
    const long files = count_sql_files(th_source_path("migrations"));
    cr_assert_gt(files, 0);

    PGconn *holder = PQconnectdb(db);
    cr_assert_eq(PQstatus(holder), CONNECTION_OK, "%s", PQerrorMessage(holder));
    PGresult *res = PQexec(holder, "SELECT pg_advisory_lock(" MIGRATE_LOCK_OBJID ")");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(holder));
    PQclear(res);

    char logs[2][128];
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        snprintf(logs[i], sizeof(logs[i]), "%s/runner-%d.log", dir, i);
        kids[i] = fork();
        cr_assert(kids[i] >= 0);
        if (kids[i] == 0) {
            const char *args[] = {"migrate", NULL};
            char *log = NULL;
            int rc = th_gw_run(&log, args, db, NULL, 90); /* the repository's migrations/ */
            FILE *f = fopen(logs[i], "w");
            if (f != NULL) {
                fputs(log != NULL ? log : "", f);
                fclose(f);
            }
            free(log);
            _exit(rc);
        }
    }

    /* Both runners are connected and queued behind the lock. */
    long waiting = 0;
    for (int i = 0; i < 600 && waiting < 2; i++) {
        waiting = scalar_long(db, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON "
                                  "d.oid = l.database WHERE d.datname = current_database() AND "
                                  "l.locktype = 'advisory' AND l.classid = 0 AND l.objid = "
                                  "" MIGRATE_LOCK_OBJID " AND NOT l.granted");
        if (waiting < 2)
            usleep(50 * 1000);
    }
    cr_assert_eq(waiting, 2, "both runners wait on the migration lock");
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM pg_tables WHERE tablename = "
                                 "'schema_migrations'"),
                 0, "nothing is created before the lock is held");

    res = PQexec(holder, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_OBJID ")");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    PQfinish(holder);

    long applied_total = 0, idle_runners = 0;
    for (int i = 0; i < 2; i++) {
        int st = 0;
        cr_assert_eq(waitpid(kids[i], &st, 0), kids[i]);
        char *log = NULL;
        FILE *f = fopen(logs[i], "r");
        cr_assert_not_null(f);
        size_t cap = 1 << 20;
        log = calloc(1, cap);
        cr_assert_not_null(log);
        size_t n = fread(log, 1, cap - 1, f);
        log[n] = '\0';
        fclose(f);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "runner %d failed (%d): %s", i, st, log);
        applied_total += count_of(log, "applied migration ");
        if (strstr(log, "0 applied now") != NULL)
            idle_runners++;
        free(log);
    }
    cr_assert_eq(applied_total, files, "each migration applied once in all (%ld of %ld)",
                 applied_total, files);
    cr_assert_eq(idle_runners, 1, "the second runner found everything applied");
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM schema_migrations"), files);
    cr_assert_eq(scalar_long(db, "SELECT count(DISTINCT version) FROM schema_migrations"), files);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM schema_migrations WHERE "
                                 "checksum !~ '^[0-9a-f]{64}$' OR name !~ '^[0-9]{4}_.*[.]sql$' "
                                 "OR version <> substr(name, 1, 4)::int"),
                 0, "every row names its file and checksum");
    /* In version order, one after the other. */
    cr_assert_eq(scalar_long(db,
                             "SELECT count(*) FROM (SELECT version, applied_at, lag(applied_at) "
                             "OVER (ORDER BY version) AS prev FROM schema_migrations) t "
                             "WHERE prev > applied_at"),
                 0);
    /* A third start changes nothing. */
    char *log = NULL;
    cr_assert_eq(migrate_real(db, &log), 0, "%s", log);
    cr_assert(strstr(log, "applied migration") == NULL, "%s", log);
    free(log);
    cr_assert_eq(scalar_long(db, "SELECT count(*) FROM schema_migrations"), files);
}
