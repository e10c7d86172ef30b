/*
 * Pipelines end to end: the real gateway, PostgreSQL and the local executor
 * running real Python steps through images/entrypoint/entrypoint.py.
 * Definitions (create, versions, validation, delete), runs of a linear
 * chain, a diamond, fan-out by array and by matrix, a failing step (its
 * dependents SKIPPED, the independent branch finishing), retries inside a
 * step, cancel, idempotent run creation, and a version change while a run is
 * active.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness/harness.h"
#include "../harness/mock_http.h"
#include "../harness/smtp.h"

static char db[1024], auth[128], admin[128];
static struct th_local loc;
static struct th_gw gw;
static int gw_running;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static void script(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/input/jobs/%s", loc.root, name);
    write_file(path, text);
}

/* ok.py writes what it was given into its output; fail.py exits 3;
 * slow.py sleeps; flaky.py fails its first attempt. */
static void scripts(void)
{
    script("ok.py",
           "import json, os\n"
           "out = os.environ['ML_OUTPUT_DIR']\n"
           "keys = ['JOB_ID', 'ARRAY_INDEX', 'ARRAY_SIZE', 'LR', 'PARENT_OUTPUT_URIS',\n"
           "        'RUN_NOTE']\n"
           "seen = {k: os.environ.get(k) for k in keys}\n"
           "inp = os.environ.get('ML_INPUT_DIR')\n"
           "seen['inputs'] = sorted(os.path.relpath(os.path.join(b, n), inp)\n"
           "                        for b, _, fs in os.walk(inp) for n in fs) if inp else None\n"
           "with open(os.path.join(out, 'seen.json'), 'w') as f:\n"
           "    json.dump(seen, f)\n");
    script("fail.py", "import sys\nsys.exit(3)\n");
    script("slow.py", "import time\ntime.sleep(60)\n");
    script("flaky.py", "import os, sys\n"
                       "sys.exit(1 if os.environ.get('MLGW_ATTEMPT', '1') == '1' else 0)\n");
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    char key[96];
    th_key_create(key, sizeof(key), db, "writer", "jobs:read,jobs:write");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    th_key_create(key, sizeof(key), db, "admin", "jobs:read,jobs:write,admin");
    snprintf(admin, sizeof(admin), "Authorization: Bearer %s", key);
    th_local_make(&loc, "mlgw-pipe");
    scripts();
    th_local_gw_start(&gw, db, &loc, NULL);
    gw_running = 1;
}

static void teardown(void)
{
    if (gw_running)
        cr_expect_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    th_local_remove(&loc);
}

TestSuite(pipelines, .init = setup, .fini = teardown);

static struct th_resp call(const char *method, const char *path, const char *who, const char *body,
                           const char *extra_header)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    const char *h[] = {who, "Content-Type: application/json", extra_header, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, method, url, h, body, body ? strlen(body) : 0), 0, "%s %s", method,
                 path);
    return r;
}

static json_t *call_json(const char *method, const char *path, const char *body, long want)
{
    struct th_resp r = call(method, path, auth, body, NULL);
    cr_assert_eq(r.status, want, "%s %s: %ld %s", method, path, r.status, r.body);
    json_t *j = th_resp_json(&r);
    th_resp_dispose(&r);
    return j;
}

static void create(const char *def)
{
    json_decref(call_json("POST", "/pipelines", def, 201));
}

/* Starts a run of name (body may be NULL) and writes its id. */
static void start_run(char id[37], const char *name, const char *body)
{
    char path[128];
    snprintf(path, sizeof(path), "/pipelines/%s/runs", name);
    json_t *run = call_json("POST", path, body ? body : "{}", 202);
    cr_assert_not_null(th_str(run, "id"));
    snprintf(id, 37, "%s", th_str(run, "id"));
    json_decref(run);
}

static json_t *get_run(const char *name, const char *id)
{
    char path[160];
    snprintf(path, sizeof(path), "/pipelines/%s/runs/%s", name, id);
    return call_json("GET", path, NULL, 200);
}

static json_t *wait_run(const char *name, const char *id, const char *want, int timeout_s)
{
    json_t *run = NULL;
    for (int i = 0; i < timeout_s * 5; i++) {
        json_decref(run);
        run = get_run(name, id);
        const char *st = th_str(run, "status");
        if (strstr(want, st) != NULL)
            return run;
        th_sleep_ms(200);
    }
    char *text = json_dumps(run, JSON_INDENT(1));
    cr_assert_fail("run %s did not reach %s in %d s: %s", id, want, timeout_s, text);
    return NULL;
}

static json_t *step_of(json_t *run, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(run, "steps"), i, s)
    {
        if (strcmp(th_str(s, "name"), name) == 0)
            return s;
    }
    cr_assert_fail("no step %s", name);
    return NULL;
}

static const char *step_status(json_t *run, const char *name)
{
    return th_str(step_of(run, name), "status");
}

