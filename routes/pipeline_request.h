/*
 * pipeline_request.h — validation of pipeline definitions (POST and PUT
 * /pipelines) and of run requests (POST /pipelines/{name}/runs), and the
 * plan of a run: each step's job request with the definition's defaults and
 * the run's env, args and dispatch applied, and its fan-out. Every step is
 * validated by the job validator (routes/job_request.h), with the same
 * messages and the step's path in `field`; every invalid field is reported
 * at once. Pure: no I/O.
 *
 * Safe from any thread. JSON handed out is new (json_decref).
 */
#ifndef MLGW_ROUTES_PIPELINE_REQUEST_H
#define MLGW_ROUTES_PIPELINE_REQUEST_H

#include <jansson.h>

#include "common/config.h"

/* A pipeline or step name: [a-z0-9][a-z0-9-]{0,62}. */
int rt_pipeline_name_ok(const char *name);

/*
 * Validates a definition. path_name is the name in the URL (PUT) or NULL
 * (POST: body.name is required). Problems are appended to errors; returns
 * their number. On 0, *stored is the definition to keep (new): the body
 * without "name".
 */
int rt_pipeline_def_parse(json_t **stored, json_t *body, const char *path_name,
                          const struct gw_config *cfg, json_t *errors);

/* The run request's own fields (borrowed from the body it was parsed from). */
struct rt_run_request {
    long long version; /* 0: the latest */
    json_t *env, *args, *metadata, *notify;
    const char *dispatch; /* NULL: each step's own */
};

/* Validates a run body (version, env, args, metadata, notify, dispatch).
 * Returns the number of problems appended to errors. */
int rt_run_request_parse(struct rt_run_request *out, json_t *body, const struct gw_config *cfg,
                         json_t *errors);

/*
 * The run's steps (new array), in definition order:
 * {"name", "ord", "depends_on": [...], "spec": {job fields, resolved},
 * "fanout": [...]}. Problems (args naming no step, a step the run's
 * overrides make invalid) go to errors; returns their number.
 */
int rt_run_plan(json_t **steps, json_t *definition, const struct rt_run_request *run,
                const struct gw_config *cfg, json_t *errors);

#endif
