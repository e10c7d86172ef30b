/*
 * The local executor, end to end: the real gateway runs real Python jobs
 * through images/entrypoint/entrypoint.py under a private MLGW_LOCAL_ROOT.
 * Success with outputs and manifest, failure and retries, timeout, cancel
 * of a running job, GPU slots (MLGW_LOCAL_GPUS=2, three 1-GPU jobs),
 * first-in first-out order, jobs too big for the machine, kill -9 of the
 * gateway while jobs run, and notifications on local terminal states.
 *
 * Jobs run in the job sandbox: what they write for the test to see goes
 * into the model cache (<root>/cache, the one directory every job shares),
 * and the pids they see are their PID namespace's, which the test turns
 * into the host's (host_pid).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../harness/harness.h"
#include "../harness/smtp.h"

static char db[1024], auth[128];
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

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A job script under <root>/input/jobs/<name>. */
static void script(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/input/jobs/%s", loc.root, name);
    write_file(path, text);
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    char key[96];
    th_key_create(key, sizeof(key), db, "writer", "jobs:read,jobs:write");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    th_local_make(&loc, "mlgw-local");
    gw_running = 0;
}

static void teardown(void)
{
    if (gw_running)
        cr_expect_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    th_local_remove(&loc);
}

TestSuite(local, .init = setup, .fini = teardown);

/* The gateway with the executor on; more: extra NAME=VALUE settings. */
static void start_gateway(const char *const *more)
{
    th_local_gw_start(&gw, db, &loc, more);
    gw_running = 1;
}

/* A local job: th_job_submit, and it is dispatched here. */
static void submit(char id[37], const char *body)
{
    th_job_submit(id, &gw, auth, body);
    json_t *j = th_job_get(&gw, auth, id);
    cr_assert_str_eq(th_str(j, "dispatch"), "local");
    json_decref(j);
}

static json_t *get_job(const char *id)
{
    return th_job_get(&gw, auth, id);
}

static json_t *wait_job(const char *id, const char *want, int timeout_s)
{
    return th_job_wait(&gw, auth, id, want, timeout_s);
}

/* Waits until path exists (a script's "I am running" marker). */
static void wait_file(const char *path, int timeout_s)
{
    for (int i = 0; i < timeout_s * 20; i++) {
        if (access(path, F_OK) == 0)
            return;
        th_sleep_ms(50);
    }
    cr_assert_fail("%s did not appear in %d s", path, timeout_s);
}

static long pid_in(const char *path)
{
    char *s = read_file(path);
    cr_assert(s != NULL, "%s", path);
    long pid = strtol(s, NULL, 10);
    free(s);
    return pid;
}

static int alive(long pid)
{
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Does /proc/<pid>/<file> (NUL- or line-separated) hold the entry want? */
static int proc_has(const char *pid, const char *file, const char *want)
{
    char path[600];
    snprintf(path, sizeof(path), "/proc/%s/%s", pid, file);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    size_t wl = strlen(want);
    for (size_t i = 0; i < n;) {
        size_t len = strcspn(buf + i, "\n");
        len = strnlen(buf + i, len);
        if (len == wl && memcmp(buf + i, want, wl) == 0)
            return 1;
        i += len + 1;
    }
    return 0;
}

/* The host pid of the process that is ns_pid in its own PID namespace and
 * carries MARK_DIR=<mark_dir> (a job's script or what it started); -1 when
 * there is none (any more). */
static long host_pid(long ns_pid, const char *mark_dir)
{
    char env[400];
    snprintf(env, sizeof(env), "MARK_DIR=%s", mark_dir);
    DIR *d = opendir("/proc");
    cr_assert(d != NULL);
    long found = -1;
    const struct dirent *de;
    while (found < 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], line[256];
        snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        long inner = -1;
        while (fgets(line, sizeof(line), f) != NULL)
            if (strncmp(line, "NSpid:", 6) == 0) {
                char *last = strrchr(line, '\t');
                inner = last != NULL ? strtol(last + 1, NULL, 10) : -1;
            }
        fclose(f);
        if (inner == ns_pid && proc_has(de->d_name, "environ", env))
            found = strtol(de->d_name, NULL, 10);
    }
    closedir(d);
    return found;
}

/* Waits up to timeout_s for pid to be gone. */
static int gone_within(long pid, int timeout_s)
{
    for (int i = 0; i < timeout_s * 20; i++) {
        if (!alive(pid))
            return 1;
        th_sleep_ms(50);
    }
    return 0;
}

/* Does the job's history hold status from source, applied? */
static int has_history(const json_t *job, const char *status, const char *reason_part)
{
    size_t i;
    const json_t *h;
    json_array_foreach(json_object_get(job, "history"), i, h)
    {
        if (strcmp(th_str(h, "status"), status) == 0 && strcmp(th_str(h, "source"), "local") == 0 &&
            json_is_true(json_object_get(h, "applied")) &&
            (reason_part == NULL ||
             (th_str(h, "reason") != NULL && strstr(th_str(h, "reason"), reason_part) != NULL)))
            return 1;
    }
    return 0;
}

