/*
 * test_config.c — unit tests for server/config.c: loading the settings table
 * through a getter over a static table (never the real environment), the
 * one-line-per-problem error report, password redaction, the describe line
 * and the Markdown table.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"

struct kv {
    const char *name;
    const char *value;
};

struct env {
    const struct kv *vars;
    size_t n;
};

static const char *table_get(const char *name, void *ctx)
{
    const struct env *e = ctx;
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->vars[i].name, name) == 0)
            return e->vars[i].value;
    return NULL;
}

#define DB_URL "postgresql://app@db.internal:5432/mlgw"

/* Loads cfg from the given pairs; errors collects the problem lines. */
#define LOAD(cfg, errors, ...)                                                                     \
    load_from((cfg), (errors), (const struct kv[]){__VA_ARGS__},                                   \
              sizeof((const struct kv[]){__VA_ARGS__}) / sizeof(struct kv))

static int load_from(struct gw_config *cfg, struct gw_buf *errors, const struct kv *vars, size_t n)
{
    struct env e = {vars, n};
    return gw_config_load(cfg, table_get, &e, errors);
}

static struct gw_config cfg;
static struct gw_buf errors;

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    gw_buf_init(&errors, 16 * 1024);
}

static void teardown(void)
{
    gw_config_dispose(&cfg);
    gw_buf_dispose(&errors);
}

TestSuite(server_config, .init = setup, .fini = teardown);

static const char *errtext(void)
{
    return errors.data != NULL ? errors.data : "";
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        if (*s == '\n')
            n++;
    return n;
}

/* ---- defaults and required values ------------------------------------- */

Test(server_config, defaults_apply_when_only_database_url_is_set)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}), 0, "errors: %s", errtext());
    cr_assert_str_eq(errtext(), "");

    cr_assert_str_eq(cfg.database_url, DB_URL);
    cr_assert_str_eq(cfg.listen, "127.0.0.1:8080");
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&cfg.listen_addr;
    cr_assert_eq(in4->sin_family, AF_INET);
    cr_assert_eq(ntohs(in4->sin_port), 8080);
    cr_assert_eq(ntohl(in4->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_assert_eq(cfg.listen_addrlen, sizeof(struct sockaddr_in));

    cr_assert_str_eq(cfg.migrations_dir, "migrations");
    cr_assert_eq(cfg.log_level, GW_LOG_LEVEL_INFO);
    cr_assert_geq(cfg.threads, 4); /* computed: 2 x cores, clamped to [4, 64] */
    cr_assert_leq(cfg.threads, 64);
    cr_assert_eq(cfg.connection_limit, 1024);
    cr_assert_eq(cfg.connection_timeout_s, 30);
    cr_assert_eq(cfg.max_body_bytes, 1048576);
    cr_assert_eq(cfg.shutdown_timeout_s, 10);
    cr_assert_eq(cfg.db_pool_size, 10);
    cr_assert_eq(cfg.db_checkout_timeout_ms, 2000);
    cr_assert_eq(cfg.db_connect_timeout_s, 5);
}

Test(server_config, missing_database_url_is_one_error_naming_the_variable)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"MLGW_LOG_LEVEL", "debug"}), 1);
    cr_assert_null(cfg.database_url);
    cr_assert_eq(count_lines(errtext()), 1, "errors: %s", errtext());
    cr_assert_eq(strncmp(errtext(), "DATABASE_URL: ", 14), 0, "errors: %s", errtext());
    cr_assert_not_null(strstr(errtext(), "required"));
    /* The other settings are still parsed. */
    cr_assert_eq(cfg.log_level, GW_LOG_LEVEL_DEBUG);
}

Test(server_config, empty_value_means_the_default)
{
    int bad = LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_LISTEN", ""},
                   {"MLGW_DB_POOL_SIZE", ""}, {"MLGW_LOG_LEVEL", ""}, {"MLGW_MIGRATIONS_DIR", ""});
    cr_assert_eq(bad, 0, "errors: %s", errtext());
    cr_assert_str_eq(cfg.listen, "127.0.0.1:8080");
    cr_assert_eq(cfg.db_pool_size, 10);
    cr_assert_eq(cfg.log_level, GW_LOG_LEVEL_INFO);
    cr_assert_str_eq(cfg.migrations_dir, "migrations");
}

Test(server_config, empty_database_url_counts_as_missing)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", ""}), 1);
    cr_assert_null(cfg.database_url);
    cr_assert_eq(strncmp(errtext(), "DATABASE_URL: ", 14), 0, "errors: %s", errtext());
}

Test(server_config, explicit_values_override_the_defaults)
{
    int bad = LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_THREADS", "8"},
                   {"MLGW_CONNECTION_LIMIT", "65536"}, {"MLGW_MAX_BODY_BYTES", "1024"},
                   {"MLGW_SHUTDOWN_TIMEOUT", "0"}, {"MLGW_MIGRATIONS_DIR", "/srv/migrations"},
                   {"MLGW_DB_CHECKOUT_TIMEOUT_MS", "60000"});
    cr_assert_eq(bad, 0, "errors: %s", errtext());
    cr_assert_eq(cfg.threads, 8);
    cr_assert_eq(cfg.connection_limit, 65536);
    cr_assert_eq(cfg.max_body_bytes, 1024);
    cr_assert_eq(cfg.shutdown_timeout_s, 0);
    cr_assert_str_eq(cfg.migrations_dir, "/srv/migrations");
    cr_assert_eq(cfg.db_checkout_timeout_ms, 60000);
}

