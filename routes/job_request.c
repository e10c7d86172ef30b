/*
 * job_request.c — the rules of a job submission (API.md, "POST /jobs").
 *
 * Each field has one checker that reports into the errors array under the
 * field's name as the client wrote it ("vcpus", "data.vcpus", "env.AWS_X",
 * "args[2]"), so a client learns every problem in one round trip.
 */
#include "routes/job_request.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "common/parse.h"
#include "common/utf8.h"
#include "routes/http.h"

#include "common/poison.h"

const char *const rt_reserved_env[] = {
    "ML_INPUT_BUCKET",
    "ML_OUTPUT_BUCKET",
    "OUTPUT_PREFIX",
    "COMPUTE_TYPE",
    "SCRIPT_KEY",
    "JOB_ID",
    "TRIGGER_USER",
    "TRIGGER_PROJECT",
    "TRIGGER_EXPERIMENT",
    "OPERATION",
    "ML_OUTPUT_DIR",
    "AWS_DEFAULT_REGION",
    /* set for the steps of a pipeline run */
    "ML_INPUT_DIR",
    "PARENT_OUTPUT_URIS",
    "ARRAY_INDEX",
    "ARRAY_SIZE",
    NULL,
};

/* Names that change how a loader, interpreter or shell starts, or what a
 * program trusts (API.md, "Jobs are untrusted code"): "NAME" exactly,
 * "PREFIX*" or "*SUFFIX". Locale names (LANG, LC_*) stay allowed. */
const char *const rt_refused_env[] = {
    "LD_*",
    "DYLD_*",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "MALLOC_*",
    "GLIBC_TUNABLES",
    "PATH",
    "HOME",
    "SHELL",
    "ENV",
    "BASH_ENV",
    "BASH_FUNC_*",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "TMPDIR",
    "BROWSER",
    "PAGER",
    "EDITOR",
    "VISUAL",
    "PYTHON*",
    "PERL5*",
    "PERLLIB",
    "RUBY*",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "_JAVA_OPTIONS",
    "CLASSPATH",
    "GIT_*",
    "*_PROXY",
    "SSL_CERT_*",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_*",
    NULL,
};

enum {
    MAX_ARGS = 100,
    MAX_ENV = 100,
    MAX_VALUE_CHARS = 4096,
    MAX_META_KEYS = 32,
    MAX_META_VALUE = 256,
    MAX_EMAILS = 20,
    MAX_WEBHOOKS = 10,
    MAX_URL = 2048,
    MIN_TIMEOUT = 60,
    MAX_TIMEOUT = 14 * 24 * 3600,
};

struct ctx {
    json_t *errors;
    const char *prefix; /* "" or "data." */
    int count;
};

static void fail(struct ctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Cuts a string that was truncated inside a UTF-8 sequence back to the
 * character before it (field names come from the client and may be long). */
static void utf8_trim(char *s)
{
    size_t n = strlen(s);
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
        i--; /* continuation bytes */
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (n - (i - 1) < need)
        s[i - 1] = '\0';
}

static void fail(struct ctx *c, const char *field, const char *fmt, ...)
{
    char name[320], msg[256];
    gw_fmt(name, sizeof(name), "%s%s", c->prefix, field);
    utf8_trim(name);
    va_list ap;
    va_start(ap, fmt);
    gw_vfmt(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_trim(msg);
    c->count++;
    if (json_array_size(c->errors) >= RT_MAX_ERRORS)
        return; /* counted; rt_errors_cap says how many more there were */
    json_t *e = json_pack("{s:s,s:s}", "field", name, "message", msg);
    if (e == NULL) /* never drop a problem, even one we cannot name */
        e = json_pack("{s:s,s:s}", "field", "(unprintable)", "message", "is invalid");
    json_array_append_new(c->errors, e);
}

static int is_name_char(char ch, int first)
{
    return (ch >= 'A' && ch <= 'Z') || ch == '_' || (!first && ch >= '0' && ch <= '9');
}

/* A JSON string holding no NUL (jansson allows \u0000 inside strings). */
static int string_clean(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* A string's length in characters, as JSON Schema's maxLength counts. */
static size_t chars(const json_t *v)
{
    return gw_utf8_chars(json_string_value(v), json_string_length(v));
}

static void check_script_key(struct ctx *c, json_t *v, struct rt_job_request *out)
{
    if (v == NULL || json_is_null(v)) {
        fail(c, "script_key", "is required");
        return;
    }
    if (!string_clean(v)) {
        fail(c, "script_key", "must be a string");
        return;
    }
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    if (n < 1 || n > 1024) {
        fail(c, "script_key", "must be 1 to 1024 characters");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '/' || ch == '-')) {
            fail(c, "script_key", "may contain only letters, digits and . _ / -");
            return;
        }
    }
    if (s[0] == '/' || s[n - 1] == '/') {
        fail(c, "script_key", "must be a relative object key (no leading or trailing /)");
        return;
    }
    if (strstr(s, "//") != NULL) {
        fail(c, "script_key", "must not contain an empty segment (//)");
        return;
    }
    /* No "." or ".." segment anywhere. */
    for (const char *seg = s; *seg != '\0';) {
        size_t len = strcspn(seg, "/");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) {
            fail(c, "script_key", "must not contain . or .. segments");
            return;
        }
        seg += len;
        if (*seg == '/')
            seg++;
    }
    out->script_key = s;
}

