/*
 * Pipelines across gateway crashes: kill -9 of the gateway at random points
 * of a run (every step's jobs are created exactly once and the run
 * completes), and two gateways on one database sharing a run, one of them
 * killed halfway. The graph is advanced inside the transaction that ends a
 * job (migrations/0009_pipelines.sql), so no crash can lose or repeat a step.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../harness/harness.h"

static char db[1024], auth[128];
static struct th_local loc, loc2;

static void script_in(const struct th_local *l, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/input/jobs/%s", l->root, name);
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static const char quick[] = "import time\ntime.sleep(0.3)\n";

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    char key[96];
    th_key_create(key, sizeof(key), db, "writer", "jobs:read,jobs:write");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    th_local_make(&loc, "mlgw-pcrash");
    th_local_make(&loc2, "mlgw-pcrash2");
    script_in(&loc, "quick.py", quick);
    script_in(&loc2, "quick.py", quick);
}

static void teardown(void)
{
    th_local_remove(&loc);
    th_local_remove(&loc2);
}

TestSuite(pipelines_crash, .init = setup, .fini = teardown);

static json_t *call_json(const struct th_gw *gw, const char *method, const char *path,
                         const char *body, long want)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", gw->base, path);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, method, url, h, body, body ? strlen(body) : 0), 0);
    cr_assert_eq(r.status, want, "%s %s: %ld %s", method, path, r.status, r.body);
    json_t *j = th_resp_json(&r);
    th_resp_dispose(&r);
    return j;
}

/* A chain of 6 steps with an array of 3 in the middle, quick jobs that may be
 * retried after a crash cut an attempt short. */
static const char chain_def[] =
    "{\"name\": \"crashy\", \"defaults\": {\"compute_type\": \"cpu\", \"vcpus\": 1,"
    " \"memory\": 64, \"max_attempts\": 10, \"script_key\": \"jobs/quick.py\"},"
    " \"steps\": [{\"name\": \"s1\"}, {\"name\": \"s2\", \"depends_on\": [\"s1\"]},"
    " {\"name\": \"s3\", \"depends_on\": [\"s2\"], \"array_size\": 3},"
    " {\"name\": \"s4\", \"depends_on\": [\"s3\"]}, {\"name\": \"s5\", \"depends_on\": [\"s4\"]},"
    " {\"name\": \"s6\", \"depends_on\": [\"s5\"]}]}";

static json_t *wait_end(const struct th_gw *gw, const char *path, int timeout_s)
{
    json_t *run = NULL;
    for (int i = 0; i < timeout_s * 5; i++) {
        json_decref(run);
        run = call_json(gw, "GET", path, NULL, 200);
        const char *st = th_str(run, "status");
        if (strcmp(st, "QUEUED") != 0 && strcmp(st, "RUNNING") != 0)
            return run;
        th_sleep_ms(200);
    }
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(step || ' ' || status || ' ' || attempts || ' ' || "
             "coalesce(status_reason, '-') || ' ' || coalesce((SELECT string_agg(target || "
             "coalesce(lease_holder::text, '') || action, ',') FROM dispatch_outbox o "
             "WHERE o.job_id = j.id), '-'), E'\\n' ORDER BY id) "
             "FROM jobs j WHERE pipeline_run_id = '%s'",
             th_str(run, "id"));
    char *jobs = th_db_scalar(db, sql);
    cr_assert_fail("run did not end in %d s; its jobs:\n%s", timeout_s, jobs);
    return NULL;
}

/* Every step SUCCEEDED with exactly its fan-out's jobs, each SUCCEEDED, and
 * the database holds no other job of the run. */
