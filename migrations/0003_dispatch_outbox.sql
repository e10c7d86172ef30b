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

CREATE INDEX jobs_active_batch ON jobs (coalesce(checked_at, updated_at))
    WHERE batch_job_id IS NOT NULL
      AND status IN ('SUBMITTED', 'PENDING', 'RUNNABLE', 'STARTING', 'RUNNING');

-- Where a status stands in a job's life: a job only moves to a higher rank
-- (the one exception, RUNNING back to RUNNABLE for a new attempt, is decided
-- by the caller). Terminal statuses share the top rank.
CREATE FUNCTION mlgw_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE status
        WHEN 'QUEUED' THEN 0 WHEN 'DISPATCHED' THEN 1 WHEN 'SUBMITTED' THEN 2
        WHEN 'PENDING' THEN 3 WHEN 'RUNNABLE' THEN 4 WHEN 'STARTING' THEN 5
        WHEN 'RUNNING' THEN 6 ELSE 7 END;