/* An optional integer in [min, max]; *out keeps its default when absent. */
static void check_int(struct ctx *c, const char *field, json_t *v, long long min, long long max,
                      long long *out)
{
    if (v == NULL || json_is_null(v))
        return;
    long long n = 0;
    if (!gw_json_whole(v, &n)) {
        fail(c, field, "must be an integer");
        return;
    }
    if (n < min || n > max) {
        fail(c, field, "must be between %lld and %lld", min, max);
        return;
    }
    *out = n;
}

static const char *check_enum(struct ctx *c, const char *field, json_t *v,
                              const char *const *choices, const char *def)
{
    if (v == NULL || json_is_null(v))
        return def;
    if (json_is_string(v))
        for (size_t i = 0; choices[i] != NULL; i++)
            if (strcmp(json_string_value(v), choices[i]) == 0)
                return choices[i];
    char list[128] = "";
    size_t off = 0;
    for (size_t i = 0; choices[i] != NULL; i++) {
        int n = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", choices[i]);
        if (n < 0 || (size_t)n >= sizeof(list) - off)
            break;
        off += (size_t)n;
    }
    fail(c, field, "must be one of %s", list);
    return def;
}

static char *dump(json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void check_args(struct ctx *c, json_t *v, struct rt_job_request *out)
{
    json_t *args = json_array();
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_array(v)) {
            fail(c, "args", "must be an array of strings");
        } else if (json_array_size(v) > MAX_ARGS) {
            fail(c, "args", "may hold at most %d items", MAX_ARGS);
        } else {
            size_t i;
            json_t *a;
            json_array_foreach(v, i, a)
            {
                char field[32];
                gw_fmt(field, sizeof(field), "args[%zu]", i);
                if (!string_clean(a))
                    fail(c, field, "must be a string without NUL characters");
                else if (chars(a) > MAX_VALUE_CHARS)
                    fail(c, field, "must be at most %d characters", MAX_VALUE_CHARS);
                else
                    json_array_append(args, a);
            }
        }
    }
    out->args_json = dump(args);
    json_decref(args);
}

static int reserved(const char *name)
{
    if (strncmp(name, "AWS_", 4) == 0)
        return 1;
    for (size_t i = 0; rt_reserved_env[i] != NULL; i++)
        if (strcmp(name, rt_reserved_env[i]) == 0)
            return 1;
    return 0;
}

