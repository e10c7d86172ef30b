-- Tenancy and per-key rate limits: every API key belongs to a team, and every job to the team of the
-- key that created it. A key without admin sees and acts on its own team's
-- jobs only (anything else is 404); admin sees all.
--
-- Existing keys each become their own team (the team is the key's id), as a
-- key created without --team is; existing jobs follow their key. Jobs the
-- gateway learnt of from callbacks (no key) have no team: only admin sees them.

ALTER TABLE api_keys ADD COLUMN team text;
UPDATE api_keys SET team = id;
ALTER TABLE api_keys ALTER COLUMN team SET NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_team_shape
    CHECK (team ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');

-- Per-key rate limits (requests per second and burst); NULL: the gateway's
-- defaults (MLGW_RATE_LIMIT, MLGW_RATE_BURST).
ALTER TABLE api_keys ADD COLUMN rate_per_s double precision CHECK (rate_per_s > 0);
ALTER TABLE api_keys ADD COLUMN burst integer CHECK (burst > 0);

ALTER TABLE jobs ADD COLUMN team text;
UPDATE jobs j SET team = k.team FROM api_keys k WHERE j.api_key_id = k.id;
CREATE INDEX jobs_team_id ON jobs (team, id DESC) WHERE team IS NOT NULL;

-- The job resource gains "team", after "id"; everything else as in 0002.
CREATE OR REPLACE FUNCTION mlgw_job_json(j jobs, history json) RETURNS json
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    b json := json_build_object(
        'id', j.id,
        'team', j.team,
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