/* The job JSON of job k of step (new). */
static json_t *step_job(json_t *run, const char *step, size_t k)
{
    json_t *jobs = json_object_get(step_of(run, step), "jobs");
    cr_assert_gt(json_array_size(jobs), k, "step %s has %zu jobs", step, json_array_size(jobs));
    return th_job_get(&gw, auth, th_str(json_array_get(jobs, k), "id"));
}

/* What ok.py saw, read from job k of step's output (new). */
static json_t *seen(json_t *run, const char *step, size_t k)
{
    json_t *job = step_job(run, step, k);
    const char *uri = th_str(job, "output_uri");
    cr_assert(strncmp(uri, "file://", 7) == 0, "%s", uri);
    char path[600];
    snprintf(path, sizeof(path), "%sseen.json", uri + 7);
    json_error_t e;
    json_t *s = json_load_file(path, 0, &e);
    cr_assert_not_null(s, "%s: %s", path, e.text);
    json_decref(job);
    return s;
}

Test(pipelines, a_definition_is_created_versioned_listed_and_read_back)
{
    struct th_resp r = call("POST", "/pipelines", auth,
                            "{\"name\": \"p1\", \"description\": \"d\", "
                            "\"steps\": [{\"name\": \"a\", \"script_key\": \"jobs/ok.py\", "
                            "\"compute_type\": \"cpu\"}]}",
                            NULL);
    cr_assert_eq(r.status, 201, "%s", r.body);
    char *loc_h = th_resp_header(&r, "Location");
    cr_assert_str_eq(loc_h, "/pipelines/p1");
    free(loc_h);
    json_t *p = th_resp_json(&r);
    cr_assert_eq(json_integer_value(json_object_get(p, "version")), 1);
    cr_assert_str_eq(th_str(p, "name"), "p1");
    json_decref(p);
    th_resp_dispose(&r);

    r = call("POST", "/pipelines", auth,
             "{\"name\": \"p1\", \"steps\": [{\"name\": \"a\", \"script_key\": \"jobs/ok.py\"}]}",
             NULL);
    cr_assert_eq(r.status, 409, "%s", r.body);
    th_assert_problem(&r, 409);
    th_resp_dispose(&r);

    p = call_json("PUT", "/pipelines/p1",
                  "{\"steps\": [{\"name\": \"b\", \"script_key\": \"jobs/ok.py\", "
                  "\"compute_type\": \"cpu\"}]}",
                  200);
    cr_assert_eq(json_integer_value(json_object_get(p, "version")), 2);
    json_decref(p);

    p = call_json("GET", "/pipelines/p1", NULL, 200);
    cr_assert_eq(json_integer_value(json_object_get(p, "version")), 2);
    cr_assert_str_eq(th_str(json_array_get(json_object_get(p, "steps"), 0), "name"), "b");
    json_decref(p);
    p = call_json("GET", "/pipelines/p1/versions/1", NULL, 200);
    cr_assert_eq(json_integer_value(json_object_get(p, "version")), 1);
    cr_assert_str_eq(th_str(json_array_get(json_object_get(p, "steps"), 0), "name"), "a");
    cr_assert_str_eq(th_str(p, "description"), "d");
    json_decref(p);
    json_decref(call_json("GET", "/pipelines/p1/versions/3", NULL, 404));
    json_decref(call_json("GET", "/pipelines/nope", NULL, 404));

    create("{\"name\": \"p2\", \"steps\": [{\"name\": \"a\", \"script_key\": \"jobs/ok.py\", "
           "\"compute_type\": \"cpu\"}]}");
    p = call_json("GET", "/pipelines?limit=1", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(p, "items")), 1);
    cr_assert_str_eq(th_str(json_array_get(json_object_get(p, "items"), 0), "name"), "p2");
    char path[256];
    snprintf(path, sizeof(path), "/pipelines?limit=1&cursor=%s", th_str(p, "next_cursor"));
    json_decref(p);
    p = call_json("GET", path, NULL, 200);
    cr_assert_str_eq(th_str(json_array_get(json_object_get(p, "items"), 0), "name"), "p1");
    cr_assert(json_is_null(json_object_get(p, "next_cursor")));
    json_decref(p);
}

/* The 422's errors hold field → message; asserts one entry equals. */
static void expect_error(json_t *problem, const char *field, const char *message)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(problem, "errors"), i, e)
    {
        if (strcmp(th_str(e, "field"), field) == 0) {
            if (message != NULL)
                cr_assert(strstr(th_str(e, "message"), message) != NULL, "%s: %s", field,
                          th_str(e, "message"));
            return;
        }
    }
    char *text = json_dumps(problem, 0);
    cr_assert_fail("no error for %s in %s", field, text);
}

