-- Jobs, their history and idempotency keys.
--
-- Job ids are UUIDv7: time-ordered, so "newest first" is ORDER BY id DESC and
-- a cursor is simply the last id seen (stable under concurrent inserts).

CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    status          text NOT NULL CHECK (status IN (
                        'QUEUED', 'DISPATCHED', 'SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING',
                        'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'DISPATCH_FAILED')),
    script_key      text NOT NULL CHECK (length(script_key) BETWEEN 1 AND 1024),
    compute_type    text NOT NULL CHECK (compute_type IN ('gpu', 'cpu')),
    vcpus           integer NOT NULL CHECK (vcpus > 0),
    memory          integer NOT NULL CHECK (memory > 0),
    gpus            integer NOT NULL CHECK (gpus >= 0),
    args            jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(args) = 'array'),
    env             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(env) = 'object'),
    timeout_seconds integer CHECK (timeout_seconds >= 60),
    max_attempts    integer NOT NULL DEFAULT 1 CHECK (max_attempts BETWEEN 1 AND 10),
    operation       text,
    metadata        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    notify          jsonb NOT NULL DEFAULT '{"emails": [], "webhooks": []}',
    dispatch        text NOT NULL CHECK (dispatch IN ('batch', 'sns', 'local')),
    batch_job_id    text,
    sns_message_id  text,
    attempts        integer NOT NULL DEFAULT 0,
    exit_code       integer,
    status_reason   text,
    output_uri      text NOT NULL,
    log_stream      text,
    dispatch_attempts integer NOT NULL DEFAULT 0, -- tries to hand the job to AWS so far
    dispatch_error  text,        -- the last of them that failed, while QUEUED
    checked_at      timestamptz, -- when the reconciler last asked AWS about it
    source          text NOT NULL DEFAULT 'api',
    api_key_id      text REFERENCES api_keys (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    stopped_at      timestamptz,
    -- the list filters, as plain columns so they can be indexed
    meta_user       text GENERATED ALWAYS AS (metadata ->> 'user') STORED,
    meta_project    text GENERATED ALWAYS AS (metadata ->> 'project') STORED,
    meta_experiment text GENERATED ALWAYS AS (metadata ->> 'experiment') STORED
);

-- Each filter of GET /jobs with the cursor order behind it.
CREATE INDEX jobs_status_id ON jobs (status, id DESC);
CREATE INDEX jobs_compute_type_id ON jobs (compute_type, id DESC);
CREATE INDEX jobs_user_id ON jobs (meta_user, id DESC) WHERE meta_user IS NOT NULL;
CREATE INDEX jobs_project_id ON jobs (meta_project, id DESC) WHERE meta_project IS NOT NULL;
CREATE INDEX jobs_experiment_id ON jobs (meta_experiment, id DESC)
    WHERE meta_experiment IS NOT NULL;
CREATE INDEX jobs_created_at ON jobs (created_at);
CREATE UNIQUE INDEX jobs_batch_job_id ON jobs (batch_job_id) WHERE batch_job_id IS NOT NULL;

CREATE TABLE job_history (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id  uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    status  text NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    source  text NOT NULL CHECK (source IN (
                'api', 'dispatcher', 'eventbridge', 'sns', 'reconciler', 'local')),
    reason  text,
    applied boolean NOT NULL DEFAULT true -- false: a stale or duplicate report, kept
);
CREATE INDEX job_history_job_id ON job_history (job_id, id);

-- Idempotency-Key: the first answer to (API key, key), replayed for the same
-- request; rows older than the configured TTL are ignored and purged.
CREATE TABLE idempotency_keys (
    api_key_id    text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  bytea NOT NULL,
    status        integer NOT NULL,
    response_body text NOT NULL,
    location      text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- RFC 3339 UTC with milliseconds, as the API writes every time. A plain SQL
-- expression (STABLE, like to_char) so the planner inlines it.
CREATE FUNCTION mlgw_ts(t timestamptz) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');

-- The job resource of API.md, keys in the documented order. history is a JSON
-- array appended as the last key, or NULL to leave the key out (lists).
-- PL/pgSQL rather than SQL: its plan is cached per connection, where a SQL
-- function with subqueries is planned again on every call.
CREATE FUNCTION mlgw_job_json(j jobs, history json) RETURNS json
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    b json := json_build_object(
        'id', j.id,
        'status', j.status,
        'script_key', j.script_key,
        'compute_type', j.compute_type,
        'resources', json_build_object('vcpus', j.vcpus, 'memory', j.memory, 'gpus', j.gpus),
        'args', j.args,
        'env', j.env,
        'timeout_seconds', j.timeout_seconds,
        'max_attempts', j.max_attempts,
        'operation', j.operation,
        'metadata', '{"user": null, "project": null, "experiment": null}'::jsonb || j.metadata,
        'notify', j.notify,
        'dispatch', j.dispatch,
        'batch_job_id', j.batch_job_id,
        'sns_message_id', j.sns_message_id,
        'attempts', j.attempts,
        'exit_code', j.exit_code,
        'status_reason', j.status_reason,
        'output_uri', j.output_uri,
        'log_stream', j.log_stream,
        'dispatch_attempts', j.dispatch_attempts,
        'dispatch_error', j.dispatch_error,
        'created_at', mlgw_ts(j.created_at),
        'updated_at', mlgw_ts(j.updated_at),
        'started_at', mlgw_ts(j.started_at),
        'stopped_at', mlgw_ts(j.stopped_at));
BEGIN
    IF history IS NULL THEN
        RETURN b;
    END IF;
    RETURN (left(b::text, -1) || ',"history":' || history::text || '}')::json;
END
$$;

-- A job's history, oldest first, in the API's shape.
CREATE FUNCTION mlgw_job_history(job uuid) RETURNS json
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(json_build_object(
                'status', h.status, 'at', mlgw_ts(h.at), 'source', h.source, 'reason', h.reason,
                'applied', h.applied) ORDER BY h.id), '[]'::json)
            FROM job_history h WHERE h.job_id = job);
END
$$;