int rt_env_refused(const char *name)
{
    size_t n = strlen(name);
    if (strstr(name, "%%") != NULL) /* bash's exported functions: BASH_FUNC_f%% */
        return 1;
    for (size_t i = 0; rt_refused_env[i] != NULL; i++) {
        const char *p = rt_refused_env[i];
        size_t len = strlen(p);
        if (p[0] == '*') {
            if (n >= len - 1 && strcmp(name + n - (len - 1), p + 1) == 0)
                return 1;
        } else if (p[len - 1] == '*') {
            if (strncmp(name, p, len - 1) == 0)
                return 1;
        } else if (strcmp(name, p) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The first problem of one env entry, or NULL. */
static const char *env_problem(const struct gw_config *cfg, const char *name, const json_t *val)
{
    int ok = name[0] != '\0' && strlen(name) <= 255;
    for (size_t i = 0; ok && name[i] != '\0'; i++)
        ok = is_name_char(name[i], i == 0);
    if (!ok)
        return "name must match [A-Z_][A-Z0-9_]*";
    if (reserved(name))
        return "is reserved for the job's environment contract";
    if (rt_env_refused(name))
        return "changes how a program starts; not allowed";
    if (!gw_config_job_env_allowed(cfg, name))
        return "is not a name this gateway lets jobs set";
    if (!string_clean(val))
        return "must be a string without NUL characters";
    if (chars(val) > MAX_VALUE_CHARS)
        return "must be at most 4096 characters";
    return NULL;
}

static void check_env(struct ctx *c, json_t *v, const struct gw_config *cfg,
                      struct rt_job_request *out)
{
    json_t *env = json_object();
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)) {
            fail(c, "env", "must be an object of string values");
        } else if (json_object_size(v) > MAX_ENV) {
            fail(c, "env", "may hold at most %d variables", MAX_ENV);
        } else {
            const char *name;
            json_t *val;
            json_object_foreach(v, name, val)
            {
                char field[300];
                gw_fmt(field, sizeof(field), "env.%s", name);
                const char *problem = env_problem(cfg, name, val);
                if (problem != NULL)
                    fail(c, field, "%s", problem);
                else
                    json_object_set(env, name, val);
            }
        }
    }
    out->env_json = dump(env);
    json_decref(env);
}

static void check_operation(struct ctx *c, json_t *v, struct rt_job_request *out)
{
    if (v == NULL || json_is_null(v))
        return;
    const char *s = string_clean(v) ? json_string_value(v) : NULL;
    size_t n = s ? strlen(s) : 0;
    int ok = s != NULL && n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = s[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
             ch == '.' || ch == '_' || ch == '-';
    }
    if (!ok) {
        fail(c, "operation", "must be 1 to 64 of letters, digits and . _ -");
        return;
    }
    out->operation = s;
}

static void check_metadata(struct ctx *c, const char *field, json_t *v, struct rt_job_request *out)
{
    json_t *meta = json_object();
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_object(v)) {
            fail(c, field, "must be an object of string values");
        } else if (json_object_size(v) > MAX_META_KEYS) {
            fail(c, field, "may hold at most %d keys", MAX_META_KEYS);
        } else {
            const char *key;
            json_t *val;
            json_object_foreach(v, key, val)
            {
                char name[320];
                gw_fmt(name, sizeof(name), "%s.%s", field, key);
                size_t klen = strlen(key);
                int ok = klen >= 1 && klen <= 64;
                for (size_t i = 0; ok && i < klen; i++) {
                    char ch = key[i];
                    ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                         (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
                }
                if (!ok)
                    fail(c, name, "key must be 1 to 64 of letters, digits and _ - .");
                else if (json_is_null(val))
                    continue;
                else if (!string_clean(val))
                    fail(c, name, "must be a string");
                else if (chars(val) > MAX_META_VALUE)
                    fail(c, name, "must be at most %d characters", MAX_META_VALUE);
                else
                    json_object_set(meta, key, val);
            }
        }
    }
    out->metadata_json = dump(meta);
    json_decref(meta);
}

/* local@domain, with a dotted domain of letters, digits and hyphens. */
static int email_ok(const char *s, const struct gw_config *cfg)
{
    (void)cfg;
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n > 254 || at == NULL || at == s || strchr(at + 1, '@') != NULL || (size_t)(at - s) > 64)
        return 0;
    for (const char *p = s; p < at; p++)
        if (*p <= ' ' || *p >= 127 || strchr("<>()[],;:\\\"", *p) != NULL)
            return 0;
    const char *d = at + 1;
    if (strchr(d, '.') == NULL || d[strlen(d) - 1] == '.' || at[-1] == '.' || s[0] == '.' ||
        strstr(s, "..") != NULL)
        return 0;
    for (const char *label = d; *label != '\0';) {
        size_t len = strcspn(label, ".");
        if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
            return 0;
        for (size_t i = 0; i < len; i++) {
            char ch = label[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-'))
                return 0;
        }
        label += len;
        if (*label == '.')
            label++;
    }
    return 1;
}

/* https://host[:port][/path...]; http:// only to a loopback host and only
 * where the operator allows it (MLGW_WEBHOOK_ALLOW_HTTP, for tests). No
 * whitespace, no userinfo. Where the host's addresses may lead is checked
 * when the webhook is sent (jobs/webhook.c), after DNS. */