Test(server_config, a_null_error_buffer_still_counts_problems)
{
    cr_assert_eq(LOAD(&cfg, NULL, {"MLGW_THREADS", "0"}, {"MLGW_LISTEN", "nope"}), 3);
}

/* ---- MLGW_LISTEN -------------------------------------------------------- */

Test(server_config, listen_accepts_ipv4_address_and_port)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_LISTEN", "0.0.0.0:9090"}), 0,
                 "errors: %s", errtext());
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&cfg.listen_addr;
    cr_assert_eq(in4->sin_family, AF_INET);
    cr_assert_eq(ntohs(in4->sin_port), 9090);
    cr_assert_eq(in4->sin_addr.s_addr, htonl(INADDR_ANY));
    cr_assert_str_eq(cfg.listen, "0.0.0.0:9090");
}

Test(server_config, listen_accepts_bracketed_ipv6)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_LISTEN", "[::1]:9000"}), 0,
                 "errors: %s", errtext());
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&cfg.listen_addr;
    cr_assert_eq(in6->sin6_family, AF_INET6);
    cr_assert_eq(ntohs(in6->sin6_port), 9000);
    cr_assert_eq(memcmp(&in6->sin6_addr, &in6addr_loopback, sizeof(in6addr_loopback)), 0);
    cr_assert_eq(cfg.listen_addrlen, sizeof(struct sockaddr_in6));
    cr_assert_str_eq(cfg.listen, "[::1]:9000");
}

Test(server_config, listen_accepts_localhost_with_port_zero_as_ipv4_loopback)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_LISTEN", "localhost:0"}), 0,
                 "errors: %s", errtext());
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&cfg.listen_addr;
    cr_assert_eq(in4->sin_family, AF_INET);
    cr_assert_eq(ntohs(in4->sin_port), 0);
    cr_assert_eq(ntohl(in4->sin_addr.s_addr), INADDR_LOOPBACK);
    cr_assert_str_eq(cfg.listen, "localhost:0"); /* as written, for the logs */
}

Test(server_config, listen_accepts_the_highest_port)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_LISTEN", "127.0.0.1:65535"}),
                 0, "errors: %s", errtext());
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&cfg.listen_addr;
    cr_assert_eq(ntohs(in4->sin_port), 65535);
}

Test(server_config, listen_rejects_values_that_are_not_address_and_port)
{
    static const char *const bad[] = {
        "not-an-address", "1.2.3.4",    "1.2.3.4:70000",  ":80",          "[::1]9000",
        "1.2.3.4:",       "1.2.3.4:-1", "1.2.3.4:+80",    "1.2.3.4:8x",   "[::1]:",
        "[]:80",          "[::1:80",    "example.com:80", "256.1.1.1:80", "1.2.3.4: 80",
    };
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        struct gw_config c;
        struct gw_buf e;
        gw_buf_init(&e, 4096);
        int n = LOAD(&c, &e, {"DATABASE_URL", DB_URL}, {"MLGW_LISTEN", bad[i]});
        const char *text = e.data != NULL ? e.data : "";
        int ok = n == 1 && count_lines(text) == 1 && strncmp(text, "MLGW_LISTEN: ", 13) == 0 &&
                 strstr(text, bad[i]) != NULL;
        char copy[512];
        snprintf(copy, sizeof(copy), "%s", text);
        gw_config_dispose(&c);
        gw_buf_dispose(&e);
        cr_assert(ok, "MLGW_LISTEN=\"%s\" gave %d problems: %s", bad[i], n, copy);
    }
}

Test(server_config, listen_rejects_a_host_longer_than_255_characters)
{
    char v[300];
    memset(v, 'a', 260);
    memcpy(v + 260, ":80", 4);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_LISTEN", v}), 1);
    cr_assert_eq(strncmp(errtext(), "MLGW_LISTEN: ", 13), 0);
}

/* ---- integers ---------------------------------------------------------- */

Test(server_config, pool_size_accepts_its_bounds_inclusive)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_DB_POOL_SIZE", "1000"}), 0,
                 "errors: %s", errtext());
    cr_assert_eq(cfg.db_pool_size, 1000);
    gw_config_dispose(&cfg);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_DB_POOL_SIZE", "1"}), 0,
                 "errors: %s", errtext());
    cr_assert_eq(cfg.db_pool_size, 1);
}

Test(server_config, pool_size_outside_its_bounds_or_not_a_number_is_rejected)
{
    static const char *const bad[] = {"0", "1001", "10x", "-1", " 10", "+10", "1e3", "ten"};
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        struct gw_config c;
        struct gw_buf e;
        gw_buf_init(&e, 4096);
        int n = LOAD(&c, &e, {"DATABASE_URL", DB_URL}, {"MLGW_DB_POOL_SIZE", bad[i]});
        const char *text = e.data != NULL ? e.data : "";
        int ok = n == 1 && count_lines(text) == 1 &&
                 strncmp(text, "MLGW_DB_POOL_SIZE: ", 19) == 0 && strstr(text, "1 and 1000");
        char copy[512];
        snprintf(copy, sizeof(copy), "%s", text);
        gw_config_dispose(&c);
        gw_buf_dispose(&e);
        cr_assert(ok, "MLGW_DB_POOL_SIZE=\"%s\" gave %d problems: %s", bad[i], n, copy);
    }
}