Test(pipelines, an_invalid_definition_is_refused_naming_every_field_and_changes_nothing)
{
    json_t *p =
        call_json("POST", "/pipelines",
                  "{\"name\": \"Bad Name\", \"colour\": 1, \"defaults\": {\"gpu\": 1},"
                  " \"steps\": ["
                  " {\"name\": \"a\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"c\"],"
                  "  \"compute_type\": \"cpu\", \"gpus\": 1},"
                  " {\"name\": \"b\", \"script_key\": \"/abs.py\", \"depends_on\": [\"zz\"],"
                  "  \"array_size\": 1001, \"matrix\": {\"X\": [\"1\"]}},"
                  " {\"name\": \"c\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"a\"],"
                  "  \"matrix\": {\"PATH\": [\"x\"]}, \"env\": {\"JOB_ID\": \"x\"}},"
                  " {\"name\": \"a\", \"script_key\": \"jobs/ok.py\", \"vcpus\": 100000}]}",
                  422);
    expect_error(p, "name", "must match");
    expect_error(p, "colour", "is not a known field");
    expect_error(p, "defaults.gpu", "is not a known field");
    expect_error(p, "steps[0].gpus", "must be 0 for a cpu job");
    expect_error(p, "steps[1].depends_on[0]", "names no step");
    expect_error(p, "steps[1].array_size", "between 2 and 1000");
    expect_error(p, "steps[1].matrix", "cannot be combined with array_size");
    expect_error(p, "steps[1].script_key", NULL);
    expect_error(p, "steps[2].matrix.PATH[0]", "not allowed");
    expect_error(p, "steps[2].env.JOB_ID", "reserved");
    expect_error(p, "steps[3].name", "is the name of steps[0] already");
    expect_error(p, "steps[3].vcpus", NULL);
    json_decref(p);

    p = call_json("POST", "/pipelines",
                  "{\"name\": \"cyc\", \"steps\": ["
                  " {\"name\": \"a\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"b\"]},"
                  " {\"name\": \"b\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"a\"]}]}",
                  422);
    expect_error(p, "steps[1].depends_on[0]", "makes a cycle: b → a → b");
    char *text = json_dumps(p, 0);
    cr_assert(strstr(text, "b → a → b →") == NULL, "the cycle is named once: %s", text);
    free(text);
    json_decref(p);

    p = call_json(
        "POST", "/pipelines",
        "{\"name\": \"big\", \"steps\": [{\"name\": \"a\", \"script_key\": \"j.py\","
        " \"matrix\": {\"A\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\","
        "\"10\"], \"B\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\"],"
        " \"C\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\"]}}]}",
        422);
    expect_error(p, "steps[0].matrix", "more than 1000 combinations");
    json_decref(p);

    json_decref(call_json("GET", "/pipelines/cyc", NULL, 404));
    p = call_json("GET", "/pipelines", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(p, "items")), 0);
    json_decref(p);
}

Test(pipelines, a_linear_chain_runs_each_step_after_its_parent_with_its_outputs)
{
    create("{\"name\": \"chain\", \"defaults\": {\"compute_type\": \"cpu\", \"vcpus\": 1,"
           " \"memory\": 256, \"metadata\": {\"project\": \"pp\"}},"
           " \"steps\": [{\"name\": \"a\", \"script_key\": \"jobs/ok.py\"},"
           " {\"name\": \"b\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"a\"]},"
           " {\"name\": \"c\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"b\"]}]}");
    char id[37];
    start_run(id, "chain", "{\"env\": {\"RUN_NOTE\": \"hello\"}, \"metadata\": {\"user\": \"u\"}}");
    json_t *run = wait_run("chain", id, "SUCCEEDED|FAILED", 90);
    cr_assert_str_eq(th_str(run, "status"), "SUCCEEDED");
    cr_assert_eq(json_integer_value(json_object_get(run, "version")), 1);
    cr_assert_not_null(th_str(run, "started_at"));
    cr_assert_not_null(th_str(run, "stopped_at"));
    for (const char *s = "abc"; *s; s++) {
        char name[2] = {*s, 0};
        cr_assert_str_eq(step_status(run, name), "SUCCEEDED");
    }
    json_t *ja = step_job(run, "a", 0), *jb = step_job(run, "b", 0);
    cr_assert_str_eq(th_str(jb, "pipeline_run_id"), id);
    cr_assert_str_eq(th_str(jb, "step"), "b");
    cr_assert_str_eq(th_str(json_object_get(jb, "metadata"), "project"), "pp");
    cr_assert_str_eq(th_str(json_object_get(jb, "metadata"), "user"), "u");
    /* b started only after a had stopped */
    cr_assert(strcmp(th_str(jb, "created_at"), th_str(ja, "stopped_at")) >= 0);
    json_t *sb = seen(run, "b", 0);
    cr_assert_str_eq(th_str(sb, "RUN_NOTE"), "hello");
    json_t *parents = json_loads(th_str(sb, "PARENT_OUTPUT_URIS"), 0, NULL);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(parents, "a"), 0)),
                     th_str(ja, "output_uri"));
    json_decref(parents);
    /* a's outputs were fetched into b's ML_INPUT_DIR/a/ */
    json_t *inputs = json_object_get(sb, "inputs");
    cr_assert_eq(json_array_size(inputs), 1, "%s", json_dumps(inputs, 0));
    cr_assert_str_eq(json_string_value(json_array_get(inputs, 0)), "a/seen.json");
    json_decref(sb);
    sb = seen(run, "a", 0);
    cr_assert(json_is_null(json_object_get(sb, "inputs")), "a step without parents has none");
    json_decref(sb);
    json_decref(ja);
    json_decref(jb);
    /* The history names each change, oldest first, ending with the run's. */
    json_t *hist = json_object_get(run, "history");
    json_t *last = json_array_get(hist, json_array_size(hist) - 1);
    cr_assert_str_eq(th_str(last, "status"), "SUCCEEDED");
    cr_assert(json_is_null(json_object_get(last, "step")));
    json_decref(run);

    json_t *list = call_json("GET", "/pipelines/chain/runs?status=SUCCEEDED", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(list, "items")), 1);
    json_decref(list);
}

