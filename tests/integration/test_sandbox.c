/*
 * The job sandbox, attacked the way an outside review did: real gateway,
 * real PostgreSQL, real Python jobs through images/entrypoint/entrypoint.py.
 *
 * A job that goes for the gateway's secrets (its /proc/<pid>/environ, every
 * /proc it can see, files beside the gateway's, its own environment) finds
 * none of them, and runs as another uid; a job that leaves processes behind
 * without JOB_ID, in sessions of their own or double-forked, leaves nothing
 * once it has SUCCEEDED; MLGW_LOCAL_SANDBOX=off still runs jobs (and warns),
 * while a gateway that cannot have a sandbox refuses local jobs in one line.
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

static char db[1024], auth[128];
static struct th_local loc;
static struct th_gw gw;
static int gw_running;

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path, mode), 0);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 1 << 22);
    size_t n = fread(buf, 1, (1 << 22) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void script(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/input/jobs/%s", loc.root, name);
    write_file(path, text, 0644);
}

static void setup(void)
{
    th_db_create(db, sizeof(db), NULL);
    char key[96];
    th_key_create(key, sizeof(key), db, "writer", "jobs:read,jobs:write");
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    th_local_make(&loc, "mlgw-sandbox");
    gw_running = 0;
}

static void teardown(void)
{
    if (gw_running)
        cr_expect_eq(th_gw_stop(&gw, SIGTERM, 30), 0);
    th_local_remove(&loc);
}

TestSuite(sandbox, .init = setup, .fini = teardown);

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

static char *job_log(const char *id)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/logs/%s.log", loc.root, id);
    char *s = read_file(path);
    cr_assert(s != NULL, "%s", path);
    return s;
}

/* Every file a job published, one after the other (new). */
static char *job_outputs(const char *id)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "cat '%s/output/jobs/%s'/* 2>/dev/null", loc.root, id);
    FILE *p = popen(cmd, "r");
    cr_assert(p != NULL);
    char *buf = calloc(1, 1 << 22);
    size_t n = fread(buf, 1, (1 << 22) - 1, p);
    buf[n] = '\0';
    pclose(p);
    return buf;
}

/* ---- (a) the gateway's secrets ------------------------------------------------------- */

/* Prints everything it can find: its own environment, the gateway's
 * /proc/<pid>/environ and cmdline (pid from GW_PID), every /proc/<pid>/environ
 * it can see, and the files named in PROBE_FILES; writes its uid and all of
 * it to its outputs too. */
static const char *const snoop_script =
    "import json, os\n"
    "found = {'env': dict(os.environ), 'proc': {}, 'files': {}}\n"
    "gw = os.environ['GW_PID']\n"
    "for pid in [gw] + [p for p in os.listdir('/proc') if p.isdigit()]:\n"
    "    for what in ('environ', 'cmdline'):\n"
    "        try:\n"
    "            found['proc'][pid + '/' + what] = open('/proc/%s/%s' % (pid, what), 'rb')"
    ".read().decode('latin-1')\n"
    "        except OSError as e:\n"
    "            found['proc'][pid + '/' + what] = 'error: %s' % e\n"
    "for path in os.environ['PROBE_FILES'].split(':'):\n"
    "    try:\n"
    "        found['files'][path] = open(path, 'rb').read().decode('latin-1')\n"
    "    except OSError as e:\n"
    "        found['files'][path] = 'error: %s' % e\n"
    "text = json.dumps(found)\n"
    "print(text, flush=True)\n"
    "out = os.environ['ML_OUTPUT_DIR']\n"
    "open(os.path.join(out, 'found.json'), 'w').write(text)\n"
    "open(os.path.join(out, 'uid.txt'), 'w').write(str(os.getuid()))\n"
    "print('snooping done', flush=True)\n";

/* The password of a libpq connection string: "password='...'" or
 * "postgresql://user:PASSWORD@host...". */
static void url_password(char *out, size_t outlen, const char *url)
{
    const char *kv = strstr(url, "password=");
    if (kv != NULL) {
        kv += strlen("password=");
        int quoted = *kv == '\'';
        kv += quoted;
        snprintf(out, outlen, "%.*s", (int)strcspn(kv, quoted ? "'" : " "), kv);
    } else {
        const char *at = strrchr(url, '@');
        const char *colon = strchr(url + strlen("postgresql://"), ':');
        cr_assert(at != NULL && colon != NULL && colon < at, "a password in %s", url);
        snprintf(out, outlen, "%.*s", (int)(at - colon - 1), colon + 1);
    }
    cr_assert(strlen(out) >= 8, "a password worth looking for in %s", url);
}