Test(server_config, max_body_bytes_below_one_kibibyte_is_rejected)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_MAX_BODY_BYTES", "1023"}), 1);
    cr_assert_eq(strncmp(errtext(), "MLGW_MAX_BODY_BYTES: ", 21), 0, "errors: %s", errtext());
}

Test(server_config, explicit_threads_outside_1_to_256_are_rejected)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_THREADS", "257"}), 1);
    cr_assert_not_null(strstr(errtext(), "MLGW_THREADS: \"257\""), "errors: %s", errtext());
}

/* ---- MLGW_LOG_LEVEL ----------------------------------------------------- */

Test(server_config, log_level_accepts_the_four_names)
{
    static const struct {
        const char *name;
        int level;
    } ok[] = {{"debug", GW_LOG_LEVEL_DEBUG},
              {"info", GW_LOG_LEVEL_INFO},
              {"warn", GW_LOG_LEVEL_WARN},
              {"error", GW_LOG_LEVEL_ERROR}};
    for (size_t i = 0; i < GW_ARRAY_LEN(ok); i++) {
        struct gw_config c;
        int n = LOAD(&c, NULL, {"DATABASE_URL", DB_URL}, {"MLGW_LOG_LEVEL", ok[i].name});
        int lvl = c.log_level;
        gw_config_dispose(&c);
        cr_assert_eq(n, 0, "MLGW_LOG_LEVEL=%s", ok[i].name);
        cr_assert_eq(lvl, ok[i].level, "MLGW_LOG_LEVEL=%s", ok[i].name);
    }
}

Test(server_config, log_level_rejects_other_words)
{
    static const char *const bad[] = {"verbose", "INFO", "warning", "0", " info"};
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        struct gw_config c;
        struct gw_buf e;
        gw_buf_init(&e, 4096);
        int n = LOAD(&c, &e, {"DATABASE_URL", DB_URL}, {"MLGW_LOG_LEVEL", bad[i]});
        const char *text = e.data != NULL ? e.data : "";
        int ok = n == 1 && strncmp(text, "MLGW_LOG_LEVEL: ", 16) == 0;
        gw_config_dispose(&c);
        gw_buf_dispose(&e);
        cr_assert(ok, "MLGW_LOG_LEVEL=\"%s\" gave %d problems", bad[i], n);
    }
}

/* ---- several problems at once ------------------------------------------ */

Test(server_config, several_invalid_values_give_one_line_each_and_their_count)
{
    int bad = LOAD(&cfg, &errors, {"MLGW_LISTEN", "nope"}, {"MLGW_LOG_LEVEL", "loud"},
                   {"MLGW_THREADS", "0"}, {"MLGW_DB_POOL_SIZE", "1001"},
                   {"MLGW_CONNECTION_TIMEOUT", "x"});
    /* DATABASE_URL is missing too. */
    cr_assert_eq(bad, 6, "errors: %s", errtext());
    cr_assert_eq(count_lines(errtext()), 6, "errors: %s", errtext());
    static const char *const names[] = {
        "MLGW_LISTEN: ",  "DATABASE_URL: ",      "MLGW_LOG_LEVEL: ",
        "MLGW_THREADS: ", "MLGW_DB_POOL_SIZE: ", "MLGW_CONNECTION_TIMEOUT: "};
    for (size_t i = 0; i < GW_ARRAY_LEN(names); i++) {
        size_t starts = 0;
        for (const char *line = errtext(); *line != '\0'; line = strchr(line, '\n') + 1)
            if (strncmp(line, names[i], strlen(names[i])) == 0)
                starts++;
        cr_assert_eq(starts, 1, "%s starts %zu lines of: %s", names[i], starts, errtext());
    }
}

/* ---- MLGW_DATABASE_PASSWORD --------------------------------------------- */

/* The value libpq reads for keyword from the connection string s (a copy), or NULL. */
static char *conninfo_value(const char *s, const char *keyword)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(s, &errmsg);
    PQfreemem(errmsg);
    cr_assert_not_null(opts, "libpq cannot parse \"%s\"", s);
    char *val = NULL;
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, keyword) == 0 && o->val != NULL)
            val = strdup(o->val);
    PQconninfoFree(opts);
    return val;
}

static void assert_conninfo(const char *s, const char *keyword, const char *want)
{
    char *got = conninfo_value(s, keyword);
    int same = got != NULL && strcmp(got, want) == 0;
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", got != NULL ? got : "(unset)");
    free(got);
    cr_assert(same, "%s of \"%s\" is \"%s\", want \"%s\"", keyword, s, copy, want);
}

Test(server_config, database_password_joins_a_url_without_one)
{
    cr_assert_eq(
        LOAD(&cfg, &errors,
             {"DATABASE_URL", "postgresql://app@db.internal:5432/mlgw?sslmode=verify-full"},
             {"MLGW_DATABASE_PASSWORD", "it's a \\ p@ss word"}),
        0, "errors: %s", errtext());
    assert_conninfo(cfg.database_url, "password", "it's a \\ p@ss word");
    assert_conninfo(cfg.database_url, "host", "db.internal");
    assert_conninfo(cfg.database_url, "port", "5432");
    assert_conninfo(cfg.database_url, "dbname", "mlgw");
    assert_conninfo(cfg.database_url, "user", "app");
    assert_conninfo(cfg.database_url, "sslmode", "verify-full");
    char *shown = gw_config_redact_url(cfg.database_url);
    cr_assert_null(strstr(shown, "p@ss"), "the merged URL is redacted: %s", shown);
    free(shown);
}

