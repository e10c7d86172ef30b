/*
 * test_group_commit.c — group commit (db/writer.c) through the real gateway:
 * many concurrent writes (jobs, pipeline runs) share transactions, one
 * write's failure fails no neighbour, and neither a kill -9 in the middle of a batch nor a
 * PostgreSQL restart loses or doubles an acknowledged job.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/harness.h"

enum { THREADS = 16, PER_THREAD = 12, MAX_TRIES = PER_THREAD * 40 };

static const char good_body[] = "{\"script_key\": \"jobs/good.py\", \"compute_type\": \"cpu\"}";
static const char refused_body[] =
    "{\"script_key\": \"jobs/refused.py\", \"compute_type\": \"cpu\"}";

/* What one client thread sent and heard. */
struct outcome {
    char key[64]; /* Idempotency-Key, "" when none */
    int refused;  /* sent the body the database refuses */
    long status;  /* 0: no answer (connection reset or refused) */
    char id[37];  /* the job's id on 202 */
    int replayed; /* Idempotent-Replayed: true */
};

struct client {
    const char *base;
    const char *auth;
    const char *path;                /* NULL: /jobs */
    const char *good_body, *refused; /* NULL: a job's */
    int index;
    int n;           /* requests to send; 0: until *stop */
    const int *stop; /* NULL: none */
    int with_keys;
    int refuse_every; /* every so many requests is refused; 0: none */
    struct outcome out[MAX_TRIES];
    int sent;    /* answered (or not) so far: out[0..sent) are final */
    int posting; /* a request is out now */
};

static void post_to(struct outcome *o, const char *base, const char *path, const char *auth,
                    const char *body)
{
    char url[256], key_header[96];
    snprintf(url, sizeof(url), "%s%s", base, path);
    snprintf(key_header, sizeof(key_header), "Idempotency-Key: %s", o->key);
    const char *headers[] = {auth, "Content-Type: application/json", o->key[0] ? key_header : NULL,
                             NULL};
    struct th_resp r;
    o->status = 0;
    o->id[0] = '\0';
    o->replayed = 0;
    if (th_http(&r, "POST", url, headers, body, strlen(body)) != 0) {
        th_resp_dispose(&r); /* no answer: status stays 0 */
        return;
    }
    o->status = r.status;
    if (r.status == 202) {
        json_t *j = th_resp_json(&r);
        const char *id = j ? json_string_value(json_object_get(j, "id")) : NULL;
        snprintf(o->id, sizeof(o->id), "%s", id ? id : "");
        json_decref(j);
        char *rep = th_resp_header(&r, "Idempotent-Replayed");
        o->replayed = rep != NULL && strcmp(rep, "true") == 0;
        free(rep);
    }
    th_resp_dispose(&r);
}

