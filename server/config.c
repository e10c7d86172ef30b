/*
 * config.c — the settings table and its validation (after Redis's
 * standardConfig and PgBouncer's bouncer_params[]). Each entry names its
 * environment variable, type, default, bounds and whether it is a secret; one
 * loop parses them all, so a new setting is one line here plus its field.
 */
#include "config.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#include "poison.h"

enum cfg_type { CFG_STRING, CFG_INT, CFG_LOGLEVEL, CFG_ADDR, CFG_DBURL };

struct cfg_entry {
    const char *env;
    enum cfg_type type;
    int secret;
    size_t offset;
    const char *def; /* NULL: required (string types) or computed */
    long long min, max;
    const char *help;
};

#define F(field) offsetof(struct srv_config, field)

static const struct cfg_entry cfg_table[] = {
    {"MLGW_LISTEN", CFG_ADDR, 0, F(listen), "127.0.0.1:8080", 0, 0,
     "address:port to serve on (IPv4, [IPv6] or localhost; port 0 picks a free one)"},
    {"DATABASE_URL", CFG_DBURL, 1, F(database_url), NULL, 0, 0,
     "libpq connection URL or key=value string (password redacted in logs)"},
    {"MLGW_MIGRATIONS_DIR", CFG_STRING, 0, F(migrations_dir), "migrations", 0, 0,
     "directory of NNNN_name.sql migrations"},
    {"MLGW_LOG_LEVEL", CFG_LOGLEVEL, 0, F(log_level), "info", 0, 0, "debug, info, warn or error"},
    {"MLGW_THREADS", CFG_INT, 0, F(threads), NULL, 1, 256,
     "HTTP worker threads (default: 2 x cores, at least 4)"},
    {"MLGW_CONNECTION_LIMIT", CFG_INT, 0, F(connection_limit), "1024", 1, 65536,
     "concurrent HTTP connections"},
    {"MLGW_CONNECTION_TIMEOUT", CFG_INT, 0, F(connection_timeout_s), "30", 1, 3600,
     "seconds an idle HTTP connection is kept"},
    {"MLGW_MAX_BODY_BYTES", CFG_INT, 0, F(max_body_bytes), "1048576", 1024, 67108864,
     "largest request body accepted (413 above)"},
    {"MLGW_SHUTDOWN_TIMEOUT", CFG_INT, 0, F(shutdown_timeout_s), "10", 0, 600,
     "seconds in-flight requests get to finish after SIGTERM"},
    {"MLGW_DB_POOL_SIZE", CFG_INT, 0, F(db_pool_size), "10", 1, 1000,
     "PostgreSQL connections in the pool"},
    {"MLGW_DB_CHECKOUT_TIMEOUT_MS", CFG_INT, 0, F(db_checkout_timeout_ms), "2000", 1, 60000,
     "milliseconds a request waits for a pooled connection before 503"},
    {"MLGW_DB_CONNECT_TIMEOUT", CFG_INT, 0, F(db_connect_timeout_s), "5", 1, 60,
     "seconds to establish one PostgreSQL connection"},
};

#undef F

static const char *env_getter(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

static long long default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    long long t = 2LL * n;
    return t < 4 ? 4 : (t > 64 ? 64 : t);
}

static int parse_addr(struct srv_config *cfg, const char *v, struct gw_buf *errors, const char *env)
{
    char host[256];
    const char *colon;
    size_t hlen;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (close == NULL || close[1] != ':')
            goto bad;
        hlen = (size_t)(close - v - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            goto bad;
        memcpy(host, v + 1, hlen);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (colon == NULL)
            goto bad;
        hlen = (size_t)(colon - v);
        if (hlen == 0 || hlen >= sizeof(host))
            goto bad;
        memcpy(host, v, hlen);
    }
    host[hlen] = '\0';
    long long port;
    if (gw_parse_ll(&port, colon + 1, 0, 65535) != GW_OK)
        goto bad;

    memset(&cfg->listen_addr, 0, sizeof(cfg->listen_addr));
    if (strcmp(host, "localhost") == 0) {
        memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)&cfg->listen_addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&cfg->listen_addr;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        cfg->listen_addrlen = sizeof(*in4);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        cfg->listen_addrlen = sizeof(*in6);
    } else {
        goto bad;
    }
    int n = snprintf(cfg->listen, sizeof(cfg->listen), "%s", v);
    if (n < 0 || (size_t)n >= sizeof(cfg->listen))
        goto bad;
    return 0;
