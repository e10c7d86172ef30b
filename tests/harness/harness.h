/*
 * harness.h — what integration tests use to drive the real gateway: a
 * PostgreSQL server (the shared throwaway cluster, DATABASE_URL, or a private
 * cluster a test can stop and start), fresh databases, the gateway binary run
 * as a child process on an ephemeral port, and HTTP over loopback with libcurl.
 */
#ifndef MLGW_TEST_HARNESS_H
#define MLGW_TEST_HARNESS_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Base URL of the server every test shares (DATABASE_URL, else the CTest
 * fixture's cluster). Borrowed, static. */
const char *th_pg_base_url(void);

/* Creates an empty database on the server of base_url (NULL: the shared one)
 * and writes its conninfo to out. Aborts the test on failure. */
void th_db_create(char *out, size_t outlen, const char *base_url);
/* Runs one SQL command on a database; returns 0 or -1. */
int th_db_exec(const char *url, const char *sql);
/* Runs a query and returns the first column of the first row (new: free it), or NULL. */
char *th_db_scalar(const char *url, const char *sql);

/* A private cluster under a temp dir, for tests that stop PostgreSQL. */
struct th_pg {
    char dir[256];
    char url[512];
};
void th_pg_start(struct th_pg *pg); /* first call creates it; later ones restart it */
void th_pg_stop(struct th_pg *pg);
void th_pg_destroy(struct th_pg *pg);

/* The gateway as a child process. */
struct th_gw {
    pid_t pid;
    unsigned port;
    char log_path[256];
    char base[64]; /* http://127.0.0.1:PORT */
};
/* Starts build/ml-gateway with DATABASE_URL=db_url, MLGW_LISTEN=127.0.0.1:0,
 * MLGW_MIGRATIONS_DIR=<repo>/migrations unless env overrides (NAME=VALUE
 * strings, NULL-terminated), and waits for it to listen. */
void th_gw_start(struct th_gw *gw, const char *db_url, const char *const *env);
/* Runs the binary to completion with args and env; returns its exit status
 * (or -1) and, when out is non-NULL, its stderr (new). */
int th_gw_run(char **out, const char *const *args, const char *db_url, const char *const *env,
              int timeout_s);
/* Creates an API key with `ml-gateway keys create` on db_url and writes it
 * to out. Aborts the test on failure. */
void th_key_create(char *out, size_t outlen, const char *db_url, const char *name,
                   const char *scopes);
/* The same with any arguments after "keys create" (NULL-terminated), e.g.
 * {"--name", "n", "--scopes", "jobs:read", "--team", "red", NULL}. */
void th_key_create_args(char *out, size_t outlen, const char *db_url, const char *const *args);

/* A local executor's root for one test: <root>/input/jobs made, and the
 * gateway settings that point at it, the job entrypoint of this source tree
 * and the test venv's Python (python3 without one), ready for th_gw_start. */
struct th_local {
    char root[256];
    char env_root[300];    /* MLGW_LOCAL_ROOT=... */
    char env_entry[1100];  /* MLGW_LOCAL_ENTRYPOINT=... */
    char env_python[1100]; /* MLGW_LOCAL_PYTHON=... */
};
/* Makes /tmp/<prefix>-XXXXXX. Aborts the test on failure. */
void th_local_make(struct th_local *l, const char *prefix);
/* Starts the gateway with its local executor on l: 8 vCPUs, 8 GiB, no GPUs,
 * a 1 s grace, a 200 ms dispatch poll, then more (NAME=VALUE, NULL-ended,
 * may be NULL). */
void th_local_gw_start(struct th_gw *gw, const char *db_url, const struct th_local *l,
                       const char *const *more);
/* Removes the root and everything below it. */
void th_local_remove(const struct th_local *l);

/* POSTs body to gw's /jobs with auth (an "Authorization: ..." line), asserts
 * 202 and writes the new job's id. */
void th_job_submit(char id[37], const struct th_gw *gw, const char *auth, const char *body);
/* GET /jobs/{id} (new: json_decref). */
json_t *th_job_get(const struct th_gw *gw, const char *auth, const char *id);
/* Polls the job until its status is one of want ("A|B") and returns it
 * (new); fails the test, naming status and reason, after timeout_s. */
json_t *th_job_wait(const struct th_gw *gw, const char *auth, const char *id, const char *want,
                    int timeout_s);

/* Sends sig and waits up to timeout_s; returns the exit status, 128+signal,
 * or -1 when it did not exit in time (it is then killed). */
int th_gw_stop(struct th_gw *gw, int sig, int timeout_s);
/* The child's log so far (new: free it). */
char *th_gw_log(const struct th_gw *gw);

/* The moto server of the CTest fixture: its URL and a field of
 * resources.json (borrowed, static). Abort the test when missing. */
const char *th_moto_url(void);
const char *th_moto_resource(const char *name);

/* HTTP. With MLGW_CONTRACT_LOG set, every exchange is appended to that file
 * as one JSON line (method, path, status, content_type, body) for the
 * OpenAPI contract check. */
struct th_resp {
    long status;
    char *body;    /* new */
    char *headers; /* new: the raw header block */
    double seconds;
};
/* headers: NULL-terminated "Name: value" strings or NULL; body may be NULL. */
int th_http(struct th_resp *out, const char *method, const char *url, const char *const *headers,
            const char *body, size_t body_len);
/* The value of a response header (new: free it), or NULL. */
char *th_resp_header(const struct th_resp *r, const char *name);
/* The body parsed as JSON (new: json_decref it), or NULL. */
json_t *th_resp_json(const struct th_resp *r);
void th_resp_dispose(struct th_resp *r);

/* Path of a file in the source tree (static buffer per call site: copy it). */
const char *th_source_path(const char *rel);

/* Polls GET url until it returns want (or timeout_s); returns the last status. */
long th_wait_status(const char *url, long want, int timeout_s);

/* GET url with an "Authorization: ..." header (or none); asserts 200 and
 * returns the JSON body (new: json_decref it). */
json_t *th_get_json(const char *url, const char *auth_header);
/* The value of one series of gw's GET /metrics ("name" or "name{labels}",
 * matched at the start of a line), read with auth_header; -1 when absent.
 * Fails the test when /metrics does not answer 200. */
double th_metric(const struct th_gw *gw, const char *auth_header, const char *series);

/* A string member of o, or NULL. */
const char *th_str(const json_t *o, const char *k);

void th_sleep_ms(long ms);
/* Milliseconds on the monotonic clock. */
int64_t th_now_ms(void);
/* Waiting for asynchronous work by the clock, not by a count of sleeps that a
 * loaded machine stretches and slow checks shorten:
 *     for (int64_t end = th_deadline(30000); !done() && th_before(end);)
 *         th_sleep_ms(100);
 * then assert done() as before. th_deadline is ms from now. */
int64_t th_deadline(long ms);
int th_before(int64_t deadline);

/* A problem+json body must have type, title, status == want, request_id and instance. */
void th_assert_problem(const struct th_resp *r, long want);

#endif
