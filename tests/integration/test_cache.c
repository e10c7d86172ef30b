/*
 * The model cache through the API (GET /cache, POST /cache/warm, POST
 * /cache/cleanup) on a real gateway, PostgreSQL and local executor running
 * examples/cleanup_processor.py in the job sandbox: a warm job fills the
 * cache and the scan shows it; cleanups of one model, of old entries and of
 * everything free what the status then reports; the seed's cleanup message
 * through POST /jobs still works; a second operation is refused while one
 * runs; the size policy starts exactly one cleanup; 100,000 files scan within
 * the bound while requests keep being answered.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../harness/harness.h"

static char db[1024], admin[128], writer[128], reader[128];
static char cache[300];
static struct th_local loc;
static struct th_gw gw;
static int gw_running;

static void copy_file(const char *from, const char *to)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    char key[96];
    th_key_create(key, sizeof(key), db, "admin", "admin");
    snprintf(admin, sizeof(admin), "Authorization: Bearer %s", key);
    th_key_create(key, sizeof(key), db, "writer", "jobs:read,jobs:write");
    snprintf(writer, sizeof(writer), "Authorization: Bearer %s", key);
    th_key_create(key, sizeof(key), db, "reader", "jobs:read");
    snprintf(reader, sizeof(reader), "Authorization: Bearer %s", key);
    th_local_make(&loc, "mlgw-cache");
    char to[512];
    snprintf(to, sizeof(to), "%s/input/jobs/cleanup_processor.py", loc.root);
    copy_file(th_source_path("examples/cleanup_processor.py"), to);
    snprintf(cache, sizeof(cache), "%s/cache", loc.root);
    cr_assert_eq(mkdir(cache, 0755), 0);
    gw_running = 0;
}

static char shm_cache[64]; /* a cache on tmpfs, when a test made one */

static void teardown(void)
{
    if (gw_running)
        cr_expect_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    th_local_remove(&loc);
    if (shm_cache[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", shm_cache);
        cr_expect_eq(system(cmd), 0);
        shm_cache[0] = '\0';
    }
}

TestSuite(cache, .init = setup, .fini = teardown);

/* The gateway with its executor and a fast scanner; more: NAME=VALUE. */
static void start(const char *const *more)
{
    const char *env[16] = {"MLGW_CACHE_SCAN_INTERVAL=1"};
    size_t k = 1;
    for (size_t i = 0; more != NULL && more[i] != NULL; i++)
        env[k++] = more[i];
    env[k] = NULL;
    th_local_gw_start(&gw, db, &loc, env);
    gw_running = 1;
}

/* POST path with body (may be NULL) and auth; the status, the body in *out
 * (new, may be NULL out). */
static long post(const char *path, const char *auth, const char *body, json_t **out,
                 const char *extra_header)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    const char *h[] = {auth, body ? "Content-Type: application/json" : extra_header,
                       body ? extra_header : NULL, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, body, body ? strlen(body) : 0), 0);
    if (out != NULL)
        *out = th_resp_json(&r);
    long status = r.status;
    th_resp_dispose(&r);
    return status;
}

static json_t *status_now(void)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/cache", gw.base);
    json_t *s = th_get_json(url, reader);
    cr_assert_not_null(s);
    return s;
}

/* The entry named name of a status, or NULL (borrowed). */
static json_t *entry(const json_t *status, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(status, "entries"), i, e)
    {
        if (strcmp(th_str(e, "name"), name) == 0)
            return e;
    }
    return NULL;
}

/* Polls GET /cache until "names" (space-separated, "" for none) are exactly
 * its entries and, when job_id is given, a scan began after that job ended
 * (the status's last_cleanup or operations show it finished). */
static json_t *status_wait(const char *names, int timeout_s)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char seen[1024] = "";
    for (;;) {
        json_t *s = status_now();
        char have[1024] = "";
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(s, "entries"), i, e)
        {
            size_t n = strlen(have);
            snprintf(have + n, sizeof(have) - n, "%s%s", n ? " " : "", th_str(e, "name"));
        }
        /* entries come largest first; compare as sets of names */
        int same = 1;
        char want[1024];
        snprintf(want, sizeof(want), "%s", names);
        size_t count = 0;
        for (char *save = NULL, *w = strtok_r(want, " ", &save); w;
             w = strtok_r(NULL, " ", &save)) {
            same &= entry(s, w) != NULL;
            count++;
        }
        same &= json_array_size(json_object_get(s, "entries")) == count;
        if (same && json_is_string(json_object_get(s, "scanned_at")))
            return s;
        snprintf(seen, sizeof(seen), "%s", have);
        json_decref(s);
        clock_gettime(CLOCK_MONOTONIC, &t);
        cr_assert_lt(t.tv_sec - t0.tv_sec, timeout_s, "cache entries \"%s\", want \"%s\"", seen,
                     names);
        th_sleep_ms(200);
    }
}