Test(sandbox, a_job_finds_none_of_the_gateways_secrets_and_runs_as_another_user)
{
    char secret_file[400], pw[200];
    snprintf(secret_file, sizeof(secret_file), "%s/gateway-secret.txt", loc.root);
    write_file(secret_file, "file-secret-5b0f9c2e\n", 0600);
    url_password(pw, sizeof(pw), db);
    script("snoop.py", snoop_script);
    const char *more[] = {"MLGW_CALLBACK_SECRET=callback-secret-7d1e04aa",
                          "MLGW_WEBHOOK_SECRET=webhook-secret-93c2b7f1",
                          "MLGW_SMTP_PASSWORD=smtp-secret-4e8a61d0",
                          "AWS_ACCESS_KEY_ID=AKIAGATEWAYKEY0007",
                          "AWS_SECRET_ACCESS_KEY=aws-secret-c6f3e9b2",
                          "AWS_SESSION_TOKEN=aws-token-2a9d55e8",
                          NULL};
    start_gateway(more);
    char body[2000], id[37];
    snprintf(body, sizeof(body),
             "{\"script_key\": \"jobs/snoop.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
             "\"memory\": 64, \"env\": {\"GW_PID\": \"%d\", \"PROBE_FILES\": \"%s:%s:%s\"}}",
             (int)gw.pid, secret_file, gw.log_path, th_source_path("var/dev-api-key"));
    submit(id, body);
    json_t *j = wait_job(id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    json_decref(j);

    char *log = job_log(id), *outputs = job_outputs(id);
    cr_assert(strstr(log, "snooping done") != NULL, "the job did look: %s", log);
    cr_assert(strstr(outputs, "\"GW_PID\"") != NULL, "its findings were published");
    const char *secrets[] = {"callback-secret-7d1e04aa",
                             "webhook-secret-93c2b7f1",
                             "smtp-secret-4e8a61d0",
                             "AKIAGATEWAYKEY0007",
                             "aws-secret-c6f3e9b2",
                             "aws-token-2a9d55e8",
                             "file-secret-5b0f9c2e",
                             pw,
                             "DATABASE_URL"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        cr_expect(strstr(log, secrets[i]) == NULL, "the job's log shows %s", secrets[i]);
        cr_expect(strstr(outputs, secrets[i]) == NULL, "the job's outputs show %s", secrets[i]);
    }
    free(log);
    free(outputs);

    char path[600];
    snprintf(path, sizeof(path), "%s/output/jobs/%s/uid.txt", loc.root, id);
    char *uid = read_file(path);
    cr_assert(uid != NULL);
    cr_assert_neq(strtol(uid, NULL, 10), (long)getuid(), "the job runs as uid %s", uid);
    free(uid);
}

/* ---- (b) processes that leave the job --------------------------------------------------- */

/* The pids of processes whose command line holds arg (an exact argument). */
static int find_arg(long *pids, int max, const char *arg)
{
    DIR *d = opendir("/proc");
    cr_assert(d != NULL);
    int n = 0;
    const struct dirent *de;
    while (n < max && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        char buf[4096];
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
            if (strcmp(buf + i, arg) == 0) {
                pids[n++] = strtol(de->d_name, NULL, 10);
                break;
            }
    }
    closedir(d);
    return n;
}

Test(sandbox, nothing_a_job_left_without_its_job_id_survives_it)
{
    /* A sleep in a session of its own without JOB_ID, and a double-forked
     * daemon without JOB_ID; both durations are this run's markers. */
    char marker1[32], marker2[32];
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    snprintf(marker1, sizeof(marker1), "299.%06d", rand() % 1000000);
    snprintf(marker2, sizeof(marker2), "298.%06d", rand() % 1000000);
    char text[1500];
    snprintf(text, sizeof(text),
             "import os, subprocess, time\n"
             "subprocess.Popen(['env', '-u', 'JOB_ID', 'setsid', 'sleep', '%s'])\n"
             "if os.fork() == 0:\n"
             "    os.setsid()\n"
             "    if os.fork() == 0:\n"
             "        env = {k: v for k, v in os.environ.items() if k != 'JOB_ID'}\n"
             "        os.execvpe('sleep', ['sleep', '%s'], env)\n"
             "    os._exit(0)\n"
             "time.sleep(1)\n"
             "print('left two behind', flush=True)\n",
             marker1, marker2);
    script("escape.py", text);
    start_gateway(NULL);
    char id[37];
    submit(id, "{\"script_key\": \"jobs/escape.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
               "\"memory\": 64}");
    json_t *j = wait_job(id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    json_decref(j);
    char *log = job_log(id);
    cr_assert(strstr(log, "left two behind") != NULL, "%s", log);
    free(log);
    long pids[8];
    int left = 1;
    for (int64_t end = th_deadline(30000); left > 0 && th_before(end);) {
        left = find_arg(pids, 8, marker1) + find_arg(pids, 8, marker2);
        if (left > 0)
            th_sleep_ms(100);
    }
    int n1 = find_arg(pids, 4, marker1);
    int n2 = find_arg(pids + n1, 4, marker2);
    for (int i = 0; i < n1 + n2; i++)
        kill((pid_t)pids[i], SIGKILL); /* no litter, whatever the outcome */
    cr_assert_eq(n1, 0, "the setsid sleep without JOB_ID outlived its job");
    cr_assert_eq(n2, 0, "the double-forked daemon without JOB_ID outlived its job");
}

/* ---- (c) the development switch, and no sandbox at all ------------------------------------ */

static int count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

Test(sandbox, with_the_sandbox_off_jobs_still_run_and_the_gateway_warns)
{
    script("uid.py", "import os\n"
                     "open(os.path.join(os.environ['ML_OUTPUT_DIR'], 'uid.txt'), 'w')"
                     ".write(str(os.getuid()))\n");
    const char *more[] = {"MLGW_LOCAL_SANDBOX=off", NULL};
    start_gateway(more);
    char id[37];
    submit(id, "{\"script_key\": \"jobs/uid.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
               "\"memory\": 64}");
    json_t *j = wait_job(id, "SUCCEEDED|FAILED", 60);
    cr_assert_str_eq(th_str(j, "status"), "SUCCEEDED", "%s", th_str(j, "status_reason"));
    json_decref(j);
    char path[600];
    snprintf(path, sizeof(path), "%s/output/jobs/%s/uid.txt", loc.root, id);
    char *uid = read_file(path);
    cr_assert(uid != NULL && strtol(uid, NULL, 10) == (long)getuid(),
              "unsandboxed, the job is the gateway's user");
    free(uid);
    char *log = th_gw_log(&gw);
    cr_assert(log != NULL);
    cr_assert_eq(count_in(log, "WITHOUT the job sandbox (MLGW_LOCAL_SANDBOX=off)"), 1, "%s", log);
    cr_assert(strstr(log, "\"level\":\"warn\",\"msg\":\"local jobs run WITHOUT") != NULL, "%s",
              log);
    free(log);
}

Test(sandbox, without_a_sandbox_local_jobs_are_refused_in_one_clear_line)
{
    script("never.py", "print('must not run')\n");
    const char *more[] = {"MLGW_LOCAL_BWRAP=/nonexistent/bwrap", NULL};
    start_gateway(more);
    char id[37];
    submit(id, "{\"script_key\": \"jobs/never.py\", \"compute_type\": \"cpu\", \"vcpus\": 1, "
               "\"memory\": 64}");
    th_sleep_ms(2000);
    json_t *j = get_job(id);
    cr_assert_str_eq(th_str(j, "status"), "QUEUED", "no executor took it");
    json_decref(j);
    char path[600];
    snprintf(path, sizeof(path), "%s/logs/%s.log", loc.root, id);
    cr_assert_neq(access(path, F_OK), 0, "it never ran");
    char *log = th_gw_log(&gw);
    cr_assert(log != NULL);
    cr_assert_eq(count_in(log, "no job sandbox"), 1, "%s", log);
    const char *line = strstr(log, "no job sandbox");
    const char *end = strchr(line, '\n');
    char one[1024];
    snprintf(one, sizeof(one), "%.*s", (int)(end ? end - line : (long)strlen(line)), line);
    cr_assert(strstr(one, "/nonexistent/bwrap") != NULL, "it says what is missing: %s", one);
    cr_assert(strstr(one, "install bubblewrap") != NULL, "and how to fix it: %s", one);
    cr_assert(strstr(one, "MLGW_LOCAL_SANDBOX=off") != NULL, "and the way out: %s", one);
    cr_assert(strstr(log, "\"level\":\"error\",\"msg\":\"local jobs will wait") != NULL, "%s", log);
    free(log);
}
