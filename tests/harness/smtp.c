/*
 * smtp.c — starts and reads tests/tools/smtp_sink.py for tests.
 */
#include "smtp.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, len = 0, n;
    char *b = malloc(cap);
    while (b != NULL && (n = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *p = realloc(b, cap *= 2);
            if (p == NULL) {
                free(b);
                b = NULL;
            } else {
                b = p;
            }
        }
    }
    fclose(f);
    if (b != NULL)
        b[len] = '\0';
    return b;
}

void th_smtp_start(struct th_smtp *s, const char *const *extra, unsigned port)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/mlgw-smtp-XXXXXX");
    cr_assert(mkdtemp(s->dir) != NULL);
    char portfile[160], portarg[16];
    snprintf(portfile, sizeof(portfile), "%s/port", s->dir);
    snprintf(portarg, sizeof(portarg), "%u", port);
    const char *venv = getenv("MLGW_VENV");
    char py[512];
    snprintf(py, sizeof(py), "%s/bin/python", venv && venv[0] ? venv : "build/venv");
    cr_assert(access(py, X_OK) == 0, "no test venv python at %s (make venv)", py);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        const char *argv[24] = {
            py,    th_source_path("tests/tools/smtp_sink.py"), "--port-file", portfile, "--maildir",
            s->dir};
        size_t k = 6;
        if (port != 0) {
            argv[k++] = "--port";
            argv[k++] = portarg;
        }
        for (size_t i = 0; extra != NULL && extra[i] != NULL && k < 22; i++)
            argv[k++] = extra[i];
        argv[k] = NULL;
        execv(py, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    s->pid = pid;
    for (int64_t end = th_deadline(30000); th_before(end);) {
        char *p = slurp(portfile);
        if (p != NULL && p[0] != '\0') {
            s->port = (unsigned)strtoul(p, NULL, 10);
            free(p);
            snprintf(s->url, sizeof(s->url), "smtp://127.0.0.1:%u", s->port);
            return;
        }
        free(p);
        th_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    cr_assert_fail("smtp_sink.py did not start within 30 s");
}

void th_smtp_stop(struct th_smtp *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (s->dir[0] != '\0') {
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            cr_log_warn("could not remove %s", s->dir);
        s->dir[0] = '\0';
    }
}

/* Calls fn for each stored message whose sidecar lists rcpt (or all). */
static int each_message(const struct th_smtp *s, const char *rcpt, char **first_text)
{
    DIR *d = opendir(s->dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        char path[400];
        snprintf(path, sizeof(path), "%s/%s", s->dir, de->d_name);
        char *side = slurp(path);
        int match = side != NULL && (rcpt == NULL || strstr(side, rcpt) != NULL);
        free(side);
        if (!match)
            continue;
        n++;
        if (first_text != NULL && *first_text == NULL) {
            path[strlen(path) - 5] = '\0';
            char *text = slurp(path);
            if (text == NULL) {
                char alt[420];
                snprintf(alt, sizeof(alt), "%s.eml", path);
                text = slurp(alt);
            }
            *first_text = text;
        }
    }
    closedir(d);
    return n;
}

int th_smtp_count(const struct th_smtp *s, const char *rcpt)
{
    return each_message(s, rcpt, NULL);
}

char *th_smtp_message(const struct th_smtp *s, const char *rcpt)
{
    char *text = NULL;
    each_message(s, rcpt, &text);
    return text;
}