Test(pipelines, a_diamond_joins_both_branches_before_the_last_step)
{
    create("{\"name\": \"diamond\", \"defaults\": {\"compute_type\": \"cpu\", \"vcpus\": 1,"
           " \"memory\": 256},"
           " \"steps\": [{\"name\": \"top\", \"script_key\": \"jobs/ok.py\"},"
           " {\"name\": \"left\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"top\"]},"
           " {\"name\": \"right\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"top\"]},"
           " {\"name\": \"join\", \"script_key\": \"jobs/ok.py\","
           "  \"depends_on\": [\"left\", \"right\"]}]}");
    char id[37];
    start_run(id, "diamond", NULL);
    json_t *run = wait_run("diamond", id, "SUCCEEDED|FAILED", 90);
    cr_assert_str_eq(th_str(run, "status"), "SUCCEEDED");
    json_t *s = seen(run, "join", 0);
    json_t *parents = json_loads(th_str(s, "PARENT_OUTPUT_URIS"), 0, NULL);
    cr_assert_eq(json_object_size(parents), 2);
    cr_assert_not_null(json_object_get(parents, "left"));
    cr_assert_not_null(json_object_get(parents, "right"));
    json_decref(parents);
    json_decref(s);
    json_t *jl = step_job(run, "left", 0), *jr = step_job(run, "right", 0),
           *jj = step_job(run, "join", 0);
    cr_assert(strcmp(th_str(jj, "created_at"), th_str(jl, "stopped_at")) >= 0);
    cr_assert(strcmp(th_str(jj, "created_at"), th_str(jr, "stopped_at")) >= 0);
    json_decref(jl);
    json_decref(jr);
    json_decref(jj);
    json_decref(run);
}

Test(pipelines, fan_out_by_array_and_by_matrix_makes_one_job_each)
{
    create("{\"name\": \"fan\", \"defaults\": {\"compute_type\": \"cpu\", \"vcpus\": 1,"
           " \"memory\": 128},"
           " \"steps\": [{\"name\": \"arr\", \"script_key\": \"jobs/ok.py\", \"array_size\": 3},"
           " {\"name\": \"grid\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"arr\"],"
           "  \"matrix\": {\"LR\": [\"0.1\", \"0.01\"], \"BS\": [\"8\", \"16\"]}}]}");
    char id[37];
    start_run(id, "fan", NULL);
    json_t *run = wait_run("fan", id, "SUCCEEDED|FAILED", 120);
    cr_assert_str_eq(th_str(run, "status"), "SUCCEEDED");
    json_t *arr = json_object_get(step_of(run, "arr"), "jobs");
    cr_assert_eq(json_array_size(arr), 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(arr, i), "array_index")),
                     (json_int_t)i);
        json_t *s = seen(run, "arr", i);
        char want[8];
        snprintf(want, sizeof(want), "%zu", i);
        cr_assert_str_eq(th_str(s, "ARRAY_INDEX"), want);
        cr_assert_str_eq(th_str(s, "ARRAY_SIZE"), "3");
        json_decref(s);
    }
    json_t *grid = json_object_get(step_of(run, "grid"), "jobs");
    cr_assert_eq(json_array_size(grid), 4);
    int seen_lr[2] = {0, 0};
    for (size_t i = 0; i < 4; i++) {
        json_t *m = json_object_get(json_array_get(grid, i), "matrix");
        cr_assert_eq(json_object_size(m), 2);
        json_t *s = seen(run, "grid", i);
        cr_assert_str_eq(th_str(s, "LR"), th_str(m, "LR"));
        seen_lr[strcmp(th_str(s, "LR"), "0.1") == 0]++;
        json_t *parents = json_loads(th_str(s, "PARENT_OUTPUT_URIS"), 0, NULL);
        cr_assert_eq(json_array_size(json_object_get(parents, "arr")), 3);
        json_decref(parents);
        /* one folder per job of the fanned-out parent */
        json_t *inputs = json_object_get(s, "inputs");
        cr_assert_eq(json_array_size(inputs), 3, "%s", json_dumps(inputs, 0));
        for (size_t k = 0; k < 3; k++) {
            char want[32];
            snprintf(want, sizeof(want), "arr/%zu/seen.json", k);
            cr_assert_str_eq(json_string_value(json_array_get(inputs, k)), want);
        }
        json_decref(s);
    }
    cr_assert_eq(seen_lr[0], 2);
    cr_assert_eq(seen_lr[1], 2);
    json_decref(run);
}

