/*
 * harness.c — process, database and HTTP plumbing for integration tests.
 * Failures here abort the calling test with a message saying what broke.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void th_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t th_deadline(long ms)
{
    return th_now_ms() + ms;
}

int th_before(int64_t deadline)
{
    return th_now_ms() < deadline;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf != NULL && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *p = realloc(buf, cap * 2);
            if (p == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

const char *th_source_path(const char *rel)
{
    static _Thread_local char path[1024];
    const char *src = getenv("MLGW_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/%s", src ? src : ".", rel);
    return path;
}

const char *th_pg_base_url(void)
{
    static char url[1024];
    if (url[0] != '\0')
        return url;
    const char *env = getenv("DATABASE_URL");
    if (env != NULL && env[0] != '\0') {
        snprintf(url, sizeof(url), "%s", env);
        return url;
    }
    const char *dir = getenv("MLGW_TEST_PG_DIR");
    cr_assert(dir != NULL, "neither DATABASE_URL nor MLGW_TEST_PG_DIR is set");
    char path[512];
    snprintf(path, sizeof(path), "%s/url", dir);
    char *s = read_all(path);
    cr_assert(s != NULL, "cannot read %s: did the pg_cluster_start fixture run?", path);
    s[strcspn(s, "\n")] = '\0';
    snprintf(url, sizeof(url), "%s", s);
    free(s);
    return url;
}

static const char *moto_file(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("MLGW_TEST_MOTO_DIR");
    cr_assert(dir != NULL, "MLGW_TEST_MOTO_DIR is not set: run through ctest");
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

const char *th_moto_url(void)
{
    static char url[256];
    if (url[0] == '\0') {
        char path[512];
        char *s = read_all(moto_file("url", path, sizeof(path)));
        cr_assert(s != NULL, "no moto url: did the moto_start fixture run?");
        s[strcspn(s, "\n")] = '\0';
        snprintf(url, sizeof(url), "%s", s);
        free(s);
    }
    return url;
}

const char *th_moto_resource(const char *name)
{
    static json_t *res;
    if (res == NULL) {
        char path[512];
        res = json_load_file(moto_file("resources.json", path, sizeof(path)), 0, NULL);
        cr_assert(res != NULL, "cannot read moto resources.json");
    }
    const char *v = json_string_value(json_object_get(res, name));
    cr_assert(v != NULL, "no moto resource %s", name);
    return v;
}

/* Rewrites a conninfo (URL or key/value) with another dbname, as key/value. */
static void with_dbname(char *out, size_t outlen, const char *base, const char *dbname)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &errmsg);
    cr_assert(opts != NULL, "bad base URL: %s", errmsg ? errmsg : "?");
    size_t off = 0;
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || strcmp(o->keyword, "dbname") == 0)
            continue;
        int n = snprintf(out + off, outlen - off, "%s='%s' ", o->keyword, o->val);
        cr_assert(n > 0 && (size_t)n < outlen - off);
        off += (size_t)n;
    }
    int n = snprintf(out + off, outlen - off, "dbname='%s'", dbname);
    cr_assert(n > 0 && (size_t)n < outlen - off);
    PQconninfoFree(opts);
}

int th_db_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;
        if (rc != 0)
            cr_log_warn("SQL failed: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        cr_log_warn("cannot connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

char *th_db_scalar(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    char *out = NULL;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            out = strdup(PQgetvalue(r, 0, 0));
        else if (PQresultStatus(r) != PGRES_TUPLES_OK)
            cr_log_warn("SQL failed: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    }
    PQfinish(c);
    return out;
}

void th_db_create(char *out, size_t outlen, const char *base_url)
{
    if (base_url == NULL)
        base_url = th_pg_base_url();
    unsigned char rnd[8];
    cr_assert(RAND_bytes(rnd, sizeof(rnd)) == 1);
    char name[32] = "t_";
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(name + 2 + 2 * i, 3, "%02x", rnd[i]);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    cr_assert(th_db_exec(base_url, sql) == 0, "cannot create database %s", name);
    with_dbname(out, outlen, base_url, name);
}

void th_pg_start(struct th_pg *pg)
{
    if (pg->dir[0] == '\0') {
        snprintf(pg->dir, sizeof(pg->dir), "/tmp/mlgw-pg-XXXXXX");
        cr_assert(mkdtemp(pg->dir) != NULL, "mkdtemp: %s", strerror(errno));
    }
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "MLGW_PG_FAST=1 '%s' start '%s'", th_source_path("scripts/pg.sh"),
             pg->dir);
    cr_assert(system(cmd) == 0, "cannot start PostgreSQL in %s", pg->dir);
    char path[300];
    snprintf(path, sizeof(path), "%s/url", pg->dir);
    char *s = read_all(path);
    cr_assert(s != NULL);
    s[strcspn(s, "\n")] = '\0';
    snprintf(pg->url, sizeof(pg->url), "%s", s);
    free(s);
}

void th_pg_stop(struct th_pg *pg)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' stop '%s'", th_source_path("scripts/pg.sh"), pg->dir);
    cr_assert(system(cmd) == 0, "cannot stop PostgreSQL in %s", pg->dir);
}

