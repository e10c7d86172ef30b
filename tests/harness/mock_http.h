/*
 * mock_http.h — a scripted HTTP server on loopback for tests that need a peer
 * to misbehave on cue (AWS faults, webhook receivers, metadata endpoints):
 * answers come from a queue of canned responses (the last one repeats), and
 * every request is recorded for assertions.
 */
#ifndef MLGW_TEST_MOCK_HTTP_H
#define MLGW_TEST_MOCK_HTTP_H

#include <stddef.h>

struct th_mock;

struct th_mock_reply {
    unsigned status;
    const char *content_type; /* NULL: none */
    const char *body;         /* NULL: empty */
    const char *header_name;  /* one extra header, or NULL */
    const char *header_value;
    int delay_ms; /* sleep before answering */
};

struct th_mock_request {
    char method[16];
    char path[1024]; /* without the query string */
    char *headers;   /* "name: value\n" lines, names lower-cased */
    char *body;
    size_t body_len;
};

/* Starts on 127.0.0.1, a free port. Aborts the test on failure. */
struct th_mock *th_mock_start(void);
void th_mock_stop(struct th_mock *m);
/* "http://127.0.0.1:PORT" (borrowed). */
const char *th_mock_url(const struct th_mock *m);
/* Queues replies (copied); once the queue is down to one, it repeats. */
void th_mock_push(struct th_mock *m, const struct th_mock_reply *r);
/* Replaces every queued reply by r (which then repeats). In bodies, "%N%"
 * becomes the number of the request (1, 2, ...), for unique ids. */
void th_mock_set(struct th_mock *m, const struct th_mock_reply *r);
/* Requests received so far. */
size_t th_mock_count(struct th_mock *m);
/* Copy of request i (dispose with th_mock_request_dispose). */
void th_mock_request(struct th_mock_request *out, struct th_mock *m, size_t i);
void th_mock_request_dispose(struct th_mock_request *r);
/* Value of a header of a recorded request (new: free), or NULL. */
char *th_mock_header(const struct th_mock_request *r, const char *name);

#endif