/* Polls GET /cache until last_cleanup is job id with freed_bytes known. */
static json_t *cleanup_wait(const char *id, int timeout_s)
{
    for (int i = 0; i < timeout_s * 5; i++) {
        json_t *s = status_now();
        json_t *lc = json_object_get(s, "last_cleanup");
        if (lc != NULL && strcmp(th_str(lc, "job_id"), id) == 0 &&
            json_is_integer(json_object_get(lc, "freed_bytes")))
            return s;
        json_decref(s);
        th_sleep_ms(200);
    }
    cr_assert_fail("cleanup %s: no freed_bytes in GET /cache within %d s", id, timeout_s);
    return NULL;
}

/* Runs a cache operation through path; returns the finished job (new). */
static json_t *operate(const char *path, const char *auth, const char *body, const char *op)
{
    json_t *job = NULL;
    long st = post(path, auth, body, &job, NULL);
    cr_assert_eq(st, 202, "%s: %ld %s", path, st, job ? json_dumps(job, 0) : "");
    cr_assert_str_eq(th_str(job, "operation"), op);
    cr_assert_str_eq(th_str(job, "script_key"), "jobs/cleanup_processor.py");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(job, "id"));
    json_decref(job);
    return th_job_wait(&gw, admin, id, "SUCCEEDED|FAILED", 60);
}

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

Test(cache, warm_shows_then_cleanup_of_one_and_of_everything_frees_it)
{
    start(NULL);
    json_t *s = status_wait("", 20);
    cr_assert_eq(jint(s, "bytes"), 0);
    cr_assert_str_eq(th_str(s, "root"), cache);
    cr_assert(json_is_null(json_object_get(s, "last_cleanup")));
    cr_assert(json_is_null(json_object_get(s, "max_bytes")));
    json_decref(s);

    json_t *job =
        operate("/cache/warm", writer, "{\"models\": [\"alpha\", \"beta\"]}", "warm-cache");
    cr_assert_str_eq(th_str(job, "status"), "SUCCEEDED");
    char warm_id[37];
    snprintf(warm_id, sizeof(warm_id), "%s", th_str(job, "id"));
    json_decref(job);
    s = status_wait("alpha beta", 20);
    long long alpha = jint(entry(s, "alpha"), "bytes");
    cr_assert_gt(alpha, 8 << 20, "8 MiB of weights and model.json");
    cr_assert_eq(jint(s, "bytes"), alpha + jint(entry(s, "beta"), "bytes"));
    cr_assert_eq(jint(s, "files"), 4);
    cr_assert_eq(jint(entry(s, "alpha"), "files"), 2);
    cr_assert(json_is_string(json_object_get(entry(s, "alpha"), "last_used_at")));
    json_t *op = json_array_get(json_object_get(s, "operations"), 0);
    cr_assert_str_eq(th_str(op, "job_id"), warm_id);
    cr_assert_str_eq(th_str(op, "operation"), "warm-cache");
    cr_assert_str_eq(th_str(op, "origin"), "api");
    json_decref(s);

    job = operate("/cache/cleanup", admin, "{\"models\": [\"alpha\"]}", "cleanup-cache");
    cr_assert_str_eq(th_str(job, "status"), "SUCCEEDED");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(job, "id"));
    json_decref(job);
    json_decref(status_wait("beta", 20));
    s = cleanup_wait(id, 20);
    cr_assert_eq(jint(json_object_get(s, "last_cleanup"), "freed_bytes"), alpha);
    long long beta = jint(entry(s, "beta"), "bytes");
    json_decref(s);

    job = operate("/cache/cleanup", admin, NULL, "cleanup-cache"); /* no body: everything */
    snprintf(id, sizeof(id), "%s", th_str(job, "id"));
    json_decref(job);
    json_decref(status_wait("", 20));
    s = cleanup_wait(id, 20);
    cr_assert_eq(jint(json_object_get(s, "last_cleanup"), "freed_bytes"), beta);
    cr_assert_eq(jint(s, "bytes"), 0);
    cr_assert_eq(json_array_size(json_object_get(s, "operations")), 3);
    json_decref(s);

    /* The job's manifest says what it did to the cache. */
    char path[600];
    snprintf(path, sizeof(path), "%s/output/jobs/%s/manifest.json", loc.root, warm_id);
    json_t *m = json_load_file(path, 0, NULL);
    cr_assert_not_null(m, "%s", path);
    json_t *created = json_object_get(json_object_get(m, "cache"), "created");
    cr_assert_eq(json_array_size(created), 2);
    json_decref(m);
}