void th_pg_destroy(struct th_pg *pg)
{
    if (pg->dir[0] == '\0')
        return;
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' destroy '%s' >/dev/null 2>&1", th_source_path("scripts/pg.sh"),
             pg->dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", pg->dir);
    pg->dir[0] = '\0';
}

static void child_env(const char *db_url, const char *const *env)
{
    /* A test that fails mid-way must not leave its gateway running. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (db_url != NULL)
        setenv("DATABASE_URL", db_url, 1);
    else
        unsetenv("DATABASE_URL");
    setenv("MLGW_LISTEN", "127.0.0.1:0", 1);
    setenv("MLGW_MIGRATIONS_DIR", th_source_path("migrations"), 1);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        char kv[2048];
        snprintf(kv, sizeof(kv), "%s", env[i]);
        char *eq = strchr(kv, '=');
        if (eq == NULL) {
            unsetenv(kv);
            continue;
        }
        *eq = '\0';
        setenv(kv, eq + 1, 1);
    }
}

static const char *gw_bin(void)
{
    const char *bin = getenv("MLGW_BIN");
    return bin ? bin : "build/ml-gateway";
}

void th_gw_start(struct th_gw *gw, const char *db_url, const char *const *env)
{
    memset(gw, 0, sizeof(*gw));
    snprintf(gw->log_path, sizeof(gw->log_path), "/tmp/mlgw-log-XXXXXX");
    int fd = mkstemp(gw->log_path);
    cr_assert(fd >= 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        close(fd);
        child_env(db_url, env);
        execl(gw_bin(), gw_bin(), (char *)NULL);
        _exit(127);
    }
    close(fd);
    gw->pid = pid;
    for (int i = 0; i < 600; i++) { /* 30 s: sanitizer builds start slowly */
        char *log = read_all(gw->log_path);
        const char *p = log ? strstr(log, "\"msg\":\"listening\",\"port\":") : NULL;
        if (p != NULL) {
            gw->port = (unsigned)strtoul(p + strlen("\"msg\":\"listening\",\"port\":"), NULL, 10);
            free(log);
            snprintf(gw->base, sizeof(gw->base), "http://127.0.0.1:%u", gw->port);
            return;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            cr_assert_fail("gateway exited before listening (status %d):\n%s", status,
                           log ? log : "");
        }
        free(log);
        th_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    cr_assert_fail("gateway did not start listening within 30 s");
}