static int webhook_ok(const char *s, const struct gw_config *cfg)
{
    size_t n = strlen(s);
    if (n > MAX_URL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 127)
            return 0;
    const char *host;
    int tls;
    if (strncmp(s, "https://", 8) == 0) {
        host = s + 8;
        tls = 1;
    } else if (strncmp(s, "http://", 7) == 0) {
        host = s + 7;
        tls = 0;
    } else {
        return 0;
    }
    size_t hlen = strcspn(host, "/?#");
    if (hlen == 0 || memchr(host, '@', hlen) != NULL)
        return 0;
    /* An explicit port must be 1-65535 (after "]" for an IPv6 literal). */
    const char *close = host[0] == '[' ? memchr(host, ']', hlen) : NULL;
    if (host[0] == '[' && close == NULL)
        return 0;
    const char *colon =
        memchr(close ? close : host, ':', hlen - (size_t)((close ? close : host) - host));
    if (colon != NULL) {
        char port[8];
        size_t plen = hlen - (size_t)(colon + 1 - host);
        long long p;
        if (plen == 0 || plen >= sizeof(port))
            return 0;
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
        if (gw_parse_ll(&p, port, 1, 65535) != GW_OK)
            return 0;
    }
    if (tls)
        return 1;
    if (!cfg->webhook_allow_http)
        return 0;
    static const char *const loopback[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < GW_ARRAY_LEN(loopback); i++) {
        size_t l = strlen(loopback[i]);
        if (hlen >= l && strncmp(host, loopback[i], l) == 0 && (hlen == l || host[l] == ':'))
            return 1;
    }
    return 0;
}

static json_t *check_list(struct ctx *c, json_t *v, const char *field, size_t max,
                          int (*ok)(const char *, const struct gw_config *),
                          const struct gw_config *cfg, const char *what)
{
    json_t *list = json_array();
    if (v == NULL || json_is_null(v))
        return list;
    if (!json_is_array(v)) {
        fail(c, field, "must be an array of %s", what);
        return list;
    }
    if (json_array_size(v) > max) {
        fail(c, field, "may hold at most %zu items", max);
        return list;
    }
    size_t i;
    json_t *a;
    json_array_foreach(v, i, a)
    {
        char name[64];
        gw_fmt(name, sizeof(name), "%s[%zu]", field, i);
        if (!string_clean(a) || !ok(json_string_value(a), cfg))
            fail(c, name, "must be %s", what);
        else
            json_array_append(list, a);
    }
    return list;
}

static void check_notify(struct ctx *c, json_t *v, const struct gw_config *cfg,
                         struct rt_job_request *out)
{
    json_t *emails = NULL, *hooks = NULL;
    if (v != NULL && !json_is_null(v) && !json_is_object(v)) {
        fail(c, "notify", "must be an object with emails and webhooks");
    } else if (v != NULL && json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val)
        {
            if (strcmp(key, "emails") != 0 && strcmp(key, "webhooks") != 0) {
                char name[300];
                gw_fmt(name, sizeof(name), "notify.%s", key);
                fail(c, name, "is not a known field (emails, webhooks)");
            }
        }
        emails = check_list(c, json_object_get(v, "emails"), "notify.emails", MAX_EMAILS, email_ok,
                            cfg, "an email address");
        hooks = check_list(c, json_object_get(v, "webhooks"), "notify.webhooks", MAX_WEBHOOKS,
                           webhook_ok, cfg, "an https:// URL without user info");
    }
    json_t *n = json_pack("{s:o,s:o}", "emails", emails ? emails : json_array(), "webhooks",
                          hooks ? hooks : json_array());
    out->notify_json = dump(n);
    json_decref(n);
}

static const char *const job_fields[] = {
    "script_key",      "compute_type", "vcpus",     "memory",   "gpus",   "args",     "env",
    "timeout_seconds", "max_attempts", "operation", "metadata", "notify", "dispatch", NULL,
};

static int known(const char *key, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(key, list[i]) == 0)
            return 1;
    return 0;
}