Test(server_config, database_password_replaces_the_urls_own)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", "host=db user=app password=old dbname=x"},
                      {"MLGW_DATABASE_PASSWORD", "rotated"}),
                 0, "errors: %s", errtext());
    assert_conninfo(cfg.database_url, "password", "rotated");
    assert_conninfo(cfg.database_url, "dbname", "x");
    cr_assert_null(strstr(cfg.database_url, "old"), "%s", cfg.database_url);
}

Test(server_config, without_database_password_the_url_is_kept_as_written)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}), 0, "errors: %s", errtext());
    cr_assert_str_eq(cfg.database_url, DB_URL);
    cr_assert_null(cfg.database_password);
}

Test(server_config, database_password_with_an_unparseable_url_is_one_problem)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", "host='unterminated"},
                      {"MLGW_DATABASE_PASSWORD", "pw"}),
                 1);
    cr_assert(strstr(errtext(), "DATABASE_URL: is not a libpq connection string") != NULL, "%s",
              errtext());
    cr_assert_null(strstr(errtext(), "pw\n"), "%s", errtext());
}

/* ---- gw_config_redact_url --------------------------------------------- */

static void assert_redacted(const char *in, const char *want, const char *secret)
{
    char *out = gw_config_redact_url(in);
    cr_assert_not_null(out);
    int same = strcmp(out, want) == 0;
    int leaks = secret != NULL && strstr(out, secret) != NULL;
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", out);
    free(out);
    cr_assert(same, "redact(\"%s\") = \"%s\", want \"%s\"", in, copy, want);
    cr_assert(!leaks, "redact(\"%s\") leaks \"%s\"", in, secret);
}

Test(server_config, redact_url_replaces_the_userinfo_password)
{
    assert_redacted("postgresql://app:s3cr3t@db.internal:5432/mlgw",
                    "postgresql://app:***@db.internal:5432/mlgw", "s3cr3t");
    assert_redacted("postgres://app:s3cr3t@db/mlgw", "postgres://app:***@db/mlgw", "s3cr3t");
}

Test(server_config, redact_url_handles_passwords_with_colons_and_percent_escapes)
{
    assert_redacted("postgresql://app:a:b%40c@db/mlgw?sslmode=require",
                    "postgresql://app:***@db/mlgw?sslmode=require", "b%40c");
}

Test(server_config, redact_url_leaves_urls_without_a_password_unchanged)
{
    assert_redacted(DB_URL, DB_URL, NULL);
    assert_redacted("postgresql://db.internal/mlgw", "postgresql://db.internal/mlgw", NULL);
    assert_redacted("postgresql://db.internal:5432/mlgw?sslmode=verify-full",
                    "postgresql://db.internal:5432/mlgw?sslmode=verify-full", NULL);
    assert_redacted("postgresql:///mlgw?host=/var/run/postgresql",
                    "postgresql:///mlgw?host=/var/run/postgresql", NULL);
}

Test(server_config, redact_url_replaces_a_key_value_password)
{
    assert_redacted("host=x password=secret user=u", "host=x password=*** user=u", "secret");
    assert_redacted("password=secret", "password=***", "secret");
    assert_redacted("host=x password=", "host=x password=***", NULL);
}

Test(server_config, redact_url_replaces_a_quoted_key_value_password_with_escapes)
{
    assert_redacted("host=x password='a b\\'c' user=u", "host=x password=*** user=u", "a b");
    char *out = gw_config_redact_url("host=x password='a b\\'c' user=u");
    cr_assert_null(strstr(out, "c'"), "got %s", out);
    free(out);
}

Test(server_config, redact_url_replaces_an_unterminated_quoted_password_to_the_end)
{
    /* libpq cannot parse it either, so it is not shown at all. */
    assert_redacted("host=x password='open secret", "(unparseable connection string, not shown)",
                    "open");
}

Test(server_config, redact_url_replaces_a_password_query_parameter)
{
    assert_redacted("postgresql://app@db/mlgw?sslmode=require&password=hunter2&connect_timeout=5",
                    "postgresql://app@db/mlgw?sslmode=require&password=***&connect_timeout=5",
                    "hunter2");
    assert_redacted("postgresql://db/mlgw?password=hunter2", "postgresql://db/mlgw?password=***",
                    "hunter2");
}

Test(server_config, redact_url_replaces_both_userinfo_and_query_passwords)
{
    assert_redacted("postgresql://app:one@db/mlgw?password=two",
                    "postgresql://app:***@db/mlgw?password=***", "one");
    assert_redacted("postgresql://app:one@db/mlgw?password=two",
                    "postgresql://app:***@db/mlgw?password=***", "two");
}

Test(server_config, redact_url_replaces_every_password_occurrence)
{
    assert_redacted("password=first host=x password=second", "password=*** host=x password=***",
                    "first");
    assert_redacted("password=first host=x password=second", "password=*** host=x password=***",
                    "second");
}

Test(server_config, redact_url_of_the_empty_string_is_an_empty_string)
{
    assert_redacted("", "", NULL);
}