static int wait_exit(pid_t pid, int timeout_s)
{
    for (int i = 0; i < timeout_s * 50; i++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
            return -1;
        }
        th_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* A sanitizer report in a child's output fails the test, whatever its status. */
static void assert_no_sanitizer_report(const char *log)
{
    if (log == NULL)
        return;
    cr_assert(strstr(log, "Sanitizer") == NULL && strstr(log, "runtime error") == NULL,
              "sanitizer report in the gateway's output:\n%s", log);
}

int th_gw_stop(struct th_gw *gw, int sig, int timeout_s)
{
    if (gw->pid <= 0)
        return -1;
    if (sig != 0)
        kill(gw->pid, sig);
    int rc = wait_exit(gw->pid, timeout_s);
    char *log = read_all(gw->log_path);
    if (rc != 0 && log != NULL) {
        /* Shown only when the test fails: what the gateway said last. */
        size_t len = strlen(log);
        (void)fprintf(stderr, "gateway %d: exit status %d; the end of its log:\n%s\n", (int)gw->pid,
                      rc, log + (len > 6000 ? len - 6000 : 0));
    }
    gw->pid = 0;
    assert_no_sanitizer_report(log);
    free(log);
    return rc;
}

char *th_gw_log(const struct th_gw *gw)
{
    return read_all(gw->log_path);
}

int th_gw_run(char **out, const char *const *args, const char *db_url, const char *const *env,
              int timeout_s)
{
    char path[] = "/tmp/mlgw-run-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd, STDERR_FILENO);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        close(fd);
        child_env(db_url, env);
        const char *argv[16] = {gw_bin()};
        for (size_t i = 0; args != NULL && args[i] != NULL && i < 14; i++)
            argv[i + 1] = args[i];
        execv(gw_bin(), (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fd);
    int rc = wait_exit(pid, timeout_s);
    char *log = read_all(path);
    unlink(path);
    assert_no_sanitizer_report(log);
    if (out != NULL)
        *out = log;
    else
        free(log);
    return rc;
}

void th_key_create(char *out, size_t outlen, const char *db_url, const char *name,
                   const char *scopes)
{
    const char *args[] = {"--name", name, "--scopes", scopes, NULL};
    th_key_create_args(out, outlen, db_url, args);
}

void th_key_create_args(char *out, size_t outlen, const char *db_url, const char *const *args)
{
    enum { MAX_ARGS = 16 };
    const char *argv[MAX_ARGS + 4] = {gw_bin(), "keys", "create"};
    size_t n = 3;
    for (size_t i = 0; args[i] != NULL; i++) {
        cr_assert(i < MAX_ARGS, "too many arguments for keys create");
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    char path[] = "/tmp/mlgw-key-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDERR_FILENO);
        close(fd);
        child_env(db_url, NULL);
        execv(gw_bin(), (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fd);
    int rc = wait_exit(pid, 30);
    char *key = read_all(path);
    unlink(path);
    cr_assert(rc == 0 && key != NULL, "keys create failed (%d)", rc);
    key[strcspn(key, "\n")] = '\0';
    cr_assert(strncmp(key, "mlgw_", 5) == 0 && strlen(key) < outlen, "odd key: %s", key);
    memcpy(out, key, strlen(key) + 1);
    free(key);
}

/* Appends one exchange to $MLGW_CONTRACT_LOG (one write: lines never interleave). */
static void contract_record(const char *method, const char *url, const struct th_resp *r)
{
    const char *log = getenv("MLGW_CONTRACT_LOG");
    if (log == NULL || log[0] == '\0' || r->status == 0)
        return;
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    char *ct = th_resp_header(r, "Content-Type");
    json_t *rec = json_pack("{s:s,s:s,s:i,s:s?,s:s}", "method", method, "path", path ? path : "/",
                            "status", (int)r->status, "content_type", ct, "body", r->body);
    free(ct);
    char *line = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (line == NULL)
        return;
    size_t n = strlen(line);
    line[n] = '\n';
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, line, n + 1);
        (void)w;
        close(fd);
    }
    free(line);
}

struct sink {
    char *data;
    size_t len;
};

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb;
    char *p = realloc(s->data, s->len + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + s->len, ptr, n);
    s->len += n;
    p[s->len] = '\0';
    s->data = p;
    return n;
}

int th_http(struct th_resp *out, const char *method, const char *url, const char *const *headers,
            const char *body, size_t body_len)
{
    memset(out, 0, sizeof(*out));
    CURL *c = curl_easy_init();
    cr_assert(c != NULL);
    struct sink b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &out->seconds);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    out->body = b.data ? b.data : strdup("");
    out->headers = h.data ? h.data : strdup("");
    if (rc == CURLE_OK)
        contract_record(method, url, out);
    return rc == CURLE_OK ? 0 : -1;
}

char *th_resp_header(const struct th_resp *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            return strndup(v, len - (size_t)(v - p));
        }
        p = eol ? eol + 2 : p + len;
    }
    return NULL;
}

json_t *th_resp_json(const struct th_resp *r)
{
    return json_loads(r->body, 0, NULL);
}

void th_resp_dispose(struct th_resp *r)
{
    free(r->body);
    free(r->headers);
    r->body = NULL;
    r->headers = NULL;
}

long th_wait_status(const char *url, long want, int timeout_s)
{
    long last = 0;
    for (int i = 0; i < timeout_s * 10; i++) {
        struct th_resp r;
        th_http(&r, "GET", url, NULL, NULL, 0);
        last = r.status;
        th_resp_dispose(&r);
        if (last == want)
            return last;
        th_sleep_ms(100);
    }
    return last;
}

void th_assert_problem(const struct th_resp *r, long want)
{
    cr_assert_eq(r->status, want, "status %ld, want %ld; body: %s", r->status, want, r->body);
    char *ct = th_resp_header(r, "Content-Type");
    cr_assert(ct != NULL && strcmp(ct, "application/problem+json") == 0,
              "problem content type, got %s", ct ? ct : "(none)");
    free(ct);
    json_t *j = th_resp_json(r);
    cr_assert(j != NULL, "problem body is not JSON: %s", r->body);
    cr_assert(json_is_string(json_object_get(j, "type")));
    cr_assert(json_is_string(json_object_get(j, "title")));
    cr_assert_eq(json_integer_value(json_object_get(j, "status")), want);
    cr_assert(json_is_string(json_object_get(j, "instance")));
    const char *rid = json_string_value(json_object_get(j, "request_id"));
    char *hrid = th_resp_header(r, "X-Request-Id");
    cr_assert(rid != NULL && hrid != NULL && strcmp(rid, hrid) == 0,
              "request_id in the body matches X-Request-Id");
    free(hrid);
    json_decref(j);
}