static void assert_each_step_once(json_t *run)
{
    cr_assert_str_eq(th_str(run, "status"), "SUCCEEDED", "%s", json_dumps(run, 0));
    size_t i, total = 0;
    json_t *s;
    json_array_foreach(json_object_get(run, "steps"), i, s)
    {
        cr_assert_str_eq(th_str(s, "status"), "SUCCEEDED", "step %s", th_str(s, "name"));
        size_t want = strcmp(th_str(s, "name"), "s3") == 0 ? 3 : 1;
        json_t *jobs = json_object_get(s, "jobs");
        cr_assert_eq(json_array_size(jobs), want, "step %s has %zu jobs", th_str(s, "name"),
                     json_array_size(jobs));
        total += want;
    }
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM jobs WHERE pipeline_run_id = '%s' AND status = 'SUCCEEDED'",
             th_str(run, "id"));
    char *n = th_db_scalar(db, sql);
    cr_assert_eq(strtol(n, NULL, 10), (long)total, "%s jobs in the database", n);
    free(n);
}

Test(pipelines_crash, kill_9_at_random_points_neither_loses_nor_repeats_a_step)
{
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    cr_log_info("seed %u", seed);
    struct th_gw gw;
    th_local_gw_start(&gw, db, &loc, NULL);
    json_decref(call_json(&gw, "POST", "/pipelines", chain_def, 201));
    json_t *run = call_json(&gw, "POST", "/pipelines/crashy/runs", "{}", 202);
    char path[160];
    snprintf(path, sizeof(path), "/pipelines/crashy/runs/%s", th_str(run, "id"));
    json_decref(run);
    for (int k = 0; k < 5; k++) {
        th_sleep_ms(200 + rand() % 1500);
        cr_assert_eq(kill(gw.pid, SIGKILL), 0);
        cr_assert_eq(th_gw_stop(&gw, SIGKILL, 10), 128 + SIGKILL);
        th_local_gw_start(&gw, db, &loc, NULL);
    }
    run = wait_end(&gw, path, 180);
    assert_each_step_once(run);
    json_decref(run);
    cr_expect_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
}

Test(pipelines_crash, two_gateways_on_one_database_drive_one_run_together)
{
    /* Two machines' gateways (each its own executor root, two vCPUs each):
     * the run's jobs run on both, and whichever ends a job advances the run. */
    struct th_gw a, b;
    const char *more[] = {"MLGW_LOCAL_VCPUS=2", NULL};
    th_local_gw_start(&a, db, &loc, more);
    th_local_gw_start(&b, db, &loc2, more);
    json_decref(call_json(&a, "POST", "/pipelines",
                          "{\"name\": \"shared\", \"defaults\": {\"compute_type\": \"cpu\","
                          " \"vcpus\": 1, \"memory\": 64, \"script_key\": \"jobs/quick.py\"},"
                          " \"steps\": [{\"name\": \"s1\"},"
                          " {\"name\": \"s2\", \"depends_on\": [\"s1\"], \"array_size\": 8},"
                          " {\"name\": \"s3\", \"depends_on\": [\"s2\"]},"
                          " {\"name\": \"s4\", \"depends_on\": [\"s3\"], \"array_size\": 8}]}",
                          201));
    json_t *run = call_json(&b, "POST", "/pipelines/shared/runs", "{}", 202);
    char path[160];
    snprintf(path, sizeof(path), "/pipelines/shared/runs/%s", th_str(run, "id"));
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT local_node) || ' ' || count(*) FROM jobs "
             "WHERE pipeline_run_id = '%s' AND status = 'SUCCEEDED'",
             th_str(run, "id"));
    json_decref(run);
    run = wait_end(&a, path, 180);
    cr_assert_str_eq(th_str(run, "status"), "SUCCEEDED");
    json_decref(run);
    char *n = th_db_scalar(db, sql);
    cr_assert_str_eq(n, "2 18", "executors used, jobs: %s", n);
    free(n);
    cr_expect_eq(th_gw_stop(&a, SIGTERM, 30), 0);
    cr_expect_eq(th_gw_stop(&b, SIGTERM, 30), 0);
}