Test(pipelines, a_failed_step_skips_its_dependents_while_the_other_branch_finishes)
{
    create("{\"name\": \"failing\", \"defaults\": {\"compute_type\": \"cpu\", \"vcpus\": 1,"
           " \"memory\": 128},"
           " \"steps\": [{\"name\": \"bad\", \"script_key\": \"jobs/fail.py\"},"
           " {\"name\": \"after-bad\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"bad\"]},"
           " {\"name\": \"later\", \"script_key\": \"jobs/ok.py\","
           "  \"depends_on\": [\"after-bad\"]},"
           " {\"name\": \"good\", \"script_key\": \"jobs/ok.py\"},"
           " {\"name\": \"after-good\", \"script_key\": \"jobs/ok.py\","
           "  \"depends_on\": [\"good\"]}]}");
    char id[37];
    start_run(id, "failing", NULL);
    json_t *run = wait_run("failing", id, "SUCCEEDED|FAILED|CANCELLED", 90);
    cr_assert_str_eq(th_str(run, "status"), "FAILED");
    cr_assert_str_eq(step_status(run, "bad"), "FAILED");
    cr_assert_str_eq(step_status(run, "after-bad"), "SKIPPED");
    cr_assert_str_eq(step_status(run, "later"), "SKIPPED");
    cr_assert_str_eq(step_status(run, "good"), "SUCCEEDED");
    cr_assert_str_eq(step_status(run, "after-good"), "SUCCEEDED");
    cr_assert_eq(json_array_size(json_object_get(step_of(run, "later"), "jobs")), 0);
    json_decref(run);
}

Test(pipelines, a_step_retries_its_job_before_the_run_goes_on)
{
    create("{\"name\": \"retry\", \"defaults\": {\"compute_type\": \"cpu\", \"vcpus\": 1,"
           " \"memory\": 128},"
           " \"steps\": [{\"name\": \"flaky\", \"script_key\": \"jobs/flaky.py\","
           "  \"max_attempts\": 2},"
           " {\"name\": \"next\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"flaky\"]}]}");
    char id[37];
    start_run(id, "retry", NULL);
    json_t *run = wait_run("retry", id, "SUCCEEDED|FAILED", 90);
    cr_assert_str_eq(th_str(run, "status"), "SUCCEEDED");
    json_t *j = step_job(run, "flaky", 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "attempts")), 2);
    json_decref(j);
    json_decref(run);
}

Test(pipelines, cancelling_a_run_stops_its_running_job_and_cancels_waiting_steps)
{
    create("{\"name\": \"long\", \"defaults\": {\"compute_type\": \"cpu\", \"vcpus\": 1,"
           " \"memory\": 128},"
           " \"steps\": [{\"name\": \"sleep\", \"script_key\": \"jobs/slow.py\"},"
           " {\"name\": \"after\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"sleep\"]}]}");
    char id[37];
    start_run(id, "long", NULL);
    json_t *run = wait_run("long", id, "RUNNING", 60);
    json_decref(run);
    char path[160];
    /* A poller's revalidation: 304 while the run is unchanged, 200 with a
     * new ETag once it has changed. */
    char run_path[160], inm[120];
    snprintf(run_path, sizeof(run_path), "/pipelines/long/runs/%s", id);
    struct th_resp g = call("GET", run_path, auth, NULL, NULL);
    cr_assert_eq(g.status, 200);
    char *etag = th_resp_header(&g, "ETag");
    cr_assert(etag != NULL && etag[0] == '"', "a run has an ETag");
    th_resp_dispose(&g);
    snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
    g = call("GET", run_path, auth, NULL, inm);
    cr_assert_eq(g.status, 304, "unchanged: %ld %s", g.status, g.body);
    cr_assert_eq(g.body[0], '\0', "a 304 has no body");
    th_resp_dispose(&g);
    snprintf(path, sizeof(path), "/pipelines/long/runs/%s/cancel", id);
    run = call_json("POST", path, NULL, 202);
    g = call("GET", run_path, auth, NULL, inm);
    cr_assert_eq(g.status, 200, "changed by the cancel: %ld", g.status);
    char *etag2 = th_resp_header(&g, "ETag");
    cr_assert(etag2 != NULL && strcmp(etag2, etag) != 0, "a changed run has a new ETag");
    free(etag2);
    free(etag);
    th_resp_dispose(&g);
    cr_assert_str_eq(step_status(run, "after"), "CANCELLED");
    json_decref(run);
    run = wait_run("long", id, "SUCCEEDED|FAILED|CANCELLED", 60);
    cr_assert_str_eq(th_str(run, "status"), "CANCELLED");
    json_t *j = step_job(run, "sleep", 0);
    cr_assert_str_eq(th_str(j, "status"), "CANCELLED");
    json_decref(j);
    cr_assert_eq(json_array_size(json_object_get(step_of(run, "after"), "jobs")), 0);
    json_decref(run);
    struct th_resp r = call("POST", path, auth, NULL, NULL);
    th_assert_problem(&r, 409);
    th_resp_dispose(&r);
}