/* A folder of n files of size bytes each, its times set back by age_s,
 * open to the jobs' user (who cleans it up). */
static void make_entry(const char *name, int n, size_t size, long age_s)
{
    char dir[600], file[700];
    snprintf(dir, sizeof(dir), "%s/%s", cache, name);
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "%s", dir);
    char *data = calloc(1, size ? size : 1);
    for (int i = 0; i < n; i++) {
        snprintf(file, sizeof(file), "%s/f%d", dir, i);
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        cr_assert(fd >= 0, "%s", file);
        cr_assert_eq(write(fd, data, size), (ssize_t)size);
        close(fd);
        if (age_s > 0) {
            struct timespec ts[2] = {{time(NULL) - age_s, 0}, {time(NULL) - age_s, 0}};
            cr_assert_eq(utimensat(AT_FDCWD, file, ts, 0), 0);
        }
    }
    free(data);
    if (age_s > 0) {
        struct timespec ts[2] = {{time(NULL) - age_s, 0}, {time(NULL) - age_s, 0}};
        cr_assert_eq(utimensat(AT_FDCWD, dir, ts, 0), 0);
    }
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "chmod -R a+rwX '%s'", dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(cache, cleanup_older_than_removes_only_entries_unused_since)
{
    start(NULL);
    json_decref(status_wait("", 20));
    make_entry("old", 3, 1000, 10L * 86400);
    make_entry("fresh", 2, 1000, 0);
    json_decref(status_wait("old fresh", 20));
    json_t *job = operate("/cache/cleanup", admin, "{\"older_than_days\": 7}", "cleanup-cache");
    cr_assert_str_eq(th_str(job, "status"), "SUCCEEDED");
    char id[37];
    snprintf(id, sizeof(id), "%s", th_str(job, "id"));
    json_decref(job);
    json_decref(status_wait("fresh", 20));
    json_t *s = cleanup_wait(id, 20);
    cr_assert_eq(jint(json_object_get(s, "last_cleanup"), "freed_bytes"), 3000);
    json_decref(s);
}

Test(cache, the_seeds_cleanup_message_through_post_jobs_still_works)
{
    start(NULL);
    make_entry("m1", 4, 500, 0);
    json_decref(status_wait("m1", 20));
    char id[37];
    th_job_submit(id, &gw, writer,
                  "{\"trigger_type\": \"batch_job\", \"data\": {\"script_key\": "
                  "\"jobs/cleanup_processor.py\", \"compute_type\": \"cpu\", \"operation\": "
                  "\"cleanup-cache\"}, \"metadata\": {\"user\": \"ops\"}}");
    json_t *job = th_job_wait(&gw, writer, id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(job, "status"), "SUCCEEDED");
    json_decref(job);
    json_decref(status_wait("", 20));
    json_t *s = cleanup_wait(id, 20);
    cr_assert_eq(jint(json_object_get(s, "last_cleanup"), "freed_bytes"), 2000);
    json_t *op = json_array_get(json_object_get(s, "operations"), 0);
    cr_assert_str_eq(th_str(op, "origin"), "job");
    json_decref(s);
}

struct racer {
    const char *path, *auth, *body;
    long status;
};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* Plain libcurl, no assertion: Criterion's belong to the test's own thread. */
static void *race(void *arg)
{
    struct racer *r = arg;
    char url[256];
    snprintf(url, sizeof(url), "%s%s", gw.base, r->path);
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, r->auth);
    if (r->body != NULL)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    r->status = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return NULL;
}