static const char *const running_script =
    "import os, sys, time\n"
    "d = os.environ['MARK_DIR']\n"
    "open(os.path.join(d, 'pid-' + os.environ['MLGW_ATTEMPT']), 'w').write(str(os.getpid()))\n"
    "if os.environ.get('FINISH_ON_ATTEMPT') == os.environ['MLGW_ATTEMPT']:\n"
    "    open(os.path.join(os.environ['ML_OUTPUT_DIR'], 'done.txt'), 'w').write('ok')\n"
    "    sys.exit(0)\n"
    "if os.environ.get('IGNORE_TERM'):\n"
    "    import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('running', flush=True)\n"
    "time.sleep(3600)\n";

/* A job running script_key with MARK_DIR=<root>/cache/<mark> (made here,
 * writable by the job) in its environment; fields and env: more JSON
 * members, each with a leading ", ". */
static void submit_marked(char id[37], const char *script_key, const char *mark, const char *fields,
                          const char *env)
{
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/cache/%s", loc.root, mark);
    cr_assert_eq(mkdir(dir, 0755), 0);
    cr_assert_eq(chmod(dir, 0777), 0);
    char body[1000];
    snprintf(body, sizeof(body),
             "{\"script_key\": \"%s\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
             "\"memory\": 64%s, \"env\": {\"MARK_DIR\": \"%s\"%s}}",
             script_key, fields, dir, env);
    submit(id, body);
}

/* The host pid of the process whose pid a marked job's script wrote to
 * <root>/cache/<mark>/<name>, once it has; -1 when it is gone. */
static long marked_pid_if_alive(const char *mark, const char *name)
{
    char path[400], dir[300];
    snprintf(dir, sizeof(dir), "%s/cache/%s", loc.root, mark);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    wait_file(path, 30);
    /* The script creates the file and then writes it: empty means not yet. */
    long pid = pid_in(path);
    for (int i = 0; pid <= 0 && i < 600; i++) {
        th_sleep_ms(50);
        pid = pid_in(path);
    }
    cr_assert(pid > 0, "%s holds no pid", path);
    return host_pid(pid, dir);
}

/* The same, of a process that is running. */
static long marked_pid(const char *mark, const char *name)
{
    long pid = marked_pid_if_alive(mark, name);
    cr_assert(pid > 0, "the process of %s/%s runs", mark, name);
    return pid;
}

/* ---- success, failure, retries ---------------------------------------------- */

Test(local, success_publishes_outputs_manifest_and_log)
{
    script("hello.py", "import json, os, sys\n"
                       "print('hello', sys.argv[1:], os.environ['COMPUTE_TYPE'], flush=True)\n"
                       "print('to stderr', file=sys.stderr)\n"
                       "out = os.environ['ML_OUTPUT_DIR']\n"
                       "os.makedirs(os.path.join(out, 'sub'))\n"
                       "open(os.path.join(out, 'result.txt'), 'w').write('42\\n')\n"
                       "open(os.path.join(out, 'sub', 'env.json'), 'w').write(json.dumps(\n"
                       "    {k: os.environ.get(k) for k in ('JOB_ID', 'SCRIPT_KEY', "
                       "'TRIGGER_USER', 'CUDA_VISIBLE_DEVICES', 'DATABASE_URL', 'MLGW_ATTEMPT', "
                       "'GREETING')}))\n");
    start_gateway(NULL);
    char id[37];
    submit(id, "{\"script_key\": \"jobs/hello.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
               "\"memory\": 64, \"args\": [\"--epochs\", \"2\"], \"env\": {\"GREETING\": \"hi\"}, "
               "\"metadata\": {\"user\": \"ann\"}}");
    json_t *j = wait_job(id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "attempts")), 1);
    cr_assert(th_str(j, "started_at") != NULL && th_str(j, "stopped_at") != NULL);
    cr_assert(has_history(j, "RUNNABLE", NULL) && has_history(j, "RUNNING", NULL) &&
              has_history(j, "SUCCEEDED", NULL));
    char expect_uri[400];
    snprintf(expect_uri, sizeof(expect_uri), "file://%s/output/jobs/%s/", loc.root, id);
    cr_assert_str_eq(th_str(j, "output_uri"), expect_uri);
    json_decref(j);

    char path[600];
    snprintf(path, sizeof(path), "%s/output/jobs/%s/result.txt", loc.root, id);
    char *s = read_file(path);
    cr_assert(s != NULL && strcmp(s, "42\n") == 0, "%s", s ? s : "(missing)");
    free(s);
    snprintf(path, sizeof(path), "%s/output/jobs/%s/sub/env.json", loc.root, id);
    json_t *env = json_load_file(path, 0, NULL);
    cr_assert(env != NULL);
    cr_assert_str_eq(th_str(env, "JOB_ID"), id);
    cr_assert_str_eq(th_str(env, "SCRIPT_KEY"), "jobs/hello.py");
    cr_assert_str_eq(th_str(env, "TRIGGER_USER"), "ann");
    cr_assert_str_eq(th_str(env, "CUDA_VISIBLE_DEVICES"), "", "a CPU job sees no GPU");
    cr_assert_str_eq(th_str(env, "MLGW_ATTEMPT"), "1");
    cr_assert_str_eq(th_str(env, "GREETING"), "hi");
    cr_assert(json_is_null(json_object_get(env, "DATABASE_URL")), "no gateway secrets");
    json_decref(env);

    snprintf(path, sizeof(path), "%s/output/jobs/%s/manifest.json", loc.root, id);
    json_t *m = json_load_file(path, 0, NULL);
    cr_assert(m != NULL, "manifest.json");
    cr_assert_str_eq(th_str(m, "job_id"), id);
    cr_assert_eq(json_integer_value(json_object_get(m, "exit_code")), 0);
    cr_assert_eq(json_integer_value(json_object_get(m, "attempt")), 1);
    const json_t *files = json_object_get(m, "files");
    cr_assert_eq(json_array_size(files), 2);
    cr_assert_str_eq(th_str(json_array_get(files, 0), "path"), "result.txt");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(files, 0), "size")), 3);
    cr_assert_str_eq(th_str(json_array_get(files, 0), "sha256"),
                     "084c799cd551dd1d8d5c5f9a5d593b2e931f5e36122ee5c793c1d08a19839cc0");
    json_decref(m);

    snprintf(path, sizeof(path), "%s/logs/%s.log", loc.root, id);
    s = read_file(path);
    cr_assert(s != NULL, "the job's log file");
    cr_assert(strstr(s, "Z hello ['--epochs', '2'] cpu\n") != NULL, "%s", s);
    cr_assert(strstr(s, "Z to stderr\n") != NULL, "%s", s);
    cr_assert(strstr(s, "exited with code 0") != NULL, "%s", s);
    free(s);
    snprintf(path, sizeof(path), "%s/work/%s", loc.root, id);
    cr_assert_neq(access(path, F_OK), 0, "the attempt's work directory is removed");

    /* The same lines through the API. */
    char url[200];
    snprintf(url, sizeof(url), "%s/jobs/%s/logs?limit=200", gw.base, id);
    const char *h[] = {auth, NULL};
    struct th_resp r;
    th_http(&r, "GET", url, h, NULL, 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(strstr(r.body, "\"message\": \"hello ['--epochs', '2'] cpu\"") != NULL ||
                  strstr(r.body, "\"message\":\"hello ['--epochs', '2'] cpu\"") != NULL,
              "%s", r.body);
    th_resp_dispose(&r);
}

