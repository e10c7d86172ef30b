/*
 * webhook.c — a job's JSON POSTed to a webhook, signed with HMAC-SHA256,
 * only to addresses a user may reach.
 *
 * The handle comes from common/curl (allow-listed https, or http where the
 * operator allows it, no redirects, deadlines, every option checked); proxies
 * are off, so the address checked is the address connected to. libcurl
 * resolves the host and hands each address to open_checked() before it
 * connects: a refused address gets no socket, so DNS rebinding and names
 * that point inside cannot pass. The answer's body is thrown away and only
 * its status counts. The status decides between "retry later" (no answer,
 * 5xx, 408, 429) and "will not work" (anything else). Retries, the outbox
 * and the choice of receivers are the notifier's.
 */
#include "jobs/webhook.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/cidr.h"
#include "common/curl.h"
#include "common/encode.h"
#include "common/err.h"

#include "common/poison.h"

enum { WEBHOOK_TIMEOUT_MS = 10000, WEBHOOK_CONNECT_TIMEOUT_MS = 3000 };

void jobs_webhook_signature(char *out, size_t outlen, const char *secret, long long now,
                            const char *body, size_t len)
{
    struct gw_buf msg;
    gw_buf_init(&msg, len + 32);
    unsigned char mac[32];
    char hex[65] = "";
    if (gw_buf_printf(&msg, "%lld.", now) == GW_OK && gw_buf_add(&msg, body, len) == GW_OK &&
        gw_hmac_sha256(mac, secret, strlen(secret), msg.data, msg.len) == GW_OK)
        gw_hex(hex, mac, sizeof(mac));
    gw_buf_dispose(&msg);
    gw_fmt(out, outlen, "t=%lld,v1=%s", now, hex);
}

/* Ranges a webhook may not reach unless the operator allows them: this
 * host, private networks, link-local (cloud metadata), CGNAT, reserved,
 * documentation, multicast and broadcast (IANA's special-purpose registries). */
static const char *const refused_ranges[] = {
    "0.0.0.0/8",       /* "this network"; 0.0.0.0 reaches this host */
    "10.0.0.0/8",      /* private */
    "100.64.0.0/10",   /* CGNAT */
    "127.0.0.0/8",     /* loopback */
    "169.254.0.0/16",  /* link-local, cloud metadata */
    "172.16.0.0/12",   /* private */
    "192.0.0.0/24",    /* IETF protocol assignments */
    "192.0.2.0/24",    /* documentation */
    "192.88.99.0/24",  /* 6to4 relays */
    "192.168.0.0/16",  /* private */
    "198.18.0.0/15",   /* benchmarking */
    "198.51.100.0/24", /* documentation */
    "203.0.113.0/24",  /* documentation */
    "224.0.0.0/4",     /* multicast */
    "240.0.0.0/4",     /* reserved, 255.255.255.255 broadcast */
    "::/96",           /* unspecified, loopback, IPv4-compatible */
    "64:ff9b:1::/48",  /* local-use NAT64 */
    "100::/64",        /* discard */
    "2001::/23",       /* IETF protocol assignments (Teredo, ...) */
    "2001:db8::/32",   /* documentation */
    "2002::/16",       /* 6to4: an IPv4 address inside */
    "fc00::/7",        /* unique-local */
    "fe80::/10",       /* link-local */
    "fec0::/10",       /* site-local (deprecated) */
    "ff00::/8",        /* multicast */
};

/* Instance metadata services: refused even when an allow-list covers them. */
static const char *const metadata_addresses[] = {
    "169.254.169.254", /* AWS, GCP, Azure, OpenStack */
    "169.254.170.2",   /* AWS ECS task metadata */
    "fd00:ec2::254",   /* AWS over IPv6 */
    "100.100.100.200", /* Alibaba Cloud */
};

static int in_any(const char *const *ranges, size_t n, int family, const unsigned char *addr)
{
    for (size_t i = 0; i < n; i++) {
        struct gw_cidr c;
        if (gw_cidr_parse(&c, ranges[i], strlen(ranges[i])) == GW_OK &&
            gw_cidr_contains(&c, family, addr))
            return 1;
    }
    return 0;
}

/* sa's address as (family, bytes), IPv4-mapped (::ffff:a.b.c.d) and
 * well-known NAT64 (64:ff9b::a.b.c.d) addresses as their IPv4 address.
 * 0 for any other family. */
static int address_of(const struct sockaddr *sa, unsigned char out[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
        memcpy(out, &in4->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family != AF_INET6)
        return 0;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    const unsigned char *b = in6->sin6_addr.s6_addr;
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0) {
        memcpy(out, b + 12, 4);
        return AF_INET;
    }
    memcpy(out, b, 16);
    return AF_INET6;
}

int jobs_webhook_address_allowed(const struct sockaddr *sa, const char *allow_cidrs)
{
    unsigned char addr[16];
    int family = address_of(sa, addr);
    if (family == 0 || in_any(metadata_addresses, GW_ARRAY_LEN(metadata_addresses), family, addr))
        return 0;
    if (gw_cidr_list_contains(allow_cidrs, family, addr))
        return 1;
    return !in_any(refused_ranges, GW_ARRAY_LEN(refused_ranges), family, addr);
}

