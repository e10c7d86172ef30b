/*
 * smtp.h — a real SMTP server for tests: tests/tools/smtp_sink.py (aiosmtpd
 * from the test venv) on a loopback port, storing each message in a folder.
 */
#ifndef MLGW_TEST_SMTP_H
#define MLGW_TEST_SMTP_H

#include <sys/types.h>

struct th_smtp {
    pid_t pid;
    unsigned port;
    char dir[128]; /* maildir */
    char url[64];  /* smtp://127.0.0.1:PORT */
};

/* Starts the sink; extra: NULL-terminated extra arguments (e.g. "--tempfail", "2"),
 * port: 0 for a free one. Aborts the test on failure. */
void th_smtp_start(struct th_smtp *s, const char *const *extra, unsigned port);
void th_smtp_stop(struct th_smtp *s);
/* How many messages arrived; with rcpt, how many were addressed to it. */
int th_smtp_count(const struct th_smtp *s, const char *rcpt);
/* The text of the first message to rcpt (new: free), or NULL. */
char *th_smtp_message(const struct th_smtp *s, const char *rcpt);

#endif