Test(cache, one_operation_at_a_time_and_retries_replay)
{
    start(NULL);
    /* A slow cleanup: a large tree keeps the job running for a while. */
    make_entry("big", 2000, 10, 0);
    struct racer r[4] = {
        {"/cache/cleanup", admin, "{}", 0},
        {"/cache/cleanup", admin, "{\"models\": [\"big\"]}", 0},
        {"/cache/warm", writer, "{\"models\": [\"w1\"]}", 0},
        {"/cache/cleanup", admin, NULL, 0},
    };
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
    int accepted = 0, refused = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        accepted += r[i].status == 202;
        refused += r[i].status == 409;
    }
    cr_assert_eq(accepted, 1, "exactly one of four concurrent operations starts");
    cr_assert_eq(refused, 3);

    json_t *body = NULL;
    cr_assert_eq(post("/cache/warm", writer, "{\"models\": [\"w2\"]}", &body, NULL), 409);
    cr_assert_not_null(strstr(th_str(body, "detail"), "one cache operation at a time"), "%s",
                       th_str(body, "detail"));
    json_decref(body);
    char count[64];
    snprintf(count, sizeof(count), "SELECT count(*) FROM jobs");
    char *n = th_db_scalar(db, count);
    cr_assert_str_eq(n, "1", "a refused operation creates no job");
    free(n);

    /* Wait for it to end: then an Idempotency-Key makes one operation of two tries. */
    for (int i = 0; i < 300; i++) {
        json_t *s = status_now();
        json_t *op = json_array_get(json_object_get(s, "operations"), 0);
        int done = strcmp(th_str(op, "status"), "SUCCEEDED") == 0;
        json_decref(s);
        if (done)
            break;
        th_sleep_ms(200);
    }
    json_t *first = NULL, *second = NULL;
    cr_assert_eq(
        post("/cache/warm", writer, "{\"models\": [\"w3\"]}", &first, "Idempotency-Key: warm-w3"),
        202);
    cr_assert_eq(
        post("/cache/warm", writer, "{\"models\": [\"w3\"]}", &second, "Idempotency-Key: warm-w3"),
        202, "a retry replays the first answer instead of meeting a 409");
    cr_assert_str_eq(th_str(first, "id"), th_str(second, "id"));
    json_decref(first);
    json_decref(second);
}

Test(cache, bad_requests_are_refused_and_change_nothing)
{
    start(NULL);
    struct {
        const char *path, *auth, *body;
        long status;
    } cases[] = {
        {"/cache/warm", writer, "{}", 422},
        {"/cache/warm", writer, "{\"models\": []}", 422},
        {"/cache/warm", writer, "{\"models\": [\"../etc\"]}", 422},
        {"/cache/warm", writer, "{\"models\": [\"a\", \"a\"]}", 422},
        {"/cache/warm", writer, "{\"models\": [\"a\"], \"size\": 1}", 422},
        {"/cache/warm", writer, "[1]", 400},
        {"/cache/warm", reader, "{\"models\": [\"a\"]}", 403},
        {"/cache/cleanup", writer, "{}", 403},
        {"/cache/cleanup", admin, "{\"older_than_days\": 0}", 422},
        {"/cache/cleanup", admin, "{\"older_than_days\": \"7\"}", 422},
        {"/cache/cleanup", admin, "{\"models\": [\"a\"], \"older_than_days\": 3}", 422},
        {"/cache/cleanup", admin, "{\"everything\": true}", 422},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *body = NULL;
        long st = post(cases[i].path, cases[i].auth, cases[i].body, &body, NULL);
        cr_assert_eq(st, cases[i].status, "%s %s: %ld", cases[i].path, cases[i].body, st);
        json_decref(body);
    }
    char *n = th_db_scalar(db, "SELECT count(*) FROM jobs");
    cr_assert_str_eq(n, "0");
    free(n);
    n = th_db_scalar(db, "SELECT count(*) FROM cache_operations");
    cr_assert_str_eq(n, "0");
    free(n);
}