Test(pipelines, a_run_created_twice_with_one_idempotency_key_is_one_run)
{
    create("{\"name\": \"idem\", \"steps\": [{\"name\": \"a\", \"script_key\": \"jobs/ok.py\","
           " \"compute_type\": \"cpu\", \"vcpus\": 1, \"memory\": 128}]}");
    const char *body = "{\"env\": {\"RUN_NOTE\": \"x\"}}";
    struct th_resp r1 = call("POST", "/pipelines/idem/runs", auth, body, "Idempotency-Key: k-1");
    struct th_resp r2 = call("POST", "/pipelines/idem/runs", auth, body, "Idempotency-Key: k-1");
    cr_assert_eq(r1.status, 202, "%s", r1.body);
    cr_assert_eq(r2.status, 202, "%s", r2.body);
    char *replayed = th_resp_header(&r2, "Idempotent-Replayed");
    cr_assert_str_eq(replayed, "true");
    free(replayed);
    json_t *a = th_resp_json(&r1), *b = th_resp_json(&r2);
    cr_assert_str_eq(th_str(a, "id"), th_str(b, "id"));
    json_decref(a);
    json_decref(b);
    th_resp_dispose(&r1);
    th_resp_dispose(&r2);
    struct th_resp r3 = call("POST", "/pipelines/idem/runs", auth, "{}", "Idempotency-Key: k-1");
    th_assert_problem(&r3, 422);
    th_resp_dispose(&r3);
    json_t *list = call_json("GET", "/pipelines/idem/runs", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(list, "items")), 1);
    json_decref(list);
}

Test(pipelines, a_run_keeps_its_version_when_the_pipeline_changes_and_delete_waits_for_it)
{
    create(
        "{\"name\": \"ver\", \"defaults\": {\"compute_type\": \"cpu\", \"vcpus\": 1,"
        " \"memory\": 128},"
        " \"steps\": [{\"name\": \"sleep\", \"script_key\": \"jobs/slow.py\"},"
        " {\"name\": \"v1only\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"sleep\"]}]}");
    char id[37];
    start_run(id, "ver", NULL);
    json_decref(call_json("PUT", "/pipelines/ver",
                          "{\"steps\": [{\"name\": \"other\", \"script_key\": \"jobs/ok.py\","
                          " \"compute_type\": \"cpu\", \"vcpus\": 1, \"memory\": 128}]}",
                          200));
    json_t *run = get_run("ver", id);
    cr_assert_eq(json_integer_value(json_object_get(run, "version")), 1);
    cr_assert_str_eq(step_status(run, "v1only"), "WAITING");
    json_decref(run);

    struct th_resp r = call("DELETE", "/pipelines/ver", auth, NULL, NULL);
    th_assert_problem(&r, 403);
    th_resp_dispose(&r);
    r = call("DELETE", "/pipelines/ver", admin, NULL, NULL);
    th_assert_problem(&r, 409);
    th_resp_dispose(&r);

    /* a second run takes version 2; an explicit version 1 is allowed */
    char id2[37];
    start_run(id2, "ver", "{\"version\": 2}");
    run = wait_run("ver", id2, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(run, "status"), "SUCCEEDED");
    cr_assert_eq(json_integer_value(json_object_get(run, "version")), 2);
    json_decref(run);
    json_t *p = call_json("POST", "/pipelines/ver/runs", "{\"version\": 9}", 422);
    expect_error(p, "version", NULL);
    json_decref(p);

    char path[160];
    snprintf(path, sizeof(path), "/pipelines/ver/runs/%s/cancel", id);
    json_decref(call_json("POST", path, NULL, 202));
    json_decref(wait_run("ver", id, "CANCELLED", 60));
    r = call("DELETE", "/pipelines/ver", admin, NULL, NULL);
    cr_assert_eq(r.status, 204, "%s", r.body);
    th_resp_dispose(&r);
    json_decref(call_json("GET", "/pipelines/ver", NULL, 404));
}

