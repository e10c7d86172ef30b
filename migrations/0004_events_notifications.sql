-- Job-state events (EventBridge, SNS, the reconciler, the local executor) and
-- the notification outbox they fill.

-- Every event id seen, so a redelivered event is recognised (EventBridge
-- delivers at least once).
CREATE TABLE job_events (
    event_id    text PRIMARY KEY,
    source      text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_received_at ON job_events (received_at);

-- One row per (job, status, channel, recipient): the unique key is what makes
-- repeated callbacks send nothing twice.
CREATE TABLE notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    status          text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'webhook', 'sns')),
    recipient       text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, status, channel, recipient)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

CREATE FUNCTION mlgw_notifications_notify() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('mlgw_notify', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER notifications_notify AFTER INSERT ON notifications
    FOR EACH STATEMENT EXECUTE FUNCTION mlgw_notifications_notify();

-- The notifications of a job, as GET /jobs/{id} shows them.
CREATE FUNCTION mlgw_job_notifications(job uuid) RETURNS json
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(json_build_object(
                'status', n.status, 'channel', n.channel, 'recipient', n.recipient,
                'state', CASE WHEN n.sent_at IS NOT NULL THEN 'sent'
                              WHEN n.failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END,
                'attempts', n.attempts, 'error', n.last_error,
                'sent_at', mlgw_ts(n.sent_at)) ORDER BY n.id), '[]'::json)
            FROM notifications n WHERE n.job_id = job);
END
$$;

-- Applies one reported state to a job, in one round trip: event dedup, the
-- job found by Batch id, else by the gateway id in its tags or name, else
-- created (a job the gateway never saw); forward-only transitions (RUNNING
-- back to RUNNABLE only for a new attempt); history, applied or not; and on a
-- notifying status, one notification row per recipient.
-- result: applied | ignored | duplicate | created.
CREATE FUNCTION mlgw_apply_job_event(
    p_event_id text, p_source text, p_batch_job_id text, p_gateway_id uuid, p_new_id uuid,
    p_status text, p_reason text, p_exit_code integer, p_attempts integer, p_log_stream text,
    p_started_ms bigint, p_stopped_ms bigint, p_job_name text, p_queue text,
    p_vcpus integer, p_memory integer, p_gpus integer, p_script_key text, p_output_uri text,
    p_notify_statuses text[], p_global_emails text[], p_topic text,
    OUT result text, OUT job_id uuid, OUT job_status text)
    LANGUAGE plpgsql
AS $$
DECLARE
    j jobs%ROWTYPE;
    applies boolean;
BEGIN
    IF p_event_id IS NOT NULL THEN
        INSERT INTO job_events (event_id, source) VALUES (p_event_id, p_source)
            ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT id, status INTO job_id, job_status FROM jobs
                WHERE batch_job_id = p_batch_job_id OR id = p_gateway_id LIMIT 1;
            IF job_id IS NOT NULL THEN
                INSERT INTO job_history (job_id, status, source, reason, applied)
                VALUES (job_id, p_status, p_source, 'ignored: duplicate event ' || p_event_id,
                        false);
            END IF;
            result := 'duplicate';
            RETURN;
        END IF;
    END IF;

    IF p_batch_job_id IS NOT NULL THEN
        SELECT * INTO j FROM jobs WHERE batch_job_id = p_batch_job_id FOR UPDATE;
    END IF;
    IF j.id IS NULL AND p_gateway_id IS NOT NULL THEN
        SELECT * INTO j FROM jobs WHERE id = p_gateway_id FOR UPDATE;
        IF j.id IS NOT NULL AND j.batch_job_id IS NULL AND p_batch_job_id IS NOT NULL THEN
            UPDATE jobs SET batch_job_id = p_batch_job_id WHERE id = j.id;
        END IF;
    END IF;

    IF j.id IS NULL THEN
        -- A job submitted some other way (the SNS path, the console): record it.
        INSERT INTO jobs (id, status, script_key, compute_type, vcpus, memory, gpus, dispatch,
                          batch_job_id, output_uri, source, metadata, status_reason, exit_code,
                          attempts, log_stream, started_at, stopped_at)
        VALUES (p_new_id, p_status, coalesce(p_script_key, 'unknown'),
                CASE WHEN coalesce(p_gpus, 0) > 0 THEN 'gpu' ELSE 'cpu' END,
                coalesce(p_vcpus, 1), coalesce(p_memory, 1), coalesce(p_gpus, 0), 'batch',
                p_batch_job_id, p_output_uri, p_source,
                jsonb_build_object('batch_job_name', p_job_name, 'batch_job_queue', p_queue),
                p_reason, p_exit_code, coalesce(p_attempts, 0), p_log_stream,
                to_timestamp(p_started_ms / 1000.0), to_timestamp(p_stopped_ms / 1000.0))
        RETURNING * INTO j;
        INSERT INTO job_history (job_id, status, source, reason)
        VALUES (j.id, p_status, p_source, 'first seen in a ' || p_source || ' event');
        result := 'created';
    ELSE
        applies := mlgw_status_rank(j.status) < 7 AND
                   (mlgw_status_rank(p_status) > mlgw_status_rank(j.status) OR
                    (j.status = 'RUNNING' AND p_status = 'RUNNABLE' AND
                     coalesce(p_attempts, 0) > j.attempts));
        IF NOT applies THEN
            INSERT INTO job_history (job_id, status, source, reason, applied)
            VALUES (j.id, p_status, p_source,
                    'ignored: the job is already ' || j.status, false);
            result := 'ignored';
            job_id := j.id;
            job_status := j.status;
            RETURN;
        END IF;
        UPDATE jobs SET status = p_status,
                        status_reason = coalesce(p_reason, status_reason),
                        exit_code = coalesce(p_exit_code, exit_code),
                        attempts = greatest(attempts, coalesce(p_attempts, 0)),
                        log_stream = coalesce(p_log_stream, log_stream),
                        started_at = coalesce(started_at, to_timestamp(p_started_ms / 1000.0)),
                        stopped_at = coalesce(stopped_at, to_timestamp(p_stopped_ms / 1000.0)),
                        updated_at = now(), checked_at = now()
            WHERE id = j.id RETURNING * INTO j;
        INSERT INTO job_history (job_id, status, source, reason)
        VALUES (j.id, p_status, p_source, p_reason);
        result := 'applied';
    END IF;

    IF p_status = ANY (p_notify_statuses) THEN
        INSERT INTO notifications (job_id, status, channel, recipient)
        SELECT j.id, p_status, 'email', e
            FROM (SELECT jsonb_array_elements_text(j.notify -> 'emails') AS e
                  UNION SELECT unnest(p_global_emails)) r WHERE e IS NOT NULL AND e <> ''
        UNION ALL
        SELECT j.id, p_status, 'webhook', w
            FROM jsonb_array_elements_text(j.notify -> 'webhooks') AS w
        UNION ALL
        SELECT j.id, p_status, 'sns', p_topic WHERE p_topic IS NOT NULL
        ON CONFLICT DO NOTHING;
    END IF;
    job_id := j.id;
    job_status := j.status;
END
$$;
