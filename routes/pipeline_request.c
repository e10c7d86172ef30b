/*
 * pipeline_request.c — pipeline definitions and run requests checked, and
 * runs planned (pipeline_request.h). The job fields of every step go through
 * rt_job_request_parse, so a step is refused exactly as POST /jobs would
 * refuse it; this file adds the graph: names, depends_on, cycles, fan-out.
 */
#include "routes/pipeline_request.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "jobs/pipeline.h"
#include "routes/http.h"
#include "routes/job_request.h"

#include "common/poison.h"

enum { MAX_STEPS = 50, MAX_DESCRIPTION = 1024, MAX_VALUE_BYTES = 4096 };

/* The fields of POST /jobs that a step or the defaults may hold. */
static const char *const job_fields[] = {
    "script_key",      "compute_type", "vcpus",     "memory",   "gpus",   "args",     "env",
    "timeout_seconds", "max_attempts", "operation", "metadata", "notify", "dispatch", NULL,
};
static const char *const graph_fields[] = {"name", "depends_on", "array_size", "matrix", NULL};
static const char *const def_fields[] = {"name",  "description", "defaults",
                                         "steps", "notify",      NULL};
static const char *const run_fields[] = {"version", "env",      "args", "metadata",
                                         "notify",  "dispatch", NULL};

static int known(const char *key, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(key, list[i]) == 0)
            return 1;
    return 0;
}

static int count_error(json_t *errors, const char *field, const char *message)
{
    json_t *e = json_pack("{s:s,s:s}", "field", field, "message", message);
    if (e != NULL)
        json_array_append_new(errors, e);
    return 1;
}

int rt_pipeline_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (i > 0 && ch == '-');
        if (!ok)
            return 0;
    }
    return 1;
}

/*
 * Runs the job validator on job and appends its problems to errors with
 * their field renamed: a field starting with from gets to in its place, any
 * other gets prefix in front. jr (may be NULL) receives the parsed request
 * when there was no problem. Returns the number of problems.
 */
static int job_check(struct rt_job_request *jr, json_t *job, const char *prefix, const char *from,
                     const char *to, const struct gw_config *cfg, json_t *errors)
{
    struct rt_job_request tmp_jr;
    json_t *tmp = json_array();
    if (tmp == NULL)
        return count_error(errors, prefix, "could not be checked (out of memory)");
    int n = rt_job_request_parse(&tmp_jr, job, cfg, tmp);
    size_t i;
    json_t *e;
    json_array_foreach(tmp, i, e)
    {
        const char *f = json_string_value(json_object_get(e, "field"));
        char field[400];
        size_t flen = from ? strlen(from) : 0;
        if (f != NULL && from != NULL && strncmp(f, from, flen) == 0)
            gw_fmt(field, sizeof(field), "%s%s", to, f + flen);
        else
            gw_fmt(field, sizeof(field), "%s%s", prefix, f ? f : "");
        json_object_set_new(e, "field", json_string(field));
        json_array_append(errors, e);
    }
    json_decref(tmp);
    if (n == 0 && jr != NULL)
        *jr = tmp_jr;
    else
        rt_job_request_dispose(&tmp_jr);
    return n;
}

/* A stand-alone object value (env, metadata, notify, args) checked as the
 * job validator would, its problems named from → to. */
static int value_check(const char *key, json_t *value, const char *from, const char *to,
                       const struct gw_config *cfg, json_t *errors)
{
    json_t *job = json_pack("{s:s,s:O}", "script_key", "x", key, value);
    if (job == NULL)
        return count_error(errors, to, "could not be checked (out of memory)");
    int n = job_check(NULL, job, "", from, to, cfg, errors);
    json_decref(job);
    return n;
}

/* base's fields, then over's: objects env and metadata merge key by key,
 * everything else is replaced (new). */
static json_t *merge_job(json_t *base, json_t *over)
{
    json_t *out = base ? json_deep_copy(base) : json_object();
    if (out == NULL)
        return NULL;
    const char *key;
    json_t *val;
    json_object_foreach(over, key, val)
    {
        if (known(key, graph_fields))
            continue;
        json_t *old = json_object_get(out, key);
        if ((strcmp(key, "env") == 0 || strcmp(key, "metadata") == 0) && json_is_object(old) &&
            json_is_object(val))
            json_object_update(old, val);
        else
            json_object_set(out, key, val);
    }
    return out;
}