Test(pipelines, another_team_sees_nothing_of_a_pipeline_or_its_runs)
{
    create("{\"name\": \"mine\", \"steps\": [{\"name\": \"a\", \"script_key\": \"jobs/ok.py\","
           " \"compute_type\": \"cpu\", \"vcpus\": 1, \"memory\": 128}]}");
    char id[37];
    start_run(id, "mine", NULL);
    char key[96], other[128];
    const char *args[] = {"--name", "o",     "--scopes", "jobs:read,jobs:write",
                          "--team", "other", NULL};
    th_key_create_args(key, sizeof(key), db, args);
    snprintf(other, sizeof(other), "Authorization: Bearer %s", key);
    char path[160];
    snprintf(path, sizeof(path), "/pipelines/mine/runs/%s", id);
    const char *paths[] = {"/pipelines/mine", "/pipelines/mine/versions/1", path,
                           "/pipelines/mine/runs"};
    for (size_t i = 0; i < 3; i++) {
        struct th_resp r = call("GET", paths[i], other, NULL, NULL);
        th_assert_problem(&r, 404);
        th_resp_dispose(&r);
    }
    struct th_resp r = call("POST", "/pipelines/mine/runs", other, "{}", NULL);
    th_assert_problem(&r, 404);
    th_resp_dispose(&r);
    /* the other team may use the same name for its own pipeline */
    r = call("POST", "/pipelines", other,
             "{\"name\": \"mine\", \"steps\": [{\"name\": \"z\", \"script_key\": \"jobs/ok.py\"}]}",
             NULL);
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_dispose(&r);
    json_decref(wait_run("mine", id, "SUCCEEDED", 60));
}

Test(pipelines, a_run_end_sends_one_message_per_recipient_and_its_jobs_only_their_own)
{
    struct th_smtp smtp;
    th_smtp_start(&smtp, NULL, 0);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    char env_smtp[96];
    snprintf(env_smtp, sizeof(env_smtp), "MLGW_SMTP_URL=%s", smtp.url);
    const char *more[] = {env_smtp,
                          "MLGW_SMTP_TLS=off",
                          "MLGW_SMTP_FROM=gw <gw@ml.example>",
                          "MLGW_NOTIFY_EMAILS=ops@ml.example",
                          "MLGW_NOTIFY_RETRY_BASE_MS=100",
                          NULL};
    th_local_gw_start(&gw, db, &loc, more);
    create("{\"name\": \"told\", \"notify\": {\"emails\": [\"team@ml.example\"]},"
           " \"defaults\": {\"compute_type\": \"cpu\", \"vcpus\": 1, \"memory\": 128},"
           " \"steps\": [{\"name\": \"bad\", \"script_key\": \"jobs/fail.py\"},"
           " {\"name\": \"after-bad\", \"script_key\": \"jobs/ok.py\", \"depends_on\": [\"bad\"]},"
           " {\"name\": \"good\", \"script_key\": \"jobs/ok.py\","
           "  \"notify\": {\"emails\": [\"step@ml.example\"]}}]}");
    char id[37];
    start_run(id, "told", "{\"notify\": {\"emails\": [\"run@ml.example\"]}}");
    json_decref(wait_run("told", id, "FAILED", 90));
    for (int i = 0; i < 100 && (th_smtp_count(&smtp, "team@ml.example") < 1 ||
                                th_smtp_count(&smtp, "run@ml.example") < 1 ||
                                th_smtp_count(&smtp, "step@ml.example") < 1);
         i++)
        th_sleep_ms(200);
    th_sleep_ms(1500); /* anything else would have arrived by now */
    cr_assert_eq(th_smtp_count(&smtp, "team@ml.example"), 1);
    cr_assert_eq(th_smtp_count(&smtp, "run@ml.example"), 1);
    cr_assert_eq(th_smtp_count(&smtp, "step@ml.example"), 1, "the step's own job notify");
    cr_assert_eq(th_smtp_count(&smtp, "ops@ml.example"), 0, "no global mail per step job");
    char *m = th_smtp_message(&smtp, "team@ml.example");
    cr_assert_not_null(m);
    cr_assert(strstr(m, "FAILED: pipeline told") != NULL, "%s", m);
    cr_assert(strstr(m, "after-bad") != NULL && strstr(m, "SKIPPED") != NULL, "%s", m);
    cr_assert(strstr(m, "1/1 succeeded") != NULL && strstr(m, "0/1 succeeded") != NULL, "%s", m);
    free(m);
    th_smtp_stop(&smtp);
}

/* examples/pipelines/train-and-evaluate-cpu.json, the README's laptop pipeline, end to end with
 * the real example scripts (PyTorch from the test venv): the evaluation reads the better
 * training's checkpoint through ML_INPUT_DIR. */