const char *th_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

json_t *th_get_json(const char *url, const char *auth_header)
{
    const char *h[] = {auth_header, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "GET", url, auth_header != NULL ? h : NULL, NULL, 0), 0);
    cr_assert_eq(r.status, 200, "GET %s: %ld %s", url, r.status, r.body);
    json_t *j = th_resp_json(&r);
    cr_assert(j != NULL, "GET %s: not JSON: %s", url, r.body);
    th_resp_dispose(&r);
    return j;
}

void th_local_make(struct th_local *l, const char *prefix)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->root, sizeof(l->root), "/tmp/%s-XXXXXX", prefix);
    cr_assert_not_null(mkdtemp(l->root), "mkdtemp %s", l->root);
    char path[512];
    snprintf(path, sizeof(path), "%s/input", l->root);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/input/jobs", l->root);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(l->env_root, sizeof(l->env_root), "MLGW_LOCAL_ROOT=%s", l->root);
    snprintf(l->env_entry, sizeof(l->env_entry), "MLGW_LOCAL_ENTRYPOINT=%s",
             th_source_path("images/entrypoint/entrypoint.py"));
    const char *venv = getenv("MLGW_VENV");
    snprintf(l->env_python, sizeof(l->env_python), "MLGW_LOCAL_PYTHON=%s%s",
             venv && *venv ? venv : "", venv && *venv ? "/bin/python" : "python3");
}

void th_local_remove(const struct th_local *l)
{
    if (l->root[0] == '\0')
        return;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", l->root);
    cr_expect_eq(system(cmd), 0);
}

void th_job_submit(char id[37], const struct th_gw *gw, const char *auth, const char *body)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/jobs", gw->base);
    const char *h[] = {"Content-Type: application/json", auth, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, body, strlen(body)), 0);
    cr_assert_eq(r.status, 202, "%s", r.body);
    json_t *j = th_resp_json(&r);
    snprintf(id, 37, "%s", th_str(j, "id"));
    json_decref(j);
    th_resp_dispose(&r);
}

json_t *th_job_get(const struct th_gw *gw, const char *auth, const char *id)
{
    char url[160];
    snprintf(url, sizeof(url), "%s/jobs/%s", gw->base, id);
    return th_get_json(url, auth);
}

json_t *th_job_wait(const struct th_gw *gw, const char *auth, const char *id, const char *want,
                    int timeout_s)
{
    char set[200];
    snprintf(set, sizeof(set), "|%s|", want);
    for (int64_t i = 0; i < (int64_t)timeout_s * 10; i++) {
        json_t *j = th_job_get(gw, auth, id);
        char needle[40];
        snprintf(needle, sizeof(needle), "|%s|", th_str(j, "status"));
        if (strstr(set, needle) != NULL)
            return j;
        json_decref(j);
        th_sleep_ms(100);
    }
    json_t *j = th_job_get(gw, auth, id);
    cr_assert_fail("job %s is %s after %d s, not %s (reason: %s)", id, th_str(j, "status"),
                   timeout_s, want, th_str(j, "status_reason"));
    return NULL;
}

void th_local_gw_start(struct th_gw *gw, const char *db_url, const struct th_local *l,
                       const char *const *more)
{
    enum { MAX_ENV = 24 };
    const char *env[MAX_ENV] = {l->env_root,          l->env_entry,
                                l->env_python,        "MLGW_LOCAL_TERM_GRACE=1",
                                "MLGW_LOCAL_VCPUS=8", "MLGW_LOCAL_MEMORY=8192",
                                "MLGW_LOCAL_GPUS=0",  "MLGW_DISPATCH_POLL_MS=200"};
    size_t k = 8;
    for (size_t i = 0; more != NULL && more[i] != NULL; i++) {
        cr_assert_lt(k, MAX_ENV - 1, "too many settings");
        env[k++] = more[i];
    }
    env[k] = NULL;
    th_gw_start(gw, db_url, env);
}

double th_metric(const struct th_gw *gw, const char *auth_header, const char *series)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/metrics", gw->base);
    const char *headers[] = {auth_header, NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "GET", url, headers, NULL, 0), 0);
    cr_assert_eq(r.status, 200, "GET /metrics: %ld", r.status);
    double v = -1;
    size_t len = strlen(series);
    for (const char *p = r.body; p != NULL && *p != '\0';) {
        if (strncmp(p, series, len) == 0 && p[len] == ' ')
            v = strtod(p + len + 1, NULL);
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    th_resp_dispose(&r);
    return v;
}