static int check_matrix(json_t *matrix, const char *prefix, const struct gw_config *cfg,
                        json_t *errors)
{
    char field[400];
    gw_fmt(field, sizeof(field), "%smatrix", prefix);
    if (!json_is_object(matrix) || json_object_size(matrix) == 0)
        return count_error(errors, field, "must be an object of env name → list of string values");
    int n = 0;
    const char *name;
    json_t *values;
    json_object_foreach(matrix, name, values)
    {
        char vfield[400];
        gw_fmt(vfield, sizeof(vfield), "%s.%s", field, name);
        if (!json_is_array(values) || json_array_size(values) == 0) {
            n += count_error(errors, vfield, "must be a non-empty list of strings");
            continue;
        }
        size_t i;
        json_t *v;
        json_array_foreach(values, i, v)
        {
            json_t *env = json_pack("{s:O}", name, v);
            char to[420];
            gw_fmt(to, sizeof(to), "%s.%s[%zu]", field, name, i);
            char from[300];
            gw_fmt(from, sizeof(from), "env.%s", name);
            int bad = env ? value_check("env", env, from, to, cfg, errors) : 1;
            json_decref(env);
            n += bad;
            if (bad)
                break; /* one report per name: the name itself is the likely problem */
        }
    }
    long size = jobs_matrix_size(matrix);
    if (n == 0 && size > JOBS_FANOUT_MAX) {
        char msg[96];
        gw_fmt(msg, sizeof(msg), "makes more than %d combinations", JOBS_FANOUT_MAX);
        n += count_error(errors, field, msg);
    }
    return n;
}

static int check_fanout(json_t *step, const char *prefix, const struct gw_config *cfg,
                        json_t *errors)
{
    json_t *size = json_object_get(step, "array_size");
    json_t *matrix = json_object_get(step, "matrix");
    char field[400];
    int n = 0;
    if (size != NULL && !json_is_null(size)) {
        gw_fmt(field, sizeof(field), "%sarray_size", prefix);
        if (!json_is_integer(size) || json_integer_value(size) < 2 ||
            json_integer_value(size) > JOBS_FANOUT_MAX) {
            char msg[64];
            gw_fmt(msg, sizeof(msg), "must be an integer between 2 and %d", JOBS_FANOUT_MAX);
            n += count_error(errors, field, msg);
        }
        if (matrix != NULL && !json_is_null(matrix)) {
            gw_fmt(field, sizeof(field), "%smatrix", prefix);
            n += count_error(errors, field, "cannot be combined with array_size");
        }
        return n;
    }
    if (matrix != NULL && !json_is_null(matrix))
        n += check_matrix(matrix, prefix, cfg, errors);
    return n;
}

/* Index of the step named name in steps, or -1. */
static long step_index(json_t *steps, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        const char *n = json_string_value(json_object_get(s, "name"));
        if (n != NULL && strcmp(n, name) == 0)
            return (long)i;
    }
    return -1;
}

static int check_step_name(json_t *steps, size_t i, const char *prefix, json_t *errors)
{
    char field[64];
    gw_fmt(field, sizeof(field), "%sname", prefix);
    json_t *v = json_object_get(json_array_get(steps, i), "name");
    if (v == NULL || json_is_null(v))
        return count_error(errors, field, "is required");
    if (!json_is_string(v) || !rt_pipeline_name_ok(json_string_value(v)))
        return count_error(errors, field, "must match [a-z0-9][a-z0-9-]{0,62}");
    long first = step_index(steps, json_string_value(v));
    if (first >= 0 && (size_t)first < i) {
        char msg[64];
        gw_fmt(msg, sizeof(msg), "is the name of steps[%ld] already", first);
        return count_error(errors, field, msg);
    }
    return 0;
}

static int check_depends_on(json_t *steps, size_t i, const char *prefix, json_t *errors)
{
    json_t *deps = json_object_get(json_array_get(steps, i), "depends_on");
    char field[64];
    gw_fmt(field, sizeof(field), "%sdepends_on", prefix);
    if (deps == NULL || json_is_null(deps))
        return 0;
    if (!json_is_array(deps) || json_array_size(deps) > MAX_STEPS)
        return count_error(errors, field, "must be a list of step names");
    int n = 0;
    size_t j;
    json_t *d;
    json_array_foreach(deps, j, d)
    {
        char dfield[80];
        gw_fmt(dfield, sizeof(dfield), "%s[%zu]", field, j);
        const char *name = json_string_value(d);
        if (name == NULL)
            n += count_error(errors, dfield, "must be a step name");
        else if (step_index(steps, name) < 0)
            n += count_error(errors, dfield, "names no step");
        for (size_t k = 0; name != NULL && k < j; k++)
            if (json_equal(json_array_get(deps, k), d)) {
                n += count_error(errors, dfield, "names the same step twice");
                break;
            }
    }
    return n;
}