Test(local, failure_records_exit_code_and_retries_while_attempts_remain)
{
    script("fail.py", "import os, sys\n"
                      "print('attempt', os.environ['MLGW_ATTEMPT'], flush=True)\n"
                      "sys.exit(3)\n");
    script("flaky.py", "import os, sys\n"
                       "sys.exit(0 if os.environ['MLGW_ATTEMPT'] == '2' else 5)\n");
    start_gateway(NULL);
    char once[37], twice[37], flaky[37];
    submit(once, "{\"script_key\": \"jobs/fail.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
                 "\"memory\": 64}");
    submit(twice, "{\"script_key\": \"jobs/fail.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
                  "\"memory\": 64, \"max_attempts\": 2}");
    submit(flaky, "{\"script_key\": \"jobs/flaky.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
                  "\"memory\": 64, \"max_attempts\": 3}");
    json_t *j = wait_job(once, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "FAILED");
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 3);
    cr_assert_eq(json_integer_value(json_object_get(j, "attempts")), 1);
    cr_assert(strstr(th_str(j, "status_reason"), "exited with code 3") != NULL, "%s",
              th_str(j, "status_reason"));
    json_decref(j);

    j = wait_job(twice, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "FAILED");
    cr_assert_eq(json_integer_value(json_object_get(j, "attempts")), 2);
    cr_assert(has_history(j, "RUNNABLE", "attempt 1 of 2 exited with code 3; retrying"));
    json_decref(j);
    char path[600];
    snprintf(path, sizeof(path), "%s/logs/%s.log", loc.root, twice);
    char *s = read_file(path);
    cr_assert(s != NULL && strstr(s, "attempt 1\n") && strstr(s, "attempt 2\n"), "%s", s);
    free(s);

    j = wait_job(flaky, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    cr_assert_eq(json_integer_value(json_object_get(j, "attempts")), 2);
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 0);
    json_decref(j);
}

