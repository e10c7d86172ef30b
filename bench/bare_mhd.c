/*
 * bare_mhd.c — the ceiling for GET /jobs/{id}: libmicrohttpd with the
 * gateway's daemon flags and thread pool (server/http.c), answering a fixed
 * small JSON body to every GET (405 to anything else). No routing, no auth,
 * no database, no logging.
 *
 *   bare_mhd PORT THREADS    listen on 127.0.0.1:PORT until SIGTERM/SIGINT
 *
 * Built by bench/run.sh: cc -O2 bare_mhd.c $(pkg-config --cflags --libs libmicrohttpd)
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char body[] = "{\"status\":\"ok\"}";

/* Responses created once and queued by every worker (MHD counts references). */
static struct MHD_Response *response, *not_allowed;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed);
    return MHD_queue_response(conn, MHD_HTTP_OK, response);
}

static long arg(const char *s, long min, long max, const char *what)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < min || v > max) {
        (void)fprintf(stderr, "bare_mhd: %s must be %ld to %ld\n", what, min, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        (void)fprintf(stderr, "usage: bare_mhd PORT THREADS\n");
        return 2;
    }
    long port = arg(argv[1], 1, 65535, "PORT");
    long threads = arg(argv[2], 1, 256, "THREADS");

    /* Block the stop signals before MHD starts its threads: only sigwait sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
        (void)fprintf(stderr, "bare_mhd: cannot block signals\n");
        return 1;
    }

    response =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    not_allowed = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (response == NULL || not_allowed == NULL ||
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json; charset=utf-8") != MHD_YES ||
        MHD_add_response_header(not_allowed, MHD_HTTP_HEADER_ALLOW, "GET") != MHD_YES) {
        (void)fprintf(stderr, "bare_mhd: cannot create the response\n");
        return 1;
    }

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    /* The same flags and limits as server/http.c, less the gateway's callbacks. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, &on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT, 1024u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (d == NULL) {
        (void)fprintf(stderr, "bare_mhd: cannot listen on 127.0.0.1:%ld\n", port);
        MHD_destroy_response(response);
        MHD_destroy_response(not_allowed);
        return 1;
    }

    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    MHD_stop_daemon(d);
    MHD_destroy_response(response);
    MHD_destroy_response(not_allowed);
    return 0;
}