bad:
    if (errors != NULL)
        gw_buf_printf(errors,
                      "%s: \"%s\" is not an address:port (expected e.g. 127.0.0.1:8080 or "
                      "[::1]:8080, port 0-65535)\n",
                      env, v);
    return 1;
}

int srv_config_load(struct srv_config *cfg, srv_config_getter get, void *ctx, struct gw_buf *errors)
{
    memset(cfg, 0, sizeof(*cfg));
    if (get == NULL)
        get = env_getter;
    int bad = 0;
    for (size_t i = 0; i < GW_ARRAY_LEN(cfg_table); i++) {
        const struct cfg_entry *e = &cfg_table[i];
        const char *v = get(e->env, ctx);
        if (v != NULL && v[0] == '\0')
            v = NULL; /* an empty variable means "use the default" */
        if (v == NULL)
            v = e->def;
        char *field = (char *)cfg + e->offset;
        switch (e->type) {
        case CFG_STRING:
        case CFG_DBURL: {
            if (v == NULL) {
                bad++;
                if (errors != NULL)
                    gw_buf_printf(errors, "%s: is required (%s)\n", e->env, e->help);
                break;
            }
            char *dup = strdup(v);
            if (dup == NULL) {
                bad++;
                break;
            }
            memcpy(field, &dup, sizeof(dup));
            break;
        }
        case CFG_INT: {
            long long n;
            if (v == NULL) {
                n = default_threads(); /* the only computed default */
            } else if (gw_parse_ll(&n, v, e->min, e->max) != GW_OK) {
                bad++;
                if (errors != NULL)
                    gw_buf_printf(errors, "%s: \"%s\" is not an integer between %lld and %lld\n",
                                  e->env, v, e->min, e->max);
                break;
            }
            memcpy(field, &n, sizeof(n));
            break;
        }
        case CFG_LOGLEVEL: {
            int lvl = srv_log_level_parse(v);
            if (lvl < 0) {
                bad++;
                if (errors != NULL)
                    gw_buf_printf(errors, "%s: \"%s\" is not one of debug, info, warn, error\n",
                                  e->env, v);
                break;
            }
            memcpy(field, &lvl, sizeof(lvl));
            break;
        }
        case CFG_ADDR: bad += parse_addr(cfg, v, errors, e->env); break;
        }
    }
    return bad;
}

void srv_config_dispose(struct srv_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->database_url);
    free(cfg->migrations_dir);
    cfg->database_url = NULL;
    cfg->migrations_dir = NULL;
}

/* Text-level redaction that keeps the shape the user wrote: the userinfo
 * password of a URL and "password=" values (key/value or query string). */
static char *redact_in_place(const char *url)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)64 << 10);
    const char *p = url;
    int is_url = strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
    if (is_url) {
        const char *auth = strstr(url, "://") + 3;
        const char *end = auth + strcspn(auth, "/?#");
        const char *at = NULL;
        for (const char *q = auth; q < end; q++)
            if (*q == '@')
                at = q;
        if (at != NULL) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon != NULL) {
                gw_buf_add(&b, url, (size_t)(colon + 1 - url));
                gw_buf_adds(&b, "***");
                p = at;
            }
        }
    }
    while (*p != '\0') {
        const char *hit = strstr(p, "password=");
        if (hit == NULL) {
            gw_buf_adds(&b, p);
            break;
        }
        gw_buf_add(&b, p, (size_t)(hit - p) + 9);
        gw_buf_adds(&b, "***");
        p = hit + 9;
        if (*p == '\'') {
            p++;
            while (*p != '\0' && *p != '\'') {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                p++;
            }
            if (*p == '\'')
                p++;
        } else {
            p += strcspn(p, " &");
        }
    }
    if (b.data == NULL)
        gw_buf_add(&b, "", 0);
    return gw_buf_steal(&b);
}

/* The connection string rebuilt from libpq's own parse, password replaced:
 * used whenever the text-level redaction cannot be trusted. */
static char *redact_rebuilt(const PQconninfoOption *opts)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)64 << 10);
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (b.len > 0)
            gw_buf_adds(&b, " ");
        gw_buf_printf(&b, "%s=", o->keyword);
        if (strcmp(o->keyword, "password") == 0) {
            gw_buf_adds(&b, "***");
            continue;
        }
        int plain = o->val[0] != '\0' && strpbrk(o->val, " '\\") == NULL;
        if (plain) {
            gw_buf_adds(&b, o->val);
            continue;
        }
        gw_buf_adds(&b, "'");
        for (const char *c = o->val; *c != '\0'; c++) {
            if (*c == '\'' || *c == '\\')
                gw_buf_adds(&b, "\\");
            gw_buf_add(&b, c, 1);
        }
        gw_buf_adds(&b, "'");
    }
    if (b.data == NULL)
        gw_buf_add(&b, "", 0);
    return gw_buf_steal(&b);
}