/* ---- gw_config_describe ------------------------------------------------ */

static json_t *describe_as_json(const struct gw_config *c)
{
    char *d = gw_config_describe(c);
    cr_assert_not_null(d);
    cr_assert_eq(strncmp(d, "\"config\":{", 10), 0, "describe: %s", d);
    size_t n = strlen(d) + 3;
    char *wrapped = malloc(n);
    cr_assert_not_null(wrapped);
    snprintf(wrapped, n, "{%s}", d);
    json_error_t jerr;
    json_t *root = json_loads(wrapped, 0, &jerr);
    free(wrapped);
    free(d);
    cr_assert_not_null(root, "describe is not JSON fields: %s", jerr.text);
    json_t *obj = json_object_get(root, "config");
    cr_assert(json_is_object(obj));
    json_incref(obj);
    json_decref(root);
    return obj;
}

Test(server_config, describe_redacts_the_url_password_and_is_valid_json_fields)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", "postgresql://app:topsecret@db/mlgw"},
                      {"MLGW_LISTEN", "[::1]:9000"}, {"MLGW_DB_POOL_SIZE", "7"}),
                 0, "errors: %s", errtext());
    char *d = gw_config_describe(&cfg);
    cr_assert_null(strstr(d, "topsecret"), "describe leaks the password: %s", d);
    free(d);

    json_t *obj = describe_as_json(&cfg);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "DATABASE_URL")),
                     "postgresql://app:***@db/mlgw");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "MLGW_LISTEN")), "[::1]:9000");
    cr_assert_eq(json_integer_value(json_object_get(obj, "MLGW_DB_POOL_SIZE")), 7);
    cr_assert_str_eq(json_string_value(json_object_get(obj, "MLGW_LOG_LEVEL")), "info");
    cr_assert_str_eq(json_string_value(json_object_get(obj, "MLGW_MIGRATIONS_DIR")), "migrations");
    cr_assert_eq(json_object_size(obj), 96, "one field per setting");
    json_decref(obj);
}

Test(server_config, describe_redacts_a_key_value_password)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", "host=db password='top secret' user=u"}), 0);
    char *d = gw_config_describe(&cfg);
    cr_assert_null(strstr(d, "top secret"), "describe leaks the password: %s", d);
    cr_assert_not_null(strstr(d, "password=***"), "describe: %s", d);
    free(d);
}

Test(server_config, describe_escapes_strings_and_writes_a_missing_url_as_null)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"MLGW_MIGRATIONS_DIR", "dir with \"quotes\"\n"}), 1);
    json_t *obj = describe_as_json(&cfg);
    cr_assert(json_is_null(json_object_get(obj, "DATABASE_URL")));
    cr_assert_str_eq(json_string_value(json_object_get(obj, "MLGW_MIGRATIONS_DIR")),
                     "dir with \"quotes\"\n");
    json_decref(obj);
}

/* ---- gw_config_markdown ------------------------------------------------ */

