/*
 * job_request.h — validation of a POST /jobs body: the native shape or the
 * seed's SNS trigger message, every rule of API.md, every invalid field
 * reported at once. Pure: no I/O, testable on its own.
 *
 * Safe from any thread. A parsed request owns its strings (the caller calls
 * rt_job_request_dispose).
 */
#ifndef MLGW_ROUTES_JOB_REQUEST_H
#define MLGW_ROUTES_JOB_REQUEST_H

#include <jansson.h>

#include "common/config.h"

struct rt_job_request {
    const char *script_key;   /* borrowed from the body */
    const char *compute_type; /* "gpu" or "cpu" (static) */
    long long vcpus, memory, gpus;
    long long timeout_seconds; /* -1: none */
    long long max_attempts;
    const char *operation; /* borrowed, or NULL */
    const char *dispatch;  /* static */
    /* Canonical JSON texts (new: free with rt_job_request_dispose). */
    char *args_json, *env_json, *metadata_json, *notify_json;
};

/*
 * Validates body into out, applying the configured defaults and limits.
 * Each problem is appended to errors as {"field": ..., "message": ...}, at
 * most RT_MAX_ERRORS of them (routes/http.h: the last then says how many
 * more there were). Returns the number of problems (0: out is complete).
 */
int rt_job_request_parse(struct rt_job_request *out, json_t *body, const struct gw_config *cfg,
                         json_t *errors);
void rt_job_request_dispose(struct rt_job_request *req);

/* The names a request's env may not set (NULL-terminated). */
extern const char *const rt_reserved_env[];

/* The loader, interpreter and shell names env may not set either
 * (NULL-terminated): "NAME", "PREFIX*" or "*SUFFIX". Public for tests. */
extern const char *const rt_refused_env[];
/* True when name is one of rt_refused_env or holds "%%" (bash functions). */
int rt_env_refused(const char *name);

#endif