Test(pipelines, the_cpu_example_pipeline_runs_end_to_end)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cp %s/*.py %s/input/jobs/", th_source_path("examples"), loc.root);
    cr_assert_eq(system(cmd), 0);
    json_error_t e;
    json_t *def =
        json_load_file(th_source_path("examples/pipelines/train-and-evaluate-cpu.json"), 0, &e);
    cr_assert_not_null(def, "%s", e.text);
    char *text = json_dumps(def, 0);
    json_decref(def);
    create(text);
    free(text);
    char id[37];
    start_run(id, "train-and-evaluate-cpu", NULL);
    json_t *run = wait_run("train-and-evaluate-cpu", id, "SUCCEEDED|FAILED|CANCELLED", 280);
    cr_assert_str_eq(th_str(run, "status"), "SUCCEEDED", "%s", json_dumps(run, 0));
    cr_assert_eq(json_array_size(json_object_get(step_of(run, "train"), "jobs")), 2);
    json_t *job = step_job(run, "evaluate", 0);
    char path[600];
    snprintf(path, sizeof(path), "%sinference_summary.json", th_str(job, "output_uri") + 7);
    json_t *summary = json_load_file(path, 0, &e);
    cr_assert_not_null(summary, "%s: %s", path, e.text);
    const char *ck = th_str(summary, "checkpoint");
    cr_assert(ck != NULL && strstr(ck, "/train/") != NULL && strstr(ck, "checkpoint.pt") != NULL,
              "evaluate used %s", ck ? ck : "no checkpoint");
    json_decref(summary);
    json_decref(job);
    json_decref(run);
}

Test(pipelines, a_definition_posted_twice_with_one_idempotency_key_is_created_once)
{
    const char *def = "{\"name\": \"once\", \"steps\": [{\"name\": \"a\", \"script_key\": "
                      "\"jobs/ok.py\"}]}";
    struct th_resp r1 = call("POST", "/pipelines", auth, def, "Idempotency-Key: def-1");
    struct th_resp r2 = call("POST", "/pipelines", auth, def, "Idempotency-Key: def-1");
    cr_assert_eq(r1.status, 201, "%s", r1.body);
    cr_assert_eq(r2.status, 201, "%s", r2.body);
    char *replayed = th_resp_header(&r2, "Idempotent-Replayed");
    char *where = th_resp_header(&r2, "Location");
    cr_assert_str_eq(replayed, "true");
    cr_assert_str_eq(where, "/pipelines/once");
    cr_assert_str_eq(r1.body, r2.body);
    free(replayed);
    free(where);
    th_resp_dispose(&r1);
    th_resp_dispose(&r2);
    struct th_resp r3 = call("POST", "/pipelines", auth,
                             "{\"name\": \"other\", \"steps\": [{\"name\": \"a\", "
                             "\"script_key\": \"jobs/ok.py\"}]}",
                             "Idempotency-Key: def-1");
    th_assert_problem(&r3, 422);
    th_resp_dispose(&r3);
    /* without a key, the name is taken */
    struct th_resp r4 = call("POST", "/pipelines", auth, def, NULL);
    th_assert_problem(&r4, 409);
    th_resp_dispose(&r4);
    json_t *p = call_json("GET", "/pipelines", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(p, "items")), 1);
    json_decref(p);
}

Test(pipelines, a_run_end_posts_the_run_once_to_each_webhook_signed)
{
    struct th_mock *hook = th_mock_start();
    th_mock_set(hook, &(struct th_mock_reply){204, NULL, NULL, NULL, NULL, 0});
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    const char *more[] = {"MLGW_WEBHOOK_SECRET=hook-secret", "MLGW_WEBHOOK_ALLOW_HTTP=on",
                          "MLGW_WEBHOOK_ALLOW_CIDRS=127.0.0.0/8", "MLGW_NOTIFY_RETRY_BASE_MS=100",
                          NULL};
    th_local_gw_start(&gw, db, &loc, more);
    create("{\"name\": \"hooked\", \"steps\": [{\"name\": \"a\", \"script_key\": "
           "\"jobs/ok.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, \"memory\": 128}]}");
    char body[512], id[37];
    snprintf(body, sizeof(body), "{\"notify\": {\"webhooks\": [\"%s/run-ended\"]}}",
             th_mock_url(hook));
    start_run(id, "hooked", body);
    json_decref(wait_run("hooked", id, "SUCCEEDED", 60));
    for (int64_t end = th_deadline(30000); th_mock_count(hook) < 1 && th_before(end);)
        th_sleep_ms(100);
    th_sleep_ms(1000);
    cr_assert_eq(th_mock_count(hook), 1, "one POST for the run, none for its job");
    struct th_mock_request r;
    th_mock_request(&r, hook, 0);
    cr_assert_str_eq(r.path, "/run-ended");
    json_t *run = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_str_eq(th_str(run, "id"), id);
    cr_assert_str_eq(th_str(run, "status"), "SUCCEEDED");
    cr_assert_not_null(json_object_get(run, "steps"));
    json_decref(run);
    char *sig = th_mock_header(&r, "x-signature");
    cr_assert(sig != NULL && strncmp(sig, "t=", 2) == 0 && strstr(sig, ",v1=") != NULL, "%s",
              sig ? sig : "no X-Signature");
    free(sig);
    th_mock_request_dispose(&r);
    th_mock_stop(hook);
}