Test(cache, above_its_maximum_the_policy_starts_one_lru_cleanup)
{
    make_entry("oldest", 1, 100000, 3 * 86400);
    make_entry("older", 1, 100000, 2 * 86400);
    make_entry("newest", 1, 100000, 0);
    /* 300,000 bytes against 250,000: down to 200,000 takes the oldest only. */
    const char *more[] = {"MLGW_CACHE_MAX_BYTES=250000", NULL};
    start(more);
    json_decref(status_wait("older newest", 40));
    /* Its operation is recorded as over (up to 30 s)... */
    for (int64_t end = th_deadline(30000); th_before(end); th_sleep_ms(100)) {
        json_t *now = status_now();
        const char *st = th_str(json_array_get(json_object_get(now, "operations"), 0), "status");
        int over = st != NULL && strcmp(st, "SUCCEEDED") == 0;
        json_decref(now);
        if (over)
            break;
    }
    /* ...and later scans find it below the maximum: no second policy cleanup. */
    th_sleep_ms(5000);
    json_t *s = status_now();
    json_t *ops = json_object_get(s, "operations");
    cr_assert_eq(json_array_size(ops), 1);
    json_t *op = json_array_get(ops, 0);
    cr_assert_str_eq(th_str(op, "origin"), "policy");
    cr_assert_str_eq(th_str(op, "status"), "SUCCEEDED");
    json_t *models = json_object_get(json_object_get(op, "request"), "models");
    cr_assert_eq(json_array_size(models), 1);
    cr_assert_str_eq(json_string_value(json_array_get(models, 0)), "oldest");
    cr_assert_eq(jint(s, "max_bytes"), 250000);
    cr_assert_eq(jint(s, "bytes"), 200000);
    json_decref(s);
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", gw.base);
    const char *h[] = {reader, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "GET", url, h, NULL, 0), 0);
    cr_assert_not_null(strstr(r.body, "mlgw_cache_policy_cleanups_total 1"), "%s", r.body);
    cr_assert_not_null(strstr(r.body, "mlgw_cache_bytes 200000"));
    th_resp_dispose(&r);
}

Test(cache, a_hundred_thousand_files_scan_within_the_bound_while_requests_flow)
{
    enum { DIRS = 100, PER_DIR = 1000 };
    /* On tmpfs where there is one: what is measured is the scan and the requests beside
     * it, not how fast this machine's disk creates 100,000 files (a minute on a busy VM). */
    char env_cache[400];
    snprintf(shm_cache, sizeof(shm_cache), "/dev/shm/mlgw-cache-XXXXXX");
    if (mkdtemp(shm_cache) != NULL) {
        snprintf(cache, sizeof(cache), "%s", shm_cache);
        cr_assert_eq(chmod(cache, 0755), 0);
    } else {
        shm_cache[0] = '\0';
    }
    snprintf(env_cache, sizeof(env_cache), "MLGW_CACHE_DIR=%s", cache);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int d = 0; d < DIRS; d++) {
        char name[32];
        snprintf(name, sizeof(name), "model-%03d", d);
        make_entry(name, PER_DIR, 16, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_log_info("made 100,000 files in %ld s", (long)(t1.tv_sec - t0.tv_sec));
    const char *more[] = {"MLGW_CACHE_SCAN_TIMEOUT=30", env_cache, NULL};
    start(more);
    /* Requests during the first scans: each answered promptly. */
    char url[128];
    snprintf(url, sizeof(url), "%s/jobs?limit=5", gw.base);
    const char *h[] = {reader, NULL};
    double worst = 0;
    json_t *s = NULL;
    for (int64_t end = th_deadline(60000); s == NULL && th_before(end);) {
        struct th_resp r;
        cr_assert_eq(th_http(&r, "GET", url, h, NULL, 0), 0);
        cr_assert_eq(r.status, 200);
        if (r.seconds > worst)
            worst = r.seconds;
        th_resp_dispose(&r);
        json_t *now = status_now();
        if (jint(now, "files") >= (long long)DIRS * PER_DIR)
            s = now;
        else
            json_decref(now);
        th_sleep_ms(25);
    }
    cr_assert_not_null(s, "no scan saw the 100,000 files");
    cr_log_info("the scan of 100,000 files took %lld ms",
                jint(json_object_get(s, "scan"), "duration_ms"));
    json_t *scan = json_object_get(s, "scan");
    cr_assert(json_is_true(json_object_get(scan, "complete")));
    cr_assert_lt(jint(scan, "duration_ms"), 30000);
    cr_assert_eq(json_array_size(json_object_get(s, "entries")), DIRS);
    cr_assert_eq(jint(s, "bytes"), (long long)DIRS * PER_DIR * 16);
    cr_assert_lt(worst, 1.0, "a request took %.3f s during the scan", worst);
    json_decref(s);
}