Test(local, a_job_larger_than_the_machine_is_refused_or_failed_with_the_reason)
{
    /* Accepted by a gateway that does not run local jobs (no executor to ask)... */
    const char *off[] = {"MLGW_DISPATCH_WORKERS=0", NULL};
    start_gateway(off);
    char id[37];
    submit(id, "{\"script_key\": \"jobs/none.py\", \"compute_type\": \"gpu\", \"gpus\": 1, "
               "\"vcpus\": 1, \"memory\": 64}");
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    gw_running = 0;

    /* ...the executor of a machine without a GPU ends it with the reason. */
    start_gateway(NULL);
    json_t *j = wait_job(id, "FAILED", 30);
    cr_assert(strstr(th_str(j, "status_reason"), "asks for 1 GPUs; this machine offers 0") != NULL,
              "%s", th_str(j, "status_reason"));
    json_decref(j);

    /* While the executor runs here, such a job is refused up front. */
    char url[128];
    snprintf(url, sizeof(url), "%s/jobs", gw.base);
    const char *h[] = {"Content-Type: application/json", auth, NULL};
    const char *body = "{\"script_key\": \"jobs/none.py\", \"compute_type\": \"gpu\", "
                       "\"gpus\": 1, \"vcpus\": 9, \"memory\": 64}";
    struct th_resp r;
    th_http(&r, "POST", url, h, body, strlen(body));
    th_assert_problem(&r, 422);
    json_t *p = th_resp_json(&r);
    const json_t *errors = json_object_get(p, "errors");
    cr_assert_eq(json_array_size(errors), 2, "%s", r.body);
    cr_assert_str_eq(th_str(json_array_get(errors, 0), "field"), "vcpus");
    cr_assert_str_eq(th_str(json_array_get(errors, 1), "field"), "gpus");
    cr_assert(strstr(th_str(json_array_get(errors, 1), "message"), "offers (0)") != NULL, "%s",
              r.body);
    json_decref(p);
    th_resp_dispose(&r);
    char *n = th_db_scalar(db, "SELECT count(*) FROM jobs");
    cr_assert_str_eq(n, "1", "a refused job is not stored");
    free(n);
}

Test(local, a_missing_script_fails_with_the_entrypoints_code)
{
    start_gateway(NULL);
    char id[37];
    submit(id, "{\"script_key\": \"jobs/missing.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
               "\"memory\": 64}");
    json_t *j = wait_job(id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "FAILED");
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 127);
    json_decref(j);
}

Test(local, an_interpreter_that_cannot_run_fails_the_job_with_the_reason)
{
    script("ok.py", "print('never')\n");
    const char *more[] = {"MLGW_LOCAL_PYTHON=/nonexistent/python3", NULL};
    start_gateway(more); /* later settings win: this replaces the venv's */
    char id[37];
    submit(id, "{\"script_key\": \"jobs/ok.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
               "\"memory\": 64, \"max_attempts\": 2}");
    json_t *j = wait_job(id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "FAILED");
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 127);
    cr_assert_eq(json_integer_value(json_object_get(j, "attempts")), 2);
    json_decref(j);
    char path[600];
    snprintf(path, sizeof(path), "%s/logs/%s.log", loc.root, id);
    char *log = read_file(path);
    cr_assert(log != NULL && strstr(log, "cannot execute the job's interpreter") != NULL, "%s",
              log ? log : "(no log)");
    free(log);
}

/* ---- stopping attempts ------------------------------------------------------- */

Test(local, timeout_terminates_the_process_group)
{
    script("hang.py", running_script);
    start_gateway(NULL);
    char id[37];
    /* The script ignores SIGTERM: only the SIGKILL after the grace ends it. */
    submit_marked(id, "jobs/hang.py", "marks", ", \"timeout_seconds\": 60, \"max_attempts\": 3",
                  ", \"IGNORE_TERM\": \"1\"");
    long pid = marked_pid("marks", "pid-1");
    json_t *j = wait_job(id, "SUCCEEDED|FAILED|CANCELLED", 120);
    cr_assert_str_eq(th_str(j, "status"), "FAILED");
    cr_assert(strstr(th_str(j, "status_reason"), "timed out after 60 s") != NULL, "%s",
              th_str(j, "status_reason"));
    cr_assert_eq(json_integer_value(json_object_get(j, "attempts")), 1, "a timeout is not retried");
    json_decref(j);
    cr_assert(gone_within(pid, 5), "the script (pid %ld) was killed", pid);
}

Test(local, sigterm_with_a_job_ignoring_it_exits_within_the_shutdown_budget_not_the_grace)
{
    script("hang.py", running_script);
    const char *more[] = {"MLGW_LOCAL_TERM_GRACE=30", "MLGW_SHUTDOWN_TIMEOUT=3", NULL};
    start_gateway(more);
    char id[37];
    submit_marked(id, "jobs/hang.py", "marks", ", \"max_attempts\": 2", ", \"IGNORE_TERM\": \"1\"");
    long pid = marked_pid("marks", "pid-1");
    json_decref(wait_job(id, "RUNNING", 30));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    gw_running = 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_expect_leq(took, 4.0, "stopped %.1f s after SIGTERM (budget 3 s + 1 s, grace 30 s)", took);
    cr_expect(gone_within(pid, 2), "the job's process (pid %ld) did not outlive the gateway", pid);
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT status FROM jobs WHERE id = '%s'", id);
    char *st = th_db_scalar(db, sql);
    cr_expect(st != NULL && strcmp(st, "RUNNABLE") == 0, "requeued for its second attempt: %s",
              st ? st : "(null)");
    free(st);
}