static void post_one(struct outcome *o, const char *base, const char *auth, const char *body)
{
    post_to(o, base, "/jobs", auth, body);
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    for (int i = 0; i < MAX_TRIES && (c->n == 0 || i < c->n); i++) {
        if (c->stop != NULL && __atomic_load_n(c->stop, __ATOMIC_ACQUIRE))
            break;
        struct outcome *o = &c->out[i];
        o->refused = c->refuse_every > 0 && i % c->refuse_every == c->refuse_every - 1;
        if (c->with_keys)
            snprintf(o->key, sizeof(o->key), "gc-%d-%d", c->index, i);
        const char *body = o->refused ? (c->refused ? c->refused : refused_body)
                                      : (c->good_body ? c->good_body : good_body);
        __atomic_store_n(&c->posting, 1, __ATOMIC_RELEASE);
        post_to(o, c->base, c->path ? c->path : "/jobs", c->auth, body);
        __atomic_store_n(&c->sent, i + 1, __ATOMIC_RELEASE);
        __atomic_store_n(&c->posting, 0, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void run_clients(struct client *cs, int n)
{
    pthread_t t[THREADS];
    for (int i = 0; i < n; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, client_main, &cs[i]), 0);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

static long scalar(const char *db, const char *sql)
{
    char *v = th_db_scalar(db, sql);
    cr_assert_not_null(v, "%s", sql);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

/* Clients posting good jobs, each with its own Idempotency-Key, until
 * crowd_stop; static (their outcomes are large). */
struct crowd {
    int n;
    int stop;
    pthread_t t[THREADS];
    struct client cs[THREADS];
};
static struct crowd crowd;

static void crowd_start(struct crowd *cr, int n, const char *base, const char *auth)
{
    memset(cr, 0, sizeof(*cr));
    cr->n = n;
    for (int i = 0; i < n; i++) {
        cr->cs[i] = (struct client){
            .base = base, .auth = auth, .index = i, .stop = &cr->stop, .with_keys = 1};
        cr_assert_eq(pthread_create(&cr->t[i], NULL, client_main, &cr->cs[i]), 0);
    }
}

static void crowd_stop(struct crowd *cr)
{
    __atomic_store_n(&cr->stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < cr->n; i++)
        pthread_join(cr->t[i], NULL);
}

/* How many requests were answered status (-1: sent at all); also while the
 * clients run. */
static long crowd_count(const struct crowd *cr, long status)
{
    long n = 0;
    for (int i = 0; i < cr->n; i++) {
        int sent = __atomic_load_n(&cr->cs[i].sent, __ATOMIC_ACQUIRE);
        for (int j = 0; j < sent; j++)
            n += status < 0 || cr->cs[i].out[j].status == status;
    }
    return n;
}

/* Waits (up to 30 s) until some request was answered status; fails the test
 * otherwise. */
static void crowd_wait_for(const struct crowd *cr, long status, const char *what)
{
    for (int64_t end = th_deadline(30000); crowd_count(cr, status) == 0 && th_before(end);)
        th_sleep_ms(20);
    cr_assert_gt(crowd_count(cr, status), 0, "%s", what);
}

/* How many clients have a request out now. */
static int crowd_posting(const struct crowd *cr)
{
    int n = 0;
    for (int i = 0; i < cr->n; i++)
        n += __atomic_load_n(&cr->cs[i].posting, __ATOMIC_ACQUIRE);
    return n;
}

/* Every answer's status is one of allowed[] (0: no answer at all), and
 * every 202's job is stored. */
static void crowd_check(const struct crowd *cr, const char *db, const long *allowed, int nallowed)
{
    for (int i = 0; i < cr->n; i++)
        for (int j = 0; j < cr->cs[i].sent; j++) {
            const struct outcome *o = &cr->cs[i].out[j];
            int ok = 0;
            for (int k = 0; k < nallowed; k++)
                ok |= o->status == allowed[k];
            cr_assert(ok, "%s: %ld", o->key, o->status);
            if (o->status != 202)
                continue;
            char sql[160];
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs WHERE id = '%s'", o->id);
            cr_assert_eq(scalar(db, sql), 1, "acknowledged job %s is stored", o->id);
        }
}

/* The clients retry every key they sent, answered or not: each is 202, an
 * acknowledged one with its own job replayed; then one job per key. */
static void crowd_retry(const struct crowd *cr, const struct th_gw *gw, const char *auth,
                        const char *db)
{
    for (int i = 0; i < cr->n; i++)
        for (int j = 0; j < cr->cs[i].sent; j++) {
            const struct outcome *o = &cr->cs[i].out[j];
            struct outcome again = {0};
            snprintf(again.key, sizeof(again.key), "%s", o->key);
            post_one(&again, gw->base, auth, good_body);
            cr_assert_eq(again.status, 202, "retry of %s: %ld", o->key, again.status);
            if (o->status == 202) {
                cr_assert_str_eq(again.id, o->id, "%s keeps its job", o->key);
                cr_assert(again.replayed, "%s is replayed", o->key);
            }
        }
    cr_assert_eq(scalar(db, "SELECT count(*) FROM jobs"), crowd_count(cr, -1),
                 "one job per key, no more");
}

/* Inserts that take `seconds` each keep batches in flight. */
static void slow_inserts(const char *db, const char *seconds)
{
    char sql[400];
    snprintf(sql, sizeof(sql),
             "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM "
             "pg_sleep(%s); RETURN NEW; END $$; CREATE TRIGGER slow BEFORE INSERT ON jobs "
             "FOR EACH ROW EXECUTE FUNCTION slow()",
             seconds);
    cr_assert_eq(th_db_exec(db, sql), 0);
}

/* Backends of db inside the slow trigger: batches being written now. */
static long batches_in_flight(const char *db)
{
    return scalar(db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND wait_event = 'PgSleep'");
}

/* The database refuses one script: a failure no validation can see. */
static void refuse_a_script(const char *db)
{
    cr_assert_eq(th_db_exec(db, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
                                "BEGIN IF NEW.script_key = 'jobs/refused.py' THEN "
                                "RAISE EXCEPTION 'refused by the test'; END IF; "
                                "PERFORM pg_sleep(0.002); RETURN NEW; END $$; "
                                "CREATE TRIGGER refuse BEFORE INSERT ON jobs FOR EACH ROW "
                                "EXECUTE FUNCTION refuse()"),
                 0);
}

static void bearer(char *out, size_t n, const char *db)
{
    char key[96];
    const char *args[] = {"--name", "writer",  "--scopes", "jobs:read,jobs:write,admin",
                          "--rate", "1000000", "--burst",  "1000000",
                          NULL};
    th_key_create_args(key, sizeof(key), db, args);
    snprintf(out, n, "Authorization: Bearer %s", key);
}

/* A database of its own, and a key for it in auth (an Authorization header). */
static void fresh_db(char db[1024], char auth[160])
{
    th_db_create(db, 1024, NULL);
    bearer(auth, 160, db);
}

/* A fresh database whose fn refuses some writes, a key for it (auth) and a
 * gateway with one writer and no dispatchers. */
static void one_writer(struct th_gw *gw, char db[1024], char auth[160], void (*fn)(const char *))
{
    fresh_db(db, auth);
    fn(db);
    const char *env[] = {"MLGW_DISPATCH_WORKERS=0", "MLGW_DB_WRITERS=1", NULL};
    th_gw_start(gw, db, env);
}

/* THREADS clients each post PER_THREAD times to path (NULL: /jobs), every
 * fourth request the body the database refuses (NULL bodies: a job's), half
 * of the clients with Idempotency-Keys: each refused request is answered
 * 500 and every other 202. Returns how many were 202. */
static long post_mixed(struct client *cs, const struct th_gw *gw, const char *auth,
                       const char *path, const char *good, const char *refused)
{
    memset(cs, 0, sizeof(*cs) * THREADS);
    for (int i = 0; i < THREADS; i++)
        cs[i] = (struct client){.base = gw->base,
                                .auth = auth,
                                .path = path,
                                .good_body = good,
                                .refused = refused,
                                .index = i,
                                .n = PER_THREAD,
                                .with_keys = i % 2,
                                .refuse_every = 4};
    run_clients(cs, THREADS);
    long n = 0;
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < cs[i].sent; j++) {
            const struct outcome *o = &cs[i].out[j];
            long want = o->refused ? 500 : 202;
            cr_assert_eq(o->status, want, "%s request beside others: %ld, not %ld",
                         o->refused ? "a refused" : "a good", o->status, want);
            n += !o->refused;
        }
    cr_assert_eq(n, THREADS * PER_THREAD * 3 / 4);
    return n;
}

Test(group_commit, a_failing_write_fails_alone_and_its_neighbours_commit_together)
{
    char db[1024], auth[160];
    struct th_gw gw;
    one_writer(&gw, db, auth, refuse_a_script);

    static struct client cs[THREADS];
    long good = post_mixed(cs, &gw, auth, NULL, NULL, NULL);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM jobs"), good, "every 202 is stored, once");
    cr_assert_eq(scalar(db, "SELECT count(*) FROM jobs WHERE script_key = 'jobs/refused.py'"), 0);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM dispatch_outbox"), good,
                 "each stored job has its outbox row");
    cr_assert_eq(scalar(db, "SELECT count(*) FROM idempotency_keys"), good / 2,
                 "keys are kept for stored jobs only");
    /* The refused key stored nothing: the same key with a good body is new. */
    struct outcome again = {.key = "gc-1-3"};
    post_one(&again, gw.base, auth, good_body);
    cr_assert_eq(again.status, 202);
    cr_assert_eq(again.replayed, 0);

    double batches = th_metric(&gw, auth, "mlgw_group_commit_batches_total");
    double writes = th_metric(&gw, auth, "mlgw_group_commit_writes_total");
    cr_assert_eq(writes, THREADS * PER_THREAD + 1, "every write went through the writer");
    cr_assert_lt(batches, writes * 0.8, "writes shared transactions: %.0f batches for %.0f writes",
                 batches, writes);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

/* The database refuses runs whose metadata says so. */
static void refuse_a_run(const char *db)
{
    cr_assert_eq(th_db_exec(db, "CREATE FUNCTION refuse_run() RETURNS trigger LANGUAGE plpgsql "
                                "AS $$ BEGIN IF NEW.metadata ->> 'refuse' = 'yes' THEN "
                                "RAISE EXCEPTION 'refused by the test'; END IF; "
                                "PERFORM pg_sleep(0.002); RETURN NEW; END $$; "
                                "CREATE TRIGGER refuse_run BEFORE INSERT ON pipeline_runs "
                                "FOR EACH ROW EXECUTE FUNCTION refuse_run()"),
                 0);
}

Test(group_commit, pipeline_runs_share_transactions_and_a_refused_run_fails_alone)
{
    char db[1024], auth[160];
    struct th_gw gw;
    one_writer(&gw, db, auth, refuse_a_run);
    static const char def[] =
        "{\"name\": \"gc\", \"steps\": [{\"name\": \"a\", \"script_key\": \"jobs/a.py\", "
        "\"compute_type\": \"cpu\"}, {\"name\": \"b\", \"script_key\": \"jobs/b.py\", "
        "\"compute_type\": \"cpu\", \"depends_on\": [\"a\"]}]}";
    char url[160];
    snprintf(url, sizeof(url), "%s/pipelines", gw.base);
    const char *h[] = {auth, "Content-Type: application/json", NULL};
    struct th_resp r;
    cr_assert_eq(th_http(&r, "POST", url, h, def, strlen(def)), 0);
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_dispose(&r);

    static struct client cs[THREADS];
    long good =
        post_mixed(cs, &gw, auth, "/pipelines/gc/runs", "{\"metadata\": {\"refuse\": \"no\"}}",
                   "{\"metadata\": {\"refuse\": \"yes\"}}");
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < cs[i].sent; j++) {
            const struct outcome *o = &cs[i].out[j];
            if (o->refused)
                continue;
            char sql[200];
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM pipeline_runs WHERE id = '%s'", o->id);
            cr_assert_eq(scalar(db, sql), 1, "acknowledged run %s is stored", o->id);
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM jobs WHERE pipeline_run_id = '%s' AND step = 'a'",
                     o->id);
            cr_assert_eq(scalar(db, sql), 1, "run %s started its first step", o->id);
        }
    cr_assert_eq(scalar(db, "SELECT count(*) FROM pipeline_runs"), good,
                 "every 202 is stored, once");
    cr_assert_eq(scalar(db, "SELECT count(*) FROM jobs WHERE script_key = 'jobs/a.py'"), good,
                 "each stored run started its first step's job");
    cr_assert_eq(scalar(db, "SELECT count(*) FROM jobs WHERE script_key = 'jobs/b.py'"), 0,
                 "and only that one");
    cr_assert_eq(scalar(db, "SELECT count(*) FROM idempotency_keys"), good / 2,
                 "keys are kept for stored runs only");
    /* A key is replayed with its run; a refused key stored nothing. */
    struct outcome again = {.key = "gc-1-0"};
    post_to(&again, gw.base, "/pipelines/gc/runs", auth, cs[1].good_body);
    cr_assert_eq(again.status, 202);
    cr_assert(again.replayed);
    cr_assert_str_eq(again.id, cs[1].out[0].id);
    struct outcome fresh = {.key = "gc-1-3"};
    post_to(&fresh, gw.base, "/pipelines/gc/runs", auth, cs[1].good_body);
    cr_assert_eq(fresh.status, 202);
    cr_assert_eq(fresh.replayed, 0);

    double writes = th_metric(&gw, auth, "mlgw_group_commit_writes_total");
    double batches = th_metric(&gw, auth, "mlgw_group_commit_batches_total");
    cr_assert_eq(writes, THREADS * PER_THREAD + 2, "every run went through the writer: %.0f",
                 writes);
    cr_assert_lt(batches, writes * 0.8, "runs shared transactions: %.0f batches for %.0f writes",
                 batches, writes);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

Test(group_commit, kill_9_in_the_middle_of_batches_then_retrying_each_key_gives_one_job_each)
{
    char db[1024], auth[160];
    fresh_db(db, auth);
    slow_inserts(db, "0.01");
    struct th_gw gw;
    const char *env[] = {"MLGW_DISPATCH_WORKERS=0", NULL};
    th_gw_start(&gw, db, env);
    crowd_start(&crowd, THREADS, gw.base, auth);
    crowd_wait_for(&crowd, 202, "jobs were stored before the kill");
    kill(gw.pid, SIGKILL);
    th_gw_stop(&gw, 0, 10);
    crowd_stop(&crowd);

    long tried = crowd_count(&crowd, -1), acked = crowd_count(&crowd, 202);
    cr_assert_gt(acked, 0, "jobs were stored before the kill");
    cr_assert_gt(crowd_count(&crowd, 0), 0, "the kill came while writes were in flight");
    static const long allowed[] = {202, 0};
    crowd_check(&crowd, db, allowed, 2);
    cr_assert_lt(scalar(db, "SELECT count(*) FROM jobs"), tried,
                 "the writes in flight at the kill were not stored");

    th_gw_start(&gw, db, env);
    crowd_retry(&crowd, &gw, auth, db);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM idempotency_keys"), tried);
    cr_assert_eq(scalar(db, "SELECT count(*) FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM "
                            "idempotency_keys k WHERE k.location = '/jobs/' || j.id)"),
                 0, "every job is its key's");
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}

Test(group_commit, writes_across_a_postgresql_restart_are_stored_or_refused_never_lost)
{
    struct th_pg pg = {0};
    th_pg_start(&pg);
    char auth[160];
    bearer(auth, sizeof(auth), pg.url);
    struct th_gw gw;
    const char *env[] = {"MLGW_DISPATCH_WORKERS=0", "MLGW_DB_CONNECT_TIMEOUT=2",
                         "MLGW_DB_CHECKOUT_TIMEOUT_MS=500", NULL};
    th_gw_start(&gw, pg.url, env);
    crowd_start(&crowd, 8, gw.base, auth);
    crowd_wait_for(&crowd, 202, "jobs were stored before the outage");
    th_pg_stop(&pg);
    crowd_wait_for(&crowd, 503, "writes met the outage");
    th_pg_start(&pg);
    char ready[160];
    snprintf(ready, sizeof(ready), "%s/readyz", gw.base);
    cr_assert_eq(th_wait_status(ready, 200, 30), 200);
    th_sleep_ms(400);
    crowd_stop(&crowd);

    cr_assert_gt(crowd_count(&crowd, 503), 0, "writes met the outage");
    cr_assert_gt(crowd_count(&crowd, 202), 0);
    /* Every 202 is on disk, before the restart and after it. */
    static const long allowed[] = {202, 503};
    crowd_check(&crowd, pg.url, allowed, 2);
    crowd_retry(&crowd, &gw, auth, pg.url);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
    th_pg_destroy(&pg);
}

Test(group_commit, sigterm_with_writes_queued_answers_each_stored_or_refused_and_exits_clean)
{
    char db[1024], auth[160];
    fresh_db(db, auth);
    slow_inserts(db, "0.25");
    struct th_gw gw;
    /* Two writes a batch, 0.5 s each: the 1 s drain leaves most of the
     * in-flight writes queued. */
    const char *env[] = {"MLGW_DISPATCH_WORKERS=0", "MLGW_SHUTDOWN_TIMEOUT=2",
                         "MLGW_GROUP_COMMIT_MAX=2", NULL};
    th_gw_start(&gw, db, env);
    crowd_start(&crowd, THREADS, gw.base, auth);
    /* Every client has a write out and both writers are inside a batch: the
     * writes behind them wait in the queue. */
    int behind = 0;
    for (int64_t end = th_deadline(30000); !behind && th_before(end);) {
        behind = crowd_posting(&crowd) == THREADS && batches_in_flight(db) >= 2;
        if (!behind)
            th_sleep_ms(20);
    }
    cr_assert(behind, "every client has a write out and both writers are busy");
    __atomic_store_n(&crowd.stop, 1, __ATOMIC_RELEASE); /* each client's last request is out */
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 10), 0, "a clean exit within the shutdown budget");
    crowd_stop(&crowd);
    char *log = th_gw_log(&gw);
    cr_assert_not_null(log);
    int queued = strstr(log, "stopping with writes still queued") != NULL;
    int clean = strstr(log, "Sanitizer") == NULL;
    free(log);
    cr_assert(queued, "the drain ended with writes still queued");
    cr_assert(clean, "nothing leaked or misused at shutdown");

    static const long allowed[] = {202, 503, 0};
    crowd_check(&crowd, db, allowed, 3);
    th_gw_start(&gw, db, env);
    crowd_retry(&crowd, &gw, auth, db);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 15), 0);
}
