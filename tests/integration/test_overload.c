/*
 * Overload, written as the attack it stops: slow clients that send one
 * header line a second, in numbers twice the gateway's connection limit,
 * from one address, while other clients submit jobs and a prober asks
 * /healthz. The per-address connection limit keeps the slow clients to their
 * share, the request deadline cuts each of them loose, and the open-files
 * limit is far above the connection limit: /healthz answers within a second
 * throughout, every accepted job runs, nothing but 429/503 is shed, and the
 * gateway's memory stays flat.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../harness/harness.h"

enum { LIMIT = 64, PER_ADDRESS = 24, SLOW = 2 * LIMIT, RUN_S = 8 };

static struct th_gw gw;
static char db[1024], auth[128];
static struct th_local loc;

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    cr_assert(fputs(text, f) >= 0);
    cr_assert_eq(fclose(f), 0);
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    char key[96];
    const char *args[] = {"--name", "load",    "--scopes", "jobs:read,jobs:write",
                          "--rate", "1000000", "--burst",  "1000000",
                          NULL};
    th_key_create_args(key, sizeof(key), db, args);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    th_local_make(&loc, "mlgw-load");
    char path[512];
    snprintf(path, sizeof(path), "%s/input/jobs/noop.py", loc.root);
    write_text(path, "print('ok')\n");
}

static void teardown(void)
{
    cr_expect_eq(th_gw_stop(&gw, SIGTERM, 20), 0);
    th_local_remove(&loc);
}

TestSuite(overload, .init = setup, .fini = teardown);

/* A TCP connection to the gateway from a chosen loopback address, or -1. */
static int connect_from(const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    cr_assert_eq(inet_pton(AF_INET, from, &a.sin_addr), 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", from,
                 strerror(errno));
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw.port)};
    cr_assert_eq(inet_pton(AF_INET, "127.0.0.1", &to.sin_addr), 1);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
        close(fd);
        return -1;
    }
    (void)fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* True when the peer has closed fd (or reset it). */
static int closed_by_peer(int fd)
{
    char b[256];
    ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static long rss_kib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)gw.pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

/* One request from address from; the status, or 0 when it got no answer.
 * *ms is how long it took. */
static long request(const char *from, const char *method, const char *path, const char *body,
                    double *ms, char *id_out)
{
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    char url[160], iface[64];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    snprintf(iface, sizeof(iface), "host!%s", from);
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    char buf[4096] = "";
    FILE *mem = fmemopen(buf, sizeof(buf) - 1, "w");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_INTERFACE, iface);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (mem != NULL)
        curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
    else
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    long status = 0;
    double total = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &total);
    *ms = total * 1000.0;
    if (mem != NULL)
        fclose(mem);
    if (id_out != NULL && status == 202) {
        json_t *j = json_loads(buf, 0, NULL);
        cr_assert_not_null(j, "%s", buf);
        snprintf(id_out, 37, "%s", th_str(j, "id"));
        json_decref(j);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return status;
}