/* True when redacted parses to exactly the options of orig, except that
 * any password became "***". */
static int redaction_sound(const PQconninfoOption *orig, const char *redacted)
{
    char *errmsg = NULL;
    PQconninfoOption *red = PQconninfoParse(redacted, &errmsg);
    PQfreemem(errmsg);
    if (red == NULL)
        return 0;
    int ok = 1;
    for (size_t i = 0; ok && orig[i].keyword != NULL; i++) {
        const char *a = orig[i].val, *b = red[i].val;
        if (red[i].keyword == NULL || strcmp(orig[i].keyword, red[i].keyword) != 0)
            ok = 0;
        else if (strcmp(orig[i].keyword, "password") == 0)
            ok = a == NULL ? b == NULL : (b != NULL && strcmp(b, "***") == 0);
        else
            ok = (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
    }
    PQconninfoFree(red);
    return ok;
}

char *srv_config_redact_url(const char *url)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &errmsg);
    PQfreemem(errmsg);
    if (opts == NULL)
        return strdup("(unparseable connection string, not shown)");
    /* Keep the user's own spelling when libpq reads it back as the same
     * settings with the password hidden; otherwise rebuild from the parse. */
    char *out = redact_in_place(url);
    if (out == NULL || !redaction_sound(opts, out)) {
        free(out);
        out = redact_rebuilt(opts);
    }
    PQconninfoFree(opts);
    return out;
}

char *srv_config_describe(const struct srv_config *cfg)
{
    struct gw_buf b;
    gw_buf_init(&b, (size_t)64 << 10);
    gw_buf_adds(&b, "\"config\":{");
    for (size_t i = 0; i < GW_ARRAY_LEN(cfg_table); i++) {
        const struct cfg_entry *e = &cfg_table[i];
        const char *field = (const char *)cfg + e->offset;
        if (i > 0)
            gw_buf_adds(&b, ",");
        gw_buf_printf(&b, "\"%s\":", e->env);
        switch (e->type) {
        case CFG_STRING:
        case CFG_DBURL: {
            const char *s;
            memcpy(&s, field, sizeof(s));
            if (s == NULL) {
                gw_buf_adds(&b, "null");
            } else if (e->type == CFG_DBURL) {
                char *r = srv_config_redact_url(s);
                gw_buf_adds(&b, "\"");
                gw_buf_add_json_escaped(&b, r);
                gw_buf_adds(&b, "\"");
                free(r);
            } else if (e->secret) {
                gw_buf_adds(&b, "\"***\"");
            } else {
                gw_buf_adds(&b, "\"");
                gw_buf_add_json_escaped(&b, s);
                gw_buf_adds(&b, "\"");
            }
            break;
        }
        case CFG_INT: {
            long long n;
            memcpy(&n, field, sizeof(n));
            gw_buf_printf(&b, "%lld", n);
            break;
        }
        case CFG_LOGLEVEL: {
            static const char *const names[] = {"debug", "info", "warn", "error"};
            int lvl;
            memcpy(&lvl, field, sizeof(lvl));
            gw_buf_printf(&b, "\"%s\"", (lvl >= 0 && lvl < 4) ? names[lvl] : "?");
            break;
        }
        case CFG_ADDR:
            gw_buf_adds(&b, "\"");
            gw_buf_add_json_escaped(&b, cfg->listen);
            gw_buf_adds(&b, "\"");
            break;
        }
    }
    gw_buf_adds(&b, "}");
    return gw_buf_steal(&b);
}

int srv_config_markdown(struct gw_buf *out)
{
    int rc = gw_buf_adds(out, "| Variable | Default | Range | Meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; rc == GW_OK && i < GW_ARRAY_LEN(cfg_table); i++) {
        const struct cfg_entry *e = &cfg_table[i];
        char range[64] = "";
        if (e->type == CFG_INT)
            gw_fmt(range, sizeof(range), "%lld–%lld", e->min, e->max);
        rc = gw_buf_printf(out, "| `%s` | %s%s%s | %s | %s%s |\n", e->env, e->def ? "`" : "",
                           e->def ? e->def : (e->type == CFG_INT ? "computed" : "required"),
                           e->def ? "`" : "", range, e->help, e->secret ? " (secret)" : "");
    }
    return rc;
}