/* The job fields of obj (the body, or the envelope's data). */
static void check_fields(struct ctx *c, json_t *obj, json_t *metadata, const char *meta_field,
                         const struct gw_config *cfg, struct rt_job_request *out)
{
    static const char *const computes[] = {"gpu", "cpu", NULL};
    static const char *const dispatches[] = {"local", "batch", "sns", NULL};

    check_script_key(c, json_object_get(obj, "script_key"), out);
    out->compute_type =
        check_enum(c, "compute_type", json_object_get(obj, "compute_type"), computes, "gpu");
    int gpu = strcmp(out->compute_type, "gpu") == 0;
    out->vcpus = gpu ? cfg->gpu_job_vcpus : cfg->cpu_job_vcpus;
    out->memory = gpu ? cfg->gpu_job_memory : cfg->cpu_job_memory;
    out->gpus = gpu ? cfg->gpu_job_gpus : 0;
    check_int(c, "vcpus", json_object_get(obj, "vcpus"), 1, cfg->max_vcpus, &out->vcpus);
    check_int(c, "memory", json_object_get(obj, "memory"), 1, cfg->max_memory, &out->memory);
    json_t *gv = json_object_get(obj, "gpus");
    check_int(c, "gpus", gv, 0, cfg->max_gpus, &out->gpus);
    if (!gpu && out->gpus > 0)
        fail(c, "gpus", "must be 0 for a cpu job");
    check_args(c, json_object_get(obj, "args"), out);
    check_env(c, json_object_get(obj, "env"), cfg, out);
    out->timeout_seconds = -1;
    check_int(c, "timeout_seconds", json_object_get(obj, "timeout_seconds"), MIN_TIMEOUT,
              MAX_TIMEOUT, &out->timeout_seconds);
    out->max_attempts = 1;
    check_int(c, "max_attempts", json_object_get(obj, "max_attempts"), 1, 10, &out->max_attempts);
    check_operation(c, json_object_get(obj, "operation"), out);
    check_notify(c, json_object_get(obj, "notify"), cfg, out);
    out->dispatch = check_enum(c, "dispatch", json_object_get(obj, "dispatch"), dispatches,
                               gw_dispatch_names[cfg->dispatch]);
    /* metadata reports under its own name: "metadata" in both shapes */
    const char *saved = c->prefix;
    c->prefix = "";
    check_metadata(c, meta_field, metadata, out);
    c->prefix = saved;
}

/* rt_job_request_parse without the cap on the errors list. */
static int parse_body(struct ctx *c, json_t *body, const struct gw_config *cfg,
                      struct rt_job_request *out)
{
    const char *key;
    json_t *val;
    json_t *trigger = json_object_get(body, "trigger_type");

    if (trigger == NULL) {
        json_object_foreach(body, key, val)
        {
            if (!known(key, job_fields))
                fail(c, key, "is not a known field");
        }
        check_fields(c, body, json_object_get(body, "metadata"), "metadata", cfg, out);
        return c->count;
    }

    /* The seed's SNS trigger message: {trigger_type, data: {...}, metadata: {...}}. */
    static const char *const envelope_fields[] = {"trigger_type", "data", "metadata", NULL};
    json_object_foreach(body, key, val)
    {
        if (!known(key, envelope_fields))
            fail(c, key,
                 "is not a known field of a trigger message (trigger_type, data, "
                 "metadata)");
    }
    if (!json_is_string(trigger) || strcmp(json_string_value(trigger), "batch_job") != 0)
        fail(c, "trigger_type", "must be \"batch_job\"");
    json_t *data = json_object_get(body, "data");
    if (!json_is_object(data)) {
        fail(c, "data", "must be an object holding the job's fields");
        data = NULL;
    }
    json_t *empty = json_object();
    c->prefix = "data.";
    if (data != NULL)
        json_object_foreach(data, key, val)
        {
            if (!known(key, job_fields) || strcmp(key, "metadata") == 0)
                fail(c, key, "is not a known field");
        }
    check_fields(c, data ? data : empty, json_object_get(body, "metadata"), "metadata", cfg, out);
    json_decref(empty);
    return c->count;
}

int rt_job_request_parse(struct rt_job_request *out, json_t *body, const struct gw_config *cfg,
                         json_t *errors)
{
    memset(out, 0, sizeof(*out));
    size_t before = json_array_size(errors);
    struct ctx c = {errors, "", 0};
    int count = parse_body(&c, body, cfg, out);
    rt_errors_cap(errors, before + (size_t)count);
    return count;
}

void rt_job_request_dispose(struct rt_job_request *req)
{
    if (req == NULL)
        return;
    free(req->args_json);
    free(req->env_json);
    free(req->metadata_json);
    free(req->notify_json);
    req->args_json = req->env_json = req->metadata_json = req->notify_json = NULL;
}