Test(server_config, markdown_lists_every_variable_once)
{
    static const char *const names[] = {
        "MLGW_LISTEN",
        "DATABASE_URL",
        "MLGW_DATABASE_PASSWORD",
        "MLGW_MIGRATIONS_DIR",
        "MLGW_LOG_LEVEL",
        "MLGW_THREADS",
        "MLGW_CONNECTION_LIMIT",
        "MLGW_CONNECTION_TIMEOUT",
        "MLGW_MAX_BODY_BYTES",
        "MLGW_SHUTDOWN_TIMEOUT",
        "MLGW_DB_POOL_SIZE",
        "MLGW_GROUP_COMMIT",
        "MLGW_DB_WRITERS",
        "MLGW_GROUP_COMMIT_MAX",
        "MLGW_DB_CHECKOUT_TIMEOUT_MS",
        "MLGW_DB_CONNECT_TIMEOUT",
        "MLGW_DISPATCH",
        "MLGW_GPU_JOB_VCPUS",
        "MLGW_GPU_JOB_MEMORY",
        "MLGW_GPU_JOB_GPUS",
        "MLGW_CPU_JOB_VCPUS",
        "MLGW_CPU_JOB_MEMORY",
        "MLGW_MAX_VCPUS",
        "MLGW_MAX_MEMORY",
        "MLGW_MAX_GPUS",
        "ML_INPUT_BUCKET",
        "ML_OUTPUT_BUCKET",
        "MLGW_LOCAL_ROOT",
        "MLGW_LOCAL_GPUS",
        "MLGW_LOCAL_VCPUS",
        "MLGW_LOCAL_MEMORY",
        "MLGW_LOCAL_TERM_GRACE",
        "MLGW_LOCAL_PYTHON",
        "MLGW_LOCAL_ENTRYPOINT",
        "MLGW_LOCAL_SANDBOX",
        "MLGW_LOCAL_SANDBOX_USER",
        "MLGW_LOCAL_BWRAP",
        "MLGW_LOCAL_JOB_AWS_ACCESS_KEY_ID",
        "MLGW_LOCAL_JOB_AWS_SECRET_ACCESS_KEY",
        "MLGW_LOCAL_JOB_AWS_PROFILE",
        "MLGW_LOCAL_JOB_AWS_CONFIG_FILE",
        "MLGW_CORS_ORIGINS",
        "MLGW_IDEMPOTENCY_TTL_HOURS",
        "MLGW_AUTH_CACHE_SECONDS",
        "MLGW_JOB_CACHE_BYTES",
        "MLGW_RATE_LIMIT",
        "MLGW_RATE_BURST",
        "MLGW_AUTH_FAILURES_PER_MINUTE",
        "MLGW_GPU_JOB_QUEUE",
        "MLGW_CPU_JOB_QUEUE",
        "MLGW_GPU_JOB_DEFINITION",
        "MLGW_CPU_JOB_DEFINITION",
        "MLGW_TRIGGER_TOPIC_ARN",
        "MLGW_DISPATCH_WORKERS",
        "MLGW_BATCH_SUBMIT_RATE",
        "MLGW_DISPATCH_MAX_ATTEMPTS",
        "MLGW_DISPATCH_POLL_MS",
        "MLGW_DISPATCH_RETRY_BASE_MS",
        "MLGW_DISPATCH_LEASE",
        "MLGW_RECONCILE_INTERVAL",
        "MLGW_RECONCILE_AFTER",
        "MLGW_BATCH_LOG_GROUP",
        "MLGW_AWS_TIMEOUT_MS",
        "MLGW_CALLBACK_SECRET",
        "MLGW_CALLBACK_HEADER",
        "MLGW_SMTP_URL",
        "MLGW_SMTP_TLS",
        "MLGW_SMTP_FROM",
        "MLGW_SMTP_USER",
        "MLGW_SMTP_PASSWORD",
        "MLGW_SMTP_CA_FILE",
        "MLGW_NOTIFY_EMAILS",
        "MLGW_NOTIFY_STATUSES",
        "MLGW_NOTIFY_TOPIC_ARN",
        "MLGW_WEBHOOK_SECRET",
        "MLGW_JOB_ENV_ALLOW",
        "MLGW_WEBHOOK_ALLOW_HTTP",
        "MLGW_WEBHOOK_ALLOW_CIDRS",
        "MLGW_NOTIFY_WORKERS",
        "MLGW_NOTIFY_MAX_ATTEMPTS",
        "MLGW_NOTIFY_RETRY_BASE_MS",
        "MLGW_SNS_TOPIC_ARNS",
        "MLGW_SNS_CERT_CA_FILE",
        "MLGW_SNS_CERT_HOST_SUFFIX",
        "MLGW_CACHE_DIR",
        "MLGW_CACHE_MAX_BYTES",
        "MLGW_CACHE_SCAN_INTERVAL",
        "MLGW_CACHE_SCAN_TIMEOUT",
        "MLGW_CACHE_SCAN_MAX_FILES",
        "MLGW_CACHE_SCRIPT_KEY",
        "MLGW_CACHE_DISPATCH",
        "MLGW_CONNECTIONS_PER_ADDRESS",
        "MLGW_REQUEST_DEADLINE",
        "MLGW_DB_STATEMENT_TIMEOUT_MS",
        "MLGW_DB_WORKER_POOL_SIZE",
        "MLGW_DB_WORKER_STATEMENT_TIMEOUT_MS",
    };
    struct gw_buf md;
    gw_buf_init(&md, 64 * 1024);
    cr_assert_eq(gw_config_markdown(&md), GW_OK);
    for (size_t i = 0; i < GW_ARRAY_LEN(names); i++) {
        char cell[64];
        snprintf(cell, sizeof(cell), "| `%s` |", names[i]);
        const char *hit = strstr(md.data, cell);
        cr_assert_not_null(hit, "%s missing from:\n%s", names[i], md.data);
        cr_assert_null(strstr(hit + 1, cell), "%s listed twice", names[i]);
    }
    /* Header, separator, one row per variable. */
    cr_assert_eq(count_lines(md.data), 2 + GW_ARRAY_LEN(names));
    cr_assert_eq(strncmp(md.data, "| Variable | Default | Range | Meaning |\n", 41), 0);
    gw_buf_dispose(&md);
}

Test(server_config, markdown_marks_required_computed_and_secret_settings)
{
    struct gw_buf md;
    gw_buf_init(&md, 64 * 1024);
    cr_assert_eq(gw_config_markdown(&md), GW_OK);
    const char *db = strstr(md.data, "| `DATABASE_URL` |");
    cr_assert_not_null(db);
    char row[512];
    snprintf(row, sizeof(row), "%.*s", (int)strcspn(db, "\n"), db);
    cr_assert_not_null(strstr(row, "| required |"), "row: %s", row);
    cr_assert_not_null(strstr(row, "(secret) |"), "row: %s", row);
    const char *threads = strstr(md.data, "| `MLGW_THREADS` | computed |");
    cr_assert_not_null(threads, "%s", md.data);
    cr_assert_not_null(strstr(md.data, "| `MLGW_DB_POOL_SIZE` | `10` |"));
    gw_buf_dispose(&md);
}

Test(server_config, markdown_into_a_small_buffer_is_too_big)
{
    struct gw_buf md;
    gw_buf_init(&md, 100);
    cr_assert_eq(gw_config_markdown(&md), GW_ETOOBIG);
    gw_buf_dispose(&md);
}

