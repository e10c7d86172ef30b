/*
 * pipelines.h — the pipelines aggregate: definitions and their immutable
 * versions (migrations/0009_pipelines.sql). A pipeline belongs to a team;
 * its name is unique within the team.
 *
 * Lookups by name take a scope: team is the caller's team, or NULL for an
 * admin key, which may see every team's pipelines (its own team's first
 * when several teams use the name; own_team is that team). The definition's
 * JSON is built by PostgreSQL (mlgw_pipeline_json).
 *
 * Every function takes the shared pool and is safe from any thread. JSON
 * text handed out is new: the caller free()s it.
 */
#ifndef MLGW_DB_PIPELINES_H
#define MLGW_DB_PIPELINES_H

#include "db/jobs.h"
#include "db/pool.h"

struct db_pipeline_scope {
    const char *team;     /* NULL: every team (admin) */
    const char *own_team; /* the caller's own team */
};

/* Stores version 1 of a new pipeline of team (out->status 201). With idem,
 * replays the first answer for the same key and request (out->replayed).
 * GW_ECONFLICT when the team has a pipeline of that name, or the key is in
 * use by a request in progress; GW_EINVAL when the key was used for another
 * request. */
int db_pipeline_create(struct db_job_created *out, struct db_pool *pool, const char *team,
                       const char *name, const char *definition_json, const char *api_key_id,
                       const struct db_idempotency *idem, struct gw_err *err);

/* Stores the next version. GW_ENOTFOUND. */
int db_pipeline_update(char **out, struct db_pool *pool, const struct db_pipeline_scope *scope,
                       const char *name, const char *definition_json, const char *api_key_id,
                       struct gw_err *err);

/* The latest version (version 0) or the one asked for. GW_ENOTFOUND. */
int db_pipeline_get(char **out, struct db_pool *pool, const struct db_pipeline_scope *scope,
                    const char *name, long long version, struct gw_err *err);

/* Newest first, each at its latest version. *items is a JSON array text
 * (new); *next_id the last pipeline's id when more follow, else "". */
int db_pipeline_list(char **items, char next_id[37], struct db_pool *pool, const char *team,
                     const char *before_id, int limit, struct gw_err *err);

/* Deletes a pipeline, its versions and its ended runs (their jobs stay).
 * GW_ENOTFOUND; GW_ECONFLICT while one of its runs is active. */
int db_pipeline_delete(struct db_pool *pool, const struct db_pipeline_scope *scope,
                       const char *name, struct gw_err *err);

#endif