/* Depth-first search over depends_on; every edge that closes a cycle is
 * reported at its depends_on entry, naming the cycle. */
struct graph {
    json_t *steps;
    size_t n;
    unsigned char color[MAX_STEPS]; /* 0 new, 1 on the path, 2 done */
    size_t path[MAX_STEPS];
    size_t depth;
    json_t *errors;
    int count;
};

static const char *step_name(const struct graph *g, size_t i)
{
    return json_string_value(json_object_get(json_array_get(g->steps, i), "name"));
}

static void report_cycle(struct graph *g, size_t u, size_t j, size_t v)
{
    struct gw_buf msg;
    gw_buf_init(&msg, 4096);
    int rc = gw_buf_printf(&msg, "makes a cycle: %s", step_name(g, u));
    size_t at = 0;
    while (at < g->depth && g->path[at] != v)
        at++;
    /* path[at..] runs from v to u itself (on top): the cycle is u → v → … → u */
    for (size_t k = at; rc == GW_OK && k + 1 < g->depth; k++)
        rc = gw_buf_printf(&msg, " → %s", step_name(g, g->path[k]));
    if (rc == GW_OK)
        rc = gw_buf_printf(&msg, " → %s", step_name(g, u));
    char field[64];
    gw_fmt(field, sizeof(field), "steps[%zu].depends_on[%zu]", u, j);
    g->count += count_error(g->errors, field, rc == GW_OK ? msg.data : "makes a cycle");
    gw_buf_dispose(&msg);
}

static void visit(struct graph *g, size_t u)
{
    g->color[u] = 1;
    g->path[g->depth++] = u;
    json_t *deps = json_object_get(json_array_get(g->steps, u), "depends_on");
    size_t j;
    json_t *d;
    json_array_foreach(deps, j, d)
    {
        long v = step_index(g->steps, json_string_value(d));
        if (v < 0)
            continue;
        if (g->color[v] == 1)
            report_cycle(g, u, j, (size_t)v);
        else if (g->color[v] == 0)
            visit(g, (size_t)v);
    }
    g->depth--;
    g->color[u] = 2;
}

static int check_cycles(json_t *steps, json_t *errors)
{
    struct graph g = {.steps = steps, .n = json_array_size(steps), .errors = errors};
    for (size_t i = 0; i < g.n; i++)
        if (g.color[i] == 0)
            visit(&g, i);
    return g.count;
}

/* One step: its own fields, its fan-out, and its job request with the
 * defaults applied, checked by the job validator. */
static int check_step(int *graph_bad, json_t *steps, size_t i, json_t *defaults,
                      const struct gw_config *cfg, json_t *errors)
{
    json_t *step = json_array_get(steps, i);
    char prefix[32];
    gw_fmt(prefix, sizeof(prefix), "steps[%zu].", i);
    if (!json_is_object(step)) {
        char field[32];
        gw_fmt(field, sizeof(field), "steps[%zu]", i);
        return count_error(errors, field, "must be an object");
    }
    int n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(step, key, val)
    {
        if (!known(key, job_fields) && !known(key, graph_fields)) {
            char field[320];
            gw_fmt(field, sizeof(field), "%s%s", prefix, key);
            n += count_error(errors, field, "is not a known field");
        }
    }
    int bad =
        check_step_name(steps, i, prefix, errors) + check_depends_on(steps, i, prefix, errors);
    if (bad > 0)
        *graph_bad = 1;
    n += bad;
    n += check_fanout(step, prefix, cfg, errors);
    json_t *job = merge_job(defaults, step);
    if (job == NULL)
        return n + count_error(errors, prefix, "could not be checked (out of memory)");
    for (const char *const *g = graph_fields; *g != NULL; g++)
        json_object_del(job, *g);
    n += job_check(NULL, job, prefix, NULL, NULL, cfg, errors);
    json_decref(job);
    return n;
}

static int check_defaults(json_t *defaults, json_t *errors)
{
    if (defaults == NULL || json_is_null(defaults))
        return 0;
    if (!json_is_object(defaults))
        return count_error(errors, "defaults", "must be an object of job fields");
    int n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(defaults, key, val)
    {
        if (!known(key, job_fields)) {
            char field[320];
            gw_fmt(field, sizeof(field), "defaults.%s", key);
            n += count_error(errors, field, "is not a known field");
        }
    }
    return n;
}