Test(server_config, redact_url_never_leaks_passwords_in_forms_libpq_accepts)
{
    /* Spaces around '=', '&' inside a key/value value, backslash escapes. */
    const char *cases[][2] = {
        {"host=x password = secret user=u", "secret"},
        {"host=x password=ab&cdef user=u", "ab&cdef"},
        {"host=x password=a\\ bcd user=u", "bcd"},
        {"host=db.a password=a user=u", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = gw_config_redact_url(cases[i][0]);
        cr_assert(out != NULL);
        cr_assert(strstr(out, "password=***") != NULL, "%s -> %s", cases[i][0], out);
        if (cases[i][1] != NULL)
            cr_assert(strstr(out, cases[i][1]) == NULL, "%s leaks in %s", cases[i][1], out);
        free(out);
    }
}

/* ---- job settings ------------------------------------------------------- */

Test(server_config, job_defaults_are_the_seeds)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}), 0, "%s", errtext());
    cr_assert_eq(cfg.dispatch, GW_DISPATCH_LOCAL);
    cr_assert_eq(cfg.gpu_job_vcpus, 4);
    cr_assert_eq(cfg.gpu_job_memory, 16384);
    cr_assert_eq(cfg.gpu_job_gpus, 1);
    cr_assert_eq(cfg.cpu_job_vcpus, 2);
    cr_assert_eq(cfg.cpu_job_memory, 4096);
    cr_assert_eq(cfg.max_vcpus, 256);
    cr_assert_eq(cfg.max_memory, 2097152);
    cr_assert_eq(cfg.max_gpus, 8);
    cr_assert_null(cfg.output_bucket);
    cr_assert_null(cfg.cors_origins);
    cr_assert(cfg.local_root != NULL && cfg.local_root[0] == '/', "absolute: %s", cfg.local_root);
    cr_assert(strstr(cfg.local_root, "/var/local") != NULL);
}

Test(server_config, the_cache_is_below_the_local_root_unless_set)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_LOCAL_ROOT", "/srv/mlgw"}), 0,
                 "%s", errtext());
    cr_assert_str_eq(cfg.cache_dir, "/srv/mlgw/cache");
    cr_assert_eq(cfg.cache_max_bytes, 0);
    cr_assert_eq(cfg.cache_scan_interval_s, 300);
    cr_assert_eq(cfg.cache_dispatch, 0);
    gw_config_dispose(&cfg);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_CACHE_DIR", "/opt/models"},
                      {"MLGW_CACHE_DISPATCH", "batch"}, {"MLGW_CACHE_MAX_BYTES", "1000000"}),
                 0, "%s", errtext());
    cr_assert_str_eq(cfg.cache_dir, "/opt/models");
    cr_assert_eq(cfg.cache_dispatch, 1 + GW_DISPATCH_BATCH);
    cr_assert_eq(cfg.cache_max_bytes, 1000000);
    gw_config_dispose(&cfg);
    cr_assert_neq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_CACHE_DISPATCH", "efs"}), 0);
    cr_assert(strstr(errtext(), "MLGW_CACHE_DISPATCH") != NULL, "%s", errtext());
}

Test(server_config, dispatch_is_one_of_local_batch_sns)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_DISPATCH", "batch"}), 0);
    cr_assert_eq(cfg.dispatch, GW_DISPATCH_BATCH);
    gw_config_dispose(&cfg);
    gw_buf_reset(&errors);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_DISPATCH", "lambda"}), 1);
    cr_assert_not_null(strstr(errtext(), "MLGW_DISPATCH"));
}

Test(server_config, bucket_names_follow_s3_rules)
{
    const char *good[] = {"ml-outputs", "a.b.c", "abc", "x0-9"};
    const char *bad[] = {"ab", "Upper", "-start", "end-", "two..dots", "under_score"};
    for (size_t i = 0; i < GW_ARRAY_LEN(good); i++) {
        cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"ML_OUTPUT_BUCKET", good[i]}),
                     0, "%s: %s", good[i], errtext());
        cr_assert_str_eq(cfg.output_bucket, good[i]);
        gw_config_dispose(&cfg);
    }
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        gw_buf_reset(&errors);
        cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"ML_INPUT_BUCKET", bad[i]}), 1,
                     "%s accepted", bad[i]);
        cr_assert_not_null(strstr(errtext(), "ML_INPUT_BUCKET"));
        gw_config_dispose(&cfg);
    }
}

Test(server_config, a_default_above_its_limit_is_an_error)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_MAX_VCPUS", "2"}), 1);
    cr_assert_not_null(strstr(errtext(), "MLGW_GPU_JOB_VCPUS: 4 is above MLGW_MAX_VCPUS (2)"), "%s",
                       errtext());
}

Test(server_config, cors_origins_are_matched_exactly_or_by_star)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL},
                      {"MLGW_CORS_ORIGINS", "https://app.example.com,http://localhost:3000"}),
                 0, "%s", errtext());
    cr_assert(gw_config_origin_allowed(&cfg, "https://app.example.com"));
    cr_assert(gw_config_origin_allowed(&cfg, "http://localhost:3000"));
    cr_assert_not(gw_config_origin_allowed(&cfg, "https://app.example.com.evil.test"));
    cr_assert_not(gw_config_origin_allowed(&cfg, "https://app.example"));
    cr_assert_not(gw_config_origin_allowed(&cfg, NULL));
    gw_config_dispose(&cfg);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_CORS_ORIGINS", "*"}), 0);
    cr_assert(gw_config_origin_allowed(&cfg, "https://anything.test"));
    gw_config_dispose(&cfg);
    gw_buf_reset(&errors);
    cr_assert_eq(
        LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_CORS_ORIGINS", "https://a.test/path"}),
        1);
    gw_config_dispose(&cfg);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_CORS_ORIGINS", "nope"}), 1);
}

