-- The dispatch outbox: one row per pending action on a job (submit it, or
-- cancel it at AWS), written in the same transaction as the job itself.
-- Dispatchers lease rows (lease_until) so several gateways never work on the
-- same one; in_doubt marks a submit that may have reached AWS (a timeout, or
-- a crash before the result was recorded): the next attempt looks the job up
-- by name before submitting again.
CREATE TABLE dispatch_outbox (
    job_id          uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    action          text NOT NULL CHECK (action IN ('submit', 'cancel')),
    target          text NOT NULL CHECK (target IN ('batch', 'sns', 'local')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    lease_owner     uuid,
    in_doubt        boolean NOT NULL DEFAULT false,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, action)
);
CREATE INDEX dispatch_outbox_due ON dispatch_outbox (target, next_attempt_at);

-- Wake the dispatchers as soon as a row commits (they also poll).
CREATE FUNCTION mlgw_outbox_notify() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('mlgw_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER dispatch_outbox_notify AFTER INSERT OR UPDATE OF next_attempt_at
    ON dispatch_outbox FOR EACH STATEMENT EXECUTE FUNCTION mlgw_outbox_notify();

-- What the job shows of its dispatch while it waits, and when the reconciler
-- last asked AWS about it.
ALTER TABLE jobs ADD COLUMN dispatch_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN dispatch_error text;
ALTER TABLE jobs ADD COLUMN checked_at timestamptz;
CREATE INDEX jobs_active_batch ON jobs (coalesce(checked_at, updated_at))
    WHERE batch_job_id IS NOT NULL
      AND status IN ('SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING');

-- The job resource gains dispatch_attempts and dispatch_error.
CREATE OR REPLACE FUNCTION mlgw_job_json(j jobs, history json) RETURNS json
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

-- Where a status stands in a job's life: a job only moves to a higher rank
-- (the one exception, RUNNING back to RUNNABLE for a new attempt, is decided
-- by the caller). Terminal statuses share the top rank.
CREATE FUNCTION mlgw_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE status
        WHEN 'QUEUED' THEN 0 WHEN 'DISPATCHED' THEN 1 WHEN 'SUBMITTED' THEN 2
        WHEN 'PENDING' THEN 3 WHEN 'RUNNABLE' THEN 4 WHEN 'STARTING' THEN 5
        WHEN 'RUNNING' THEN 6 ELSE 7 END;