static int check_def_top(json_t *body, const char *path_name, const struct gw_config *cfg,
                         json_t *errors)
{
    int n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val)
    {
        if (!known(key, def_fields))
            n += count_error(errors, key, "is not a known field");
    }
    json_t *name = json_object_get(body, "name");
    if (path_name == NULL && (name == NULL || json_is_null(name)))
        n += count_error(errors, "name", "is required");
    else if (name != NULL &&
             (!json_is_string(name) || !rt_pipeline_name_ok(json_string_value(name))))
        n += count_error(errors, "name", "must match [a-z0-9][a-z0-9-]{0,62}");
    else if (name != NULL && path_name != NULL && strcmp(json_string_value(name), path_name) != 0)
        n += count_error(errors, "name", "must be the name in the path (or left out)");
    json_t *desc = json_object_get(body, "description");
    if (desc != NULL && !json_is_null(desc) &&
        (!json_is_string(desc) || json_string_length(desc) > MAX_DESCRIPTION ||
         strlen(json_string_value(desc)) != json_string_length(desc)))
        n += count_error(errors, "description", "must be a string of at most 1024 bytes");
    json_t *notify = json_object_get(body, "notify");
    if (notify != NULL && !json_is_null(notify))
        n += value_check("notify", notify, "notify", "notify", cfg, errors);
    return n;
}

int rt_pipeline_def_parse(json_t **stored, json_t *body, const char *path_name,
                          const struct gw_config *cfg, json_t *errors)
{
    *stored = NULL;
    int n = check_def_top(body, path_name, cfg, errors);
    json_t *defaults = json_object_get(body, "defaults");
    n += check_defaults(defaults, errors);
    json_t *steps = json_object_get(body, "steps");
    if (!json_is_array(steps) || json_array_size(steps) < 1 || json_array_size(steps) > MAX_STEPS)
        return n + count_error(errors, "steps", "must be a list of 1 to 50 steps");
    int graph_bad = 0;
    for (size_t i = 0; i < json_array_size(steps); i++)
        n += check_step(&graph_bad, steps, i, json_is_object(defaults) ? defaults : NULL, cfg,
                        errors);
    if (!graph_bad)
        n += check_cycles(steps, errors);
    if (n == 0) {
        *stored = json_deep_copy(body);
        if (*stored == NULL)
            return count_error(errors, "(body)", "could not be stored (out of memory)");
        json_object_del(*stored, "name");
    }
    return n;
}

static int check_run_args(json_t *args, const struct gw_config *cfg, json_t *errors)
{
    if (args == NULL || json_is_null(args))
        return 0;
    if (!json_is_object(args))
        return count_error(errors, "args", "must be an object of step name → list of strings");
    int n = 0;
    const char *step;
    json_t *list;
    json_object_foreach(args, step, list)
    {
        char to[320];
        gw_fmt(to, sizeof(to), "args.%s", step);
        n += value_check("args", list, "args", to, cfg, errors);
    }
    return n;
}

int rt_run_request_parse(struct rt_run_request *out, json_t *body, const struct gw_config *cfg,
                         json_t *errors)
{
    memset(out, 0, sizeof(*out));
    int n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(body, key, val)
    {
        if (!known(key, run_fields))
            n += count_error(errors, key, "is not a known field");
    }
    json_t *v = json_object_get(body, "version");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000000)
            n += count_error(errors, "version", "must be a version number (1 or more)");
        else
            out->version = json_integer_value(v);
    }
    /* env, metadata, notify and dispatch as POST /jobs checks them. */
    json_t *job = json_pack("{s:s}", "script_key", "x");
    static const char *const shared[] = {"env", "metadata", "notify", "dispatch", NULL};
    for (size_t i = 0; job != NULL && shared[i] != NULL; i++) {
        json_t *x = json_object_get(body, shared[i]);
        if (x != NULL && !json_is_null(x))
            json_object_set(job, shared[i], x);
    }
    n += job ? job_check(NULL, job, "", NULL, NULL, cfg, errors)
             : count_error(errors, "(body)", "could not be checked (out of memory)");
    json_decref(job);
    n += check_run_args(json_object_get(body, "args"), cfg, errors);
    out->env = json_object_get(body, "env");
    out->args = json_object_get(body, "args");
    out->metadata = json_object_get(body, "metadata");
    out->notify = json_object_get(body, "notify");
    out->dispatch = json_string_value(json_object_get(body, "dispatch"));
    return n;
}