Test(server_config, cors_origins_unset_allows_none)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}), 0);
    cr_assert_not(gw_config_origin_allowed(&cfg, "https://app.example.com"));
}

Test(server_config, job_env_allow_list_matches_names_and_prefixes)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}), 0);
    cr_assert(gw_config_job_env_allowed(&cfg, "ANYTHING"), "unset: any name");
    gw_config_dispose(&cfg);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL},
                      {"MLGW_JOB_ENV_ALLOW", "LEARNING_RATE,HF_*,EPOCHS"}),
                 0, "%s", errtext());
    cr_assert(gw_config_job_env_allowed(&cfg, "LEARNING_RATE"));
    cr_assert(gw_config_job_env_allowed(&cfg, "EPOCHS"));
    cr_assert(gw_config_job_env_allowed(&cfg, "HF_"));
    cr_assert(gw_config_job_env_allowed(&cfg, "HF_HUB_OFFLINE"));
    cr_assert_not(gw_config_job_env_allowed(&cfg, "LEARNING_RATE_2"), "exact names are exact");
    cr_assert_not(gw_config_job_env_allowed(&cfg, "LEARNING"));
    cr_assert_not(gw_config_job_env_allowed(&cfg, "HF"));
    cr_assert_not(gw_config_job_env_allowed(&cfg, "OTHER"));
}

Test(server_config, job_env_allow_list_entries_must_be_names_or_prefixes)
{
    const char *bad[] = {"*", "lower", "A,,B", "A,", "A*B", "1A", "A**", "A B"};
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        gw_buf_reset(&errors);
        cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_JOB_ENV_ALLOW", bad[i]}),
                     1, "%s accepted", bad[i]);
        cr_assert_not_null(strstr(errtext(), "MLGW_JOB_ENV_ALLOW"), "%s", errtext());
        gw_config_dispose(&cfg);
    }
}

Test(server_config, webhook_settings_default_to_https_and_public_addresses_only)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}), 0);
    cr_assert_eq(cfg.webhook_allow_http, 0);
    cr_assert_null(cfg.webhook_allow_cidrs);
    gw_config_dispose(&cfg);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_WEBHOOK_ALLOW_HTTP", "on"},
                      {"MLGW_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8, ::1,10.1.0.0/16,fd00::/8"}),
                 0, "%s", errtext());
    cr_assert_eq(cfg.webhook_allow_http, 1);
    cr_assert_str_eq(cfg.webhook_allow_cidrs, "127.0.0.0/8, ::1,10.1.0.0/16,fd00::/8");
}

Test(server_config, webhook_allow_cidrs_must_be_addresses_or_ranges)
{
    const char *bad[] = {"10.0.0.0/33", "::/129",          "localhost", "10.0.0.0/",  "10.0.0.0/-1",
                         "10.0.0.0/8,", "10.0.0.0/8,,::1", "1.2.3",     "10.0.0.0/8x"};
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        gw_buf_reset(&errors);
        cr_assert_eq(
            LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_WEBHOOK_ALLOW_CIDRS", bad[i]}), 1,
            "%s accepted", bad[i]);
        cr_assert_not_null(strstr(errtext(), "MLGW_WEBHOOK_ALLOW_CIDRS"), "%s", errtext());
        gw_config_dispose(&cfg);
    }
    gw_buf_reset(&errors);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_WEBHOOK_ALLOW_HTTP", "yes"}),
                 1);
}

Test(server_config, the_job_sandbox_is_on_by_default_and_local_job_keys_come_in_pairs)
{
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}), 0, "%s", errtext());
    cr_assert_eq(cfg.local_sandbox, 1);
    cr_assert_str_eq(cfg.local_sandbox_user, "mlgw-job");
    cr_assert_str_eq(cfg.local_bwrap, "bwrap");
    cr_assert_null(cfg.local_job_aws_key_id);
    gw_config_dispose(&cfg);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL}, {"MLGW_LOCAL_SANDBOX", "off"}), 0);
    cr_assert_eq(cfg.local_sandbox, 0);
    gw_config_dispose(&cfg);
    gw_buf_dispose(&errors);
    gw_buf_init(&errors, 16 * 1024);
    cr_assert_eq(LOAD(&cfg, &errors, {"DATABASE_URL", DB_URL},
                      {"MLGW_LOCAL_JOB_AWS_ACCESS_KEY_ID", "AKIAJOBS"}),
                 1);
    cr_assert(strstr(errtext(), "MLGW_LOCAL_JOB_AWS_ACCESS_KEY_ID: set it and") != NULL, "%s",
              errtext());
    gw_config_dispose(&cfg);
    char *described = NULL;
    cr_assert_eq(LOAD(&cfg, NULL, {"DATABASE_URL", DB_URL},
                      {"MLGW_LOCAL_JOB_AWS_ACCESS_KEY_ID", "AKIAJOBS"},
                      {"MLGW_LOCAL_JOB_AWS_SECRET_ACCESS_KEY", "job-secret-0042"}),
                 0);
    described = gw_config_describe(&cfg);
    cr_assert(strstr(described, "job-secret-0042") == NULL, "%s", described);
    free(described);
    gw_config_dispose(&cfg);
}