Test(overload, slow_clients_twice_the_limit_do_not_stop_health_probes_or_accepted_jobs,
     .timeout = 0)
{
    char conn_limit[64], per_address[64];
    snprintf(conn_limit, sizeof(conn_limit), "MLGW_CONNECTION_LIMIT=%d", LIMIT);
    snprintf(per_address, sizeof(per_address), "MLGW_CONNECTIONS_PER_ADDRESS=%d", PER_ADDRESS);
    const char *env[] = {conn_limit, per_address, "MLGW_REQUEST_DEADLINE=3",
                         "MLGW_CONNECTION_TIMEOUT=60", "MLGW_LOCAL_VCPUS=4",
                         "MLGW_LOCAL_MEMORY=4096", loc.env_root, loc.env_entry, loc.env_python,
                         /* In the sanitizer build, freed memory is held in
                          * a quarantine that would read as growth. */
                         "ASAN_OPTIONS=quarantine_size_mb=1", NULL};
    th_gw_start(&gw, db, env);
    double ms = 0;
    cr_assert_eq(request("127.0.0.1", "GET", "/healthz", NULL, &ms, NULL), 200);
    long rss_before = -1;

    int slow[SLOW];
    int opened = 0;
    for (int i = 0; i < SLOW; i++) {
        slow[i] = connect_from("127.0.0.2");
        if (slow[i] >= 0 && send(slow[i], "GET /healthz HTTP/1.1\r\nHost: x\r\n", 32, 0) > 0)
            opened++;
    }
    cr_assert(opened > 0);
    /* The address gets its share of connections; the rest are closed. */
    int admitted = SLOW;
    for (int64_t end = th_deadline(30000); admitted > PER_ADDRESS && th_before(end);) {
        th_sleep_ms(100);
        admitted = 0;
        for (int i = 0; i < SLOW; i++)
            admitted += slow[i] >= 0 && !closed_by_peer(slow[i]);
    }
    cr_expect(admitted > 0 && admitted <= PER_ADDRESS, "%d slow connections held", admitted);

    enum { MAX_JOBS = 64 };
    char ids[MAX_JOBS][37];
    int njobs = 0, probes = 0, shed_other = 0;
    double worst_probe = 0;
    for (int tick = 0; tick < RUN_S * 10; tick++) {
        th_sleep_ms(100);
        if (tick == 20)
            rss_before = rss_kib(); /* warmed up: pools, threads and caches are made */
        /* Slow clients: one more header line a second; the closed ones
         * come back, as an attacker would. */
        if (tick % 10 == 0) {
            for (int i = 0; i < SLOW; i++) {
                if (slow[i] >= 0 && closed_by_peer(slow[i])) {
                    close(slow[i]);
                    slow[i] = -1;
                }
                if (slow[i] < 0) {
                    slow[i] = connect_from("127.0.0.2");
                    if (slow[i] >= 0)
                        (void)send(slow[i], "GET /healthz HTTP/1.1\r\nHost: x\r\n", 32,
                                   MSG_NOSIGNAL);
                } else {
                    (void)send(slow[i], "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
                }
            }
        }
        /* The prober. */
        long st = request("127.0.0.1", "GET", "/healthz", NULL, &ms, NULL);
        cr_assert_eq(st, 200, "/healthz answered %ld during the attack", st);
        probes++;
        if (ms > worst_probe)
            worst_probe = ms;
        /* A fast client submits a job every other tick. */
        if (tick % 2 == 0 && njobs < MAX_JOBS) {
            st = request("127.0.0.3", "POST", "/jobs",
                         "{\"script_key\": \"jobs/noop.py\", \"compute_type\": \"cpu\", "
                         "\"vcpus\": 1, \"memory\": 64}",
                         &ms, ids[njobs]);
            if (st == 202)
                njobs++;
            else if (st != 429 && st != 503)
                shed_other++;
        }
    }
    cr_expect_lt(worst_probe, 1000.0, "the slowest /healthz took %.0f ms", worst_probe);
    cr_expect_eq(shed_other, 0, "only 429/503 may be shed");
    cr_expect_gt(njobs, RUN_S * 3, "jobs were accepted during the attack: %d", njobs);

    for (int i = 0; i < SLOW; i++)
        if (slow[i] >= 0)
            close(slow[i]);

    /* Every accepted job runs to the end. */
    for (int i = 0; i < njobs; i++) {
        char url[160];
        snprintf(url, sizeof(url), "%s/jobs/%s", gw.base, ids[i]);
        const char *st = NULL;
        for (int w = 0; w < 1200; w++) {
            json_t *j = th_get_json(url, auth);
            st = th_str(j, "status");
            int done = strcmp(st, "SUCCEEDED") == 0 || strcmp(st, "FAILED") == 0;
            char keep[32];
            snprintf(keep, sizeof(keep), "%s", st);
            json_decref(j);
            if (done) {
                cr_expect_str_eq(keep, "SUCCEEDED", "job %s", ids[i]);
                st = NULL;
                break;
            }
            th_sleep_ms(100);
        }
        cr_expect_null(st, "job %s did not finish", ids[i]);
    }
    long rss_after = rss_kib();
    cr_expect_lt(rss_after - rss_before, 16 * 1024, "RSS grew from %ld to %ld KiB", rss_before,
                 rss_after);
}

Test(overload, a_client_that_sends_a_header_line_a_second_is_cut_at_the_deadline, .timeout = 0)
{
    const char *env[] = {"MLGW_REQUEST_DEADLINE=2", "MLGW_CONNECTION_TIMEOUT=60",
                         "MLGW_DISPATCH_WORKERS=0", NULL};
    th_gw_start(&gw, db, env);
    int fd = connect_from("127.0.0.4");
    cr_assert(fd >= 0);
    cr_assert_gt(send(fd, "GET /healthz HTTP/1.1\r\n", 23, 0), 0);
    int seconds = 0;
    while (seconds < 10 && !closed_by_peer(fd)) {
        (void)send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
        th_sleep_ms(1000);
        seconds++;
    }
    close(fd);
    cr_expect(seconds >= 1 && seconds <= 4, "cut after %d s (deadline 2 s, idle timeout 60 s)",
              seconds);
    /* An honest client is not affected. */
    double ms;
    cr_expect_eq(request("127.0.0.4", "GET", "/healthz", NULL, &ms, NULL), 200);
}