void jobs_webhook_class(char *out, CURLcode cc, long status)
{
    const char *cls = "error";
    switch (cc) {
    case CURLE_OK: gw_fmt(out, JOBS_WEBHOOK_CLASS_LEN, "http_%ld", status); return;
    case CURLE_COULDNT_CONNECT:
    case CURLE_UNSUPPORTED_PROTOCOL: cls = "refused"; break;
    case CURLE_OPERATION_TIMEDOUT: cls = "timeout"; break;
    case CURLE_COULDNT_RESOLVE_HOST: cls = "dns"; break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED: cls = "tls"; break;
    default: break;
    }
    gw_fmt(out, JOBS_WEBHOOK_CLASS_LEN, "%s", cls);
}

/* What open_checked() saw: the allow-list, and the last address refused. */
struct guard {
    const char *allow_cidrs;
    char refused[INET6_ADDRSTRLEN];
};

/* CURLOPT_OPENSOCKETFUNCTION: a socket only for an allowed address. */
static curl_socket_t open_checked(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct guard *g = clientp;
    const struct sockaddr *sa = &a->addr;
    int fits = (a->family == AF_INET && a->addrlen >= sizeof(struct sockaddr_in)) ||
               (a->family == AF_INET6 && a->addrlen >= sizeof(struct sockaddr_in6));
    if (purpose != CURLSOCKTYPE_IPCXN || !fits ||
        !jobs_webhook_address_allowed(sa, g->allow_cidrs)) {
        const void *raw =
            a->family == AF_INET6
                ? (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr
                : (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        if (!fits || inet_ntop(a->family, raw, g->refused, sizeof(g->refused)) == NULL)
            gw_fmt(g->refused, sizeof(g->refused), "(family %d)", a->family);
        return CURL_SOCKET_BAD;
    }
    /* Close-on-exec: the local executor's jobs must not inherit it. */
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* The request headers; on failure *out is NULL (gw_curl_header freed it). */
static int webhook_headers(struct curl_slist **out, const char *body, const char *secret,
                           long long now, struct gw_err *err)
{
    *out = NULL;
    int rc = gw_curl_header(out, "Content-Type: application/json", err);
    if (rc == GW_OK)
        rc = gw_curl_header(out, "Expect:", err); /* no 100-continue round trip */
    if (rc == GW_OK && secret != NULL) {
        char sig[128], line[160];
        jobs_webhook_signature(sig, sizeof(sig), secret, now, body, strlen(body));
        gw_fmt(line, sizeof(line), "X-Signature: %s", sig);
        rc = gw_curl_header(out, line, err);
    }
    return rc;
}

/* The handle's options beyond common/curl's: body, headers, no proxy, the
 * address check. */
static int webhook_options(CURL *h, struct curl_slist *hl, const char *body, struct guard *g,
                           struct gw_err *err)
{
    int rc = GW_CURL_SET(h, CURLOPT_HTTPHEADER, hl, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_POSTFIELDS, body, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body), err);
    if (rc == GW_OK) /* not even from *_proxy variables: the check is on the target */
        rc = GW_CURL_SET(h, CURLOPT_PROXY, "", err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_OPENSOCKETFUNCTION, open_checked, err);
    if (rc == GW_OK)
        rc = GW_CURL_SET(h, CURLOPT_OPENSOCKETDATA, (void *)g, err);
    return rc;
}

/* The code and log text of a finished transfer. */
static int webhook_result(CURLcode cc, long status, const struct guard *g, const char *errbuf,
                          struct gw_err *err)
{
    if (cc == CURLE_UNSUPPORTED_PROTOCOL)
        return gw_err_set(err, GW_EINVAL, "webhook scheme not allowed: %s", errbuf);
    if (cc == CURLE_COULDNT_CONNECT && g->refused[0] != '\0')
        return gw_err_set(err, GW_EINVAL, "webhook address %s is not allowed", g->refused);
    if (cc != CURLE_OK)
        return gw_err_set(err, GW_EUNAVAIL, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
    if (status >= 200 && status < 300)
        return GW_OK;
    if (status >= 500 || status == 408 || status == 429)
        return gw_err_set(err, GW_EUNAVAIL, "the receiver answered %ld", status);
    return gw_err_set(err, GW_EUPSTREAM, "the receiver answered %ld", status);
}

int jobs_webhook_post(char *cls, const struct jobs_webhook_opts *o, const char *url,
                      const char *body, long long now, struct gw_err *err)
{
    struct curl_slist *hl = NULL;
    CURL *h = NULL;
    long status = 0;
    char errbuf[CURL_ERROR_SIZE] = "";
    struct guard g = {.allow_cidrs = o->allow_cidrs, .refused = ""};
    struct gw_curl_opts co = {.url = url,
                              .protocols = o->allow_http ? "http,https" : "https",
                              .connect_timeout_ms = WEBHOOK_CONNECT_TIMEOUT_MS,
                              .timeout_ms = WEBHOOK_TIMEOUT_MS,
                              .errbuf = errbuf,
                              .user_agent = "ml-gateway"};
    gw_fmt(cls, JOBS_WEBHOOK_CLASS_LEN, "%s", "error");
    int rc = webhook_headers(&hl, body, o->secret, now, err);
    if (rc == GW_OK)
        rc = gw_curl_new(&h, &co, err);
    if (rc == GW_OK)
        rc = webhook_options(h, hl, body, &g, err);
    if (rc == GW_OK) {
        CURLcode cc = curl_easy_perform(h);
        if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
            status = 0;
        rc = webhook_result(cc, status, &g, errbuf, err);
        if (rc == GW_OK)
            cls[0] = '\0';
        else
            jobs_webhook_class(cls, cc, status);
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    return rc;
}