Test(local, cancel_stops_a_running_job)
{
    script("hang.py", running_script);
    start_gateway(NULL);
    char id[37];
    submit_marked(id, "jobs/hang.py", "marks", "", "");
    long pid = marked_pid("marks", "pid-1");
    json_decref(wait_job(id, "RUNNING", 10));
    cr_assert(alive(pid));

    /* /metrics shows the running attempt and what it holds. */
    char murl[128];
    snprintf(murl, sizeof(murl), "%s/metrics", gw.base);
    const char *mh[] = {auth, NULL};
    struct th_resp m;
    th_http(&m, "GET", murl, mh, NULL, 0);
    cr_assert_eq(m.status, 200);
    cr_assert(strstr(m.body, "\nmlgw_local_running 1\n") != NULL, "%s", m.body);
    cr_assert(strstr(m.body, "\nmlgw_local_in_use{resource=\"vcpus\"} 1\n") != NULL, "%s", m.body);
    cr_assert(strstr(m.body, "\nmlgw_local_capacity{resource=\"vcpus\"} 8\n") != NULL, "%s",
              m.body);
    cr_assert(strstr(m.body, "\nmlgw_local_waiting 0\n") != NULL, "%s", m.body);
    th_resp_dispose(&m);

    char url[160];
    snprintf(url, sizeof(url), "%s/jobs/%s/cancel", gw.base, id);
    const char *h[] = {auth, NULL};
    struct th_resp r;
    th_http(&r, "POST", url, h, NULL, 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *j = th_resp_json(&r);
    cr_assert_str_eq(th_str(j, "status"), "CANCELLED");
    json_decref(j);
    th_resp_dispose(&r);
    cr_assert(gone_within(pid, 10), "the script (pid %ld) was stopped", pid);

    /* The process tree is gone and the job stays CANCELLED; cancelling again is 409. */
    th_sleep_ms(500);
    j = get_job(id);
    cr_assert_str_eq(th_str(j, "status"), "CANCELLED");
    json_decref(j);
    th_http(&r, "POST", url, h, NULL, 0);
    cr_assert_eq(r.status, 409, "%s", r.body);
    th_resp_dispose(&r);
}

Test(local, nothing_a_job_started_outlives_it)
{
    /* The script leaves a daemon behind in a session of its own, then exits. */
    script("daemon.py", "import os, subprocess, sys\n"
                        "p = subprocess.Popen([sys.executable, '-c', 'import time; "
                        "time.sleep(3600)'], start_new_session=True)\n"
                        "open(os.path.join(os.environ['MARK_DIR'], 'daemon'), 'w')"
                        ".write(str(p.pid))\n");
    start_gateway(NULL);
    char id[37];
    submit_marked(id, "jobs/daemon.py", "marks", "", "");
    json_t *j = wait_job(id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    json_decref(j);
    long pid = marked_pid_if_alive("marks", "daemon");
    cr_assert(gone_within(pid, 5), "the job's daemon (pid %ld) was stopped with the job", pid);
}

/* ---- scheduling ---------------------------------------------------------------- */

Test(local, two_gpus_three_one_gpu_jobs)
{
    /* Each job appends "start|end <time> <CUDA_VISIBLE_DEVICES> <job>" lines.
     * It goes on until two jobs have started (30 s at most), then 1.5 s more:
     * two jobs that may run together do, however slowly the machine starts
     * them, and a third started beside them would be seen. */
    char trace[300];
    snprintf(trace, sizeof(trace), "%s/cache/trace.txt", loc.root);
    char text[1200];
    snprintf(text, sizeof(text),
             "import os, time\n"
             "def note(what):\n"
             "    with open('%s', 'a') as f:\n"
             "        f.write('%%s %%.6f %%s %%s\\n' %% (what, time.time(), "
             "os.environ['CUDA_VISIBLE_DEVICES'], os.environ['JOB_ID']))\n"
             "note('start')\n"
             "until = time.time() + 30\n"
             "while open('%s').read().count('start ') < 2 and time.time() < until:\n"
             "    time.sleep(0.05)\n"
             "time.sleep(1.5)\n"
             "note('end')\n",
             trace, trace);
    script("gpu.py", text);
    const char *more[] = {"MLGW_LOCAL_GPUS=2", NULL};
    start_gateway(more);
    char ids[3][37];
    for (int i = 0; i < 3; i++)
        submit(ids[i], "{\"script_key\": \"jobs/gpu.py\", \"compute_type\": \"gpu\", \"gpus\": 1, "
                       "\"vcpus\": 1, \"memory\": 64}");
    for (int i = 0; i < 3; i++) {
        json_t *j = wait_job(ids[i], "SUCCEEDED|FAILED", 60);
        cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
        json_decref(j);
    }
    char *s = read_file(trace);
    cr_assert(s != NULL);
    /* Replay the events in time order: never two jobs on one GPU, never
     * three at once, and every job on GPU 0 or 1 alone. */
    struct ev {
        int start;
        double t;
        char gpu[16], job[40];
    } evs[6];
    int n = 0;
    for (char *line = strtok(s, "\n"); line != NULL && n < 6; line = strtok(NULL, "\n")) {
        char what[8];
        cr_assert_eq(sscanf(line, "%7s %lf %15s %39s", what, &evs[n].t, evs[n].gpu, evs[n].job), 4,
                     "%s", line);
        evs[n].start = strcmp(what, "start") == 0;
        n++;
    }
    free(s);
    cr_assert_eq(n, 6);
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (evs[b].t < evs[a].t) {
                struct ev tmp = evs[a];
                evs[a] = evs[b];
                evs[b] = tmp;
            }
    int busy[2] = {0, 0}, running = 0, most = 0;
    for (int i = 0; i < n; i++) {
        cr_assert(strcmp(evs[i].gpu, "0") == 0 || strcmp(evs[i].gpu, "1") == 0,
                  "one GPU per job, got '%s'", evs[i].gpu);
        int g = evs[i].gpu[0] - '0';
        if (evs[i].start) {
            cr_assert_eq(busy[g], 0, "two jobs on GPU %d at once", g);
            busy[g] = 1;
            running++;
        } else {
            busy[g] = 0;
            running--;
        }
        most = running > most ? running : most;
    }
    cr_assert_eq(most, 2, "two jobs at once at most, and two did run together");
    /* The third waited as RUNNABLE for a free GPU. */
    json_t *third = get_job(ids[2]);
    cr_assert(has_history(third, "RUNNABLE", "waiting for local resources"));
    json_decref(third);
}

Test(local, gpu_slots_are_the_gateways_own_visible_devices)
{
    /* A gateway given devices 5 and 7 hands out those, not 0 and 1. */
    script("which.py", "import os\n"
                       "open(os.path.join(os.environ['ML_OUTPUT_DIR'], 'gpus.txt'), 'w')"
                       ".write(os.environ['CUDA_VISIBLE_DEVICES'])\n");
    const char *more[] = {"MLGW_LOCAL_GPUS=2", "CUDA_VISIBLE_DEVICES=5,7", NULL};
    start_gateway(more);
    char id[37];
    submit(id, "{\"script_key\": \"jobs/which.py\", \"compute_type\": \"gpu\", \"gpus\": 2, "
               "\"vcpus\": 1, \"memory\": 64}");
    json_t *j = wait_job(id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    json_decref(j);
    char path[600];
    snprintf(path, sizeof(path), "%s/output/jobs/%s/gpus.txt", loc.root, id);
    char *s = read_file(path);
    cr_assert(s != NULL && strcmp(s, "5,7") == 0, "%s", s ? s : "(missing)");
    free(s);
}

Test(local, jobs_start_first_in_first_out)
{
    char trace[300];
    snprintf(trace, sizeof(trace), "%s/cache/order.txt", loc.root);
    char text[600];
    snprintf(text, sizeof(text),
             "import os, sys, time\n"
             "open('%s', 'a').write(sys.argv[1] + '\\n')\n"
             "time.sleep(0.3)\n",
             trace);
    script("order.py", text);
    const char *more[] = {"MLGW_LOCAL_VCPUS=2", NULL};
    start_gateway(more);
    char ids[5][37];
    /* A 2-vCPU job first: the 1-vCPU ones behind it must not overtake it. */
    submit(ids[0], "{\"script_key\": \"jobs/order.py\", \"compute_type\": \"cpu\", \"vcpus\": 2, "
                   "\"memory\": 64, \"args\": [\"0\"]}");
    for (int i = 1; i < 5; i++) {
        char body[300];
        snprintf(body, sizeof(body),
                 "{\"script_key\": \"jobs/order.py\", \"compute_type\": \"cpu\", \"vcpus\": %d, "
                 "\"memory\": 64, \"args\": [\"%d\"]}",
                 i == 3 ? 2 : 1, i);
        submit(ids[i], body);
    }
    for (int i = 0; i < 5; i++)
        json_decref(wait_job(ids[i], "SUCCEEDED", 60));
    char *s = read_file(trace);
    cr_assert(s != NULL);
    /* 0 alone; 1 and 2 together (either order); 3 alone after both; then 4. */
    cr_assert(strcmp(s, "0\n1\n2\n3\n4\n") == 0 || strcmp(s, "0\n2\n1\n3\n4\n") == 0, "%s", s);
    free(s);
}

/* ---- crash safety --------------------------------------------------------------- */

Test(local, kill_9_of_the_gateway_while_jobs_run)
{
    script("hang.py", running_script);
    const char *more[] = {"MLGW_LOCAL_VCPUS=2", NULL};
    start_gateway(more);
    char once[37], retried[37], queued[37];
    submit_marked(once, "jobs/hang.py", "marks", "", "");
    submit_marked(retried, "jobs/hang.py", "marks2", ", \"max_attempts\": 2",
                  ", \"FINISH_ON_ATTEMPT\": \"2\"");
    long pid1 = marked_pid("marks", "pid-1"), pid2 = marked_pid("marks2", "pid-1");
    /* Both vCPUs are taken: this one waits in the queue. */
    submit(queued, "{\"script_key\": \"jobs/none.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
                   "\"memory\": 64}");
    json_decref(wait_job(queued, "RUNNABLE", 10));

    cr_assert_eq(kill(gw.pid, SIGKILL), 0);
    cr_assert_eq(th_gw_stop(&gw, SIGKILL, 10), 128 + SIGKILL);
    gw_running = 0;
    start_gateway(more);

    json_t *j = wait_job(once, "FAILED|SUCCEEDED", 30);
    cr_assert_str_eq(th_str(j, "status"), "FAILED");
    cr_assert(strstr(th_str(j, "status_reason"), "gateway restarted") != NULL, "%s",
              th_str(j, "status_reason"));
    json_decref(j);
    cr_assert(gone_within(pid1, 10), "the first gateway's attempt (pid %ld) is gone", pid1);

    j = wait_job(retried, "SUCCEEDED|FAILED", 30);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    cr_assert_eq(json_integer_value(json_object_get(j, "attempts")), 2);
    cr_assert(has_history(j, "RUNNABLE", "gateway restarted during attempt 1 of 2; retrying"));
    json_decref(j);
    cr_assert(!alive(pid2), "attempt 1 (pid %ld) ended before attempt 2 ran", pid2);
    char path[600];
    snprintf(path, sizeof(path), "%s/output/jobs/%s/done.txt", loc.root, retried);
    cr_assert_eq(access(path, F_OK), 0, "attempt 2 published its output");

    /* The queued job was not lost: it ran after the restart. */
    j = wait_job(queued, "SUCCEEDED|FAILED", 30);
    cr_assert_str_eq(th_str(j, "status"), "FAILED");
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 127, "it ran (no script)");
    json_decref(j);
}

Test(local, an_attempt_that_ends_while_postgresql_is_down_is_recorded_when_it_returns)
{
    struct th_pg pg = {0};
    th_pg_start(&pg);
    snprintf(db, sizeof(db), "%s", pg.url);
    char key[96];
    th_key_create(key, sizeof(key), db, "writer", "jobs:read,jobs:write");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    script("slow.py",
           "import os, time\n"
           "time.sleep(3)\n"
           "open(os.path.join(os.environ['ML_OUTPUT_DIR'], 'late.txt'), 'w').write('x')\n");
    const char *more[] = {"MLGW_DB_CONNECT_TIMEOUT=1", NULL};
    start_gateway(more);
    char id[37];
    submit(id, "{\"script_key\": \"jobs/slow.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
               "\"memory\": 64}");
    json_decref(wait_job(id, "RUNNING", 30));
    th_pg_stop(&pg);

    /* The attempt ends while the database is away (its log says so)... */
    char path[600];
    snprintf(path, sizeof(path), "%s/logs/%s.log", loc.root, id);
    int ended = 0;
    for (int i = 0; i < 200 && !ended; i++) {
        char *log = read_file(path);
        ended = log != NULL && strstr(log, "attempt 1 exited with code 0") != NULL;
        free(log);
        if (!ended)
            th_sleep_ms(100);
    }
    cr_assert(ended, "the attempt ended during the outage");
    th_sleep_ms(1500); /* and the executor tries to record it, in vain */

    /* ...and is recorded once it is back. */
    th_pg_start(&pg);
    char ready[160];
    snprintf(ready, sizeof(ready), "%s/readyz", gw.base);
    cr_assert_eq(th_wait_status(ready, 200, 30), 200);
    json_t *j = wait_job(id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    cr_assert_eq(json_integer_value(json_object_get(j, "exit_code")), 0);
    json_decref(j);
    snprintf(path, sizeof(path), "%s/output/jobs/%s/late.txt", loc.root, id);
    cr_assert_eq(access(path, F_OK), 0);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    gw_running = 0;
    th_pg_destroy(&pg);
}

/* ---- notifications ---------------------------------------------------------------- */

Test(local, terminal_states_notify)
{
    struct th_smtp smtp;
    th_smtp_start(&smtp, NULL, 0);
    script("ok.py", "print('fine')\n");
    script("bad.py", "import sys; sys.exit(9)\n");
    char env_smtp[96];
    snprintf(env_smtp, sizeof(env_smtp), "MLGW_SMTP_URL=%s", smtp.url);
    const char *more[] = {env_smtp, "MLGW_SMTP_TLS=off", "MLGW_NOTIFY_RETRY_BASE_MS=100", NULL};
    start_gateway(more);
    char ok[37], bad[37];
    submit(ok, "{\"script_key\": \"jobs/ok.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
               "\"memory\": 64, \"notify\": {\"emails\": [\"ok@ml.example\"]}}");
    submit(bad, "{\"script_key\": \"jobs/bad.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
                "\"memory\": 64, \"notify\": {\"emails\": [\"bad@ml.example\"]}}");
    json_decref(wait_job(ok, "SUCCEEDED", 60));
    json_decref(wait_job(bad, "FAILED", 60));
    for (int64_t end = th_deadline(30000); th_before(end); th_sleep_ms(50))
        if (th_smtp_count(&smtp, "ok@ml.example") >= 1 &&
            th_smtp_count(&smtp, "bad@ml.example") >= 1)
            break;
    cr_assert_eq(th_smtp_count(&smtp, "ok@ml.example"), 1);
    cr_assert_eq(th_smtp_count(&smtp, "bad@ml.example"), 1);
    char *m = th_smtp_message(&smtp, "ok@ml.example");
    cr_assert(m != NULL && strstr(m, ok) != NULL && strstr(m, "SUCCEEDED") != NULL, "%s", m);
    free(m);
    m = th_smtp_message(&smtp, "bad@ml.example");
    cr_assert(m != NULL && strstr(m, bad) != NULL && strstr(m, "FAILED") != NULL, "%s", m);
    free(m);
    th_smtp_stop(&smtp);
}

/* ---- the example jobs ------------------------------------------------------------- */

static json_t *load_output(const char *id, const char *rel)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/output/jobs/%s/%s", loc.root, id, rel);
    json_t *j = json_load_file(path, 0, NULL);
    cr_assert(j != NULL, "%s", path);
    return j;
}

static int manifest_lists(const char *id, const char *rel)
{
    json_t *m = load_output(id, "manifest.json");
    int found = 0;
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        found |= strcmp(th_str(f, "path"), rel) == 0;
    }
    json_decref(m);
    return found;
}

static int dir_entries(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", path);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    int n = -1;
    cr_assert_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

Test(local, the_example_jobs_run_through_the_executor)
{
    cr_assert(getenv("MLGW_VENV") != NULL && getenv("MLGW_VENV")[0] != '\0',
              "the examples need the test venv (PyTorch)");
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "cp '%s'/*.py '%s/input/jobs/'", th_source_path("examples"),
             loc.root);
    cr_assert_eq(system(cmd), 0);
    start_gateway(NULL);
    char cpu[37], train[37], warm[37], infer[37], clean[37];
    submit(cpu, "{\"script_key\": \"jobs/cpu_processing.py\", \"compute_type\": \"cpu\", "
                "\"vcpus\": 1, \"memory\": 512, \"args\": [\"--groups\", \"3\", "
                "\"--signals-per-group\", \"10\", \"--length\", \"256\", \"--seed\", \"11\"]}");
    submit(train, "{\"script_key\": \"jobs/gpu_training.py\", \"compute_type\": \"cpu\", "
                  "\"vcpus\": 2, \"memory\": 2048, \"max_attempts\": 2, \"args\": [\"--epochs\", "
                  "\"2\", \"--samples\", \"2048\", \"--hidden\", \"64\", \"--layers\", \"2\", "
                  "\"--batch-size\", \"128\"]}");
    submit(warm, "{\"script_key\": \"jobs/cleanup_processor.py\", \"compute_type\": \"cpu\", "
                 "\"vcpus\": 1, \"memory\": 256, \"operation\": \"warm-cache\", \"args\": "
                 "[\"--models\", \"alpha\", \"beta\", \"--size-mb\", \"0.05\"]}");

    json_t *j = wait_job(cpu, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    json_decref(j);
    cr_assert(manifest_lists(cpu, "features.csv") && manifest_lists(cpu, "groups.csv") &&
              manifest_lists(cpu, "summary.json"));

    j = wait_job(train, "SUCCEEDED|FAILED", 120);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    char body[1200];
    snprintf(body, sizeof(body),
             "{\"script_key\": \"jobs/gpu_inference.py\", \"compute_type\": \"cpu\", \"vcpus\": "
             "1, \"memory\": 1024, \"args\": [\"--checkpoint\", \"%scheckpoint.pt\", "
             "\"--samples\", \"64\", \"--batch-size\", \"16\"]}",
             th_str(j, "output_uri"));
    json_decref(j);
    cr_assert(manifest_lists(train, "checkpoint.pt") && manifest_lists(train, "metrics.json"));
    json_t *metrics = load_output(train, "metrics.json");
    cr_assert(json_real_value(json_object_get(metrics, "samples_per_s")) > 0);
    json_decref(metrics);
    submit(infer, body);
    j = wait_job(infer, "SUCCEEDED|FAILED", 120);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    json_decref(j);
    cr_assert(manifest_lists(infer, "predictions.csv"));

    /* warm-cache fills MODEL_CACHE_DIR (<root>/cache); cleanup-cache empties it. */
    j = wait_job(warm, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    json_decref(j);
    char cache[300];
    snprintf(cache, sizeof(cache), "%s/cache", loc.root);
    cr_assert(dir_entries(cache) > 0, "warm-cache wrote into %s", cache);
    submit(clean, "{\"script_key\": \"jobs/cleanup_processor.py\", \"compute_type\": \"cpu\", "
                  "\"vcpus\": 1, \"memory\": 256, \"operation\": \"cleanup-cache\"}");
    j = wait_job(clean, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    json_decref(j);
    cr_assert_eq(dir_entries(cache), 0, "cleanup-cache emptied %s", cache);
    json_t *report = load_output(clean, "summary.json");
    cr_assert(json_integer_value(json_object_get(report, "freed_bytes")) > 0);
    json_decref(report);
}