/* The resolved job fields of one step, as the engine inserts them. */
static json_t *step_spec(const struct rt_job_request *jr)
{
    json_t *spec = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:s*,s:s}", "script_key", jr->script_key,
                             "compute_type", jr->compute_type, "vcpus", (json_int_t)jr->vcpus,
                             "memory", (json_int_t)jr->memory, "gpus", (json_int_t)jr->gpus,
                             "max_attempts", (json_int_t)jr->max_attempts, "operation",
                             jr->operation, "dispatch", jr->dispatch);
    if (spec == NULL)
        return NULL;
    if (jr->timeout_seconds >= 0)
        json_object_set_new(spec, "timeout_seconds", json_integer(jr->timeout_seconds));
    const struct {
        const char *key, *text;
    } texts[] = {{"args", jr->args_json},
                 {"env", jr->env_json},
                 {"metadata", jr->metadata_json},
                 {"notify", jr->notify_json}};
    for (size_t i = 0; i < GW_ARRAY_LEN(texts); i++) {
        json_t *v = texts[i].text ? json_loads(texts[i].text, JSON_DECODE_ANY, NULL) : NULL;
        if (v == NULL || json_object_set_new(spec, texts[i].key, v) != 0) {
            json_decref(spec);
            return NULL;
        }
    }
    return spec;
}

/* The step's job request as this run makes it: defaults, the step, then the
 * run's env (added), args for this step (replacing), metadata (added) and
 * dispatch (replacing). The step's own notify stays; the run's is the run's. */
static json_t *run_job(json_t *defaults, json_t *step, const struct rt_run_request *run)
{
    json_t *job = merge_job(defaults, step);
    json_t *over = json_object();
    if (job == NULL || over == NULL) {
        json_decref(job);
        json_decref(over);
        return NULL;
    }
    if (json_is_object(run->env))
        json_object_set(over, "env", run->env);
    if (json_is_object(run->metadata))
        json_object_set(over, "metadata", run->metadata);
    if (run->dispatch != NULL)
        json_object_set_new(over, "dispatch", json_string(run->dispatch));
    json_t *args = json_object_get(run->args, json_string_value(json_object_get(step, "name")));
    if (args != NULL)
        json_object_set(over, "args", args);
    json_t *merged = merge_job(job, over);
    json_decref(job);
    json_decref(over);
    return merged;
}

static int plan_step(json_t *steps_out, json_t *defaults, size_t i, json_t *step,
                     const struct rt_run_request *run, const struct gw_config *cfg, json_t *errors)
{
    char prefix[32];
    gw_fmt(prefix, sizeof(prefix), "steps[%zu].", i);
    json_t *job = run_job(defaults, step, run);
    if (job == NULL)
        return count_error(errors, prefix, "could not be planned (out of memory)");
    struct rt_job_request jr;
    memset(&jr, 0, sizeof(jr));
    int n = job_check(&jr, job, prefix, NULL, NULL, cfg, errors);
    json_t *entry = NULL;
    if (n == 0) {
        json_t *deps = json_object_get(step, "depends_on");
        deps = json_is_array(deps) ? json_incref(deps) : json_array();
        entry = json_pack("{s:O,s:I,s:o,s:o,s:o}", "name", json_object_get(step, "name"), "ord",
                          (json_int_t)i, "depends_on", deps, "spec", step_spec(&jr), "fanout",
                          jobs_pipeline_fanout(step));
        if (entry == NULL || json_array_append_new(steps_out, entry) != 0)
            n += count_error(errors, prefix, "could not be planned (out of memory)");
    }
    rt_job_request_dispose(&jr);
    json_decref(job);
    return n;
}

int rt_run_plan(json_t **steps, json_t *definition, const struct rt_run_request *run,
                const struct gw_config *cfg, json_t *errors)
{
    *steps = NULL;
    json_t *defs = json_object_get(definition, "steps");
    json_t *defaults = json_object_get(definition, "defaults");
    int n = 0;
    const char *name;
    json_t *v;
    json_object_foreach(run->args, name, v)
    {
        if (step_index(defs, name) < 0) {
            char field[320];
            gw_fmt(field, sizeof(field), "args.%s", name);
            n += count_error(errors, field, "names no step");
        }
    }
    json_t *out = json_array();
    if (out == NULL)
        return n + count_error(errors, "(body)", "could not be planned (out of memory)");
    size_t i;
    json_t *step;
    json_array_foreach(defs, i, step)
    {
        n += plan_step(out, json_is_object(defaults) ? defaults : NULL, i, step, run, cfg, errors);
    }
    if (n == 0)
        *steps = out;
    else
        json_decref(out);
    return n;
}
