-- A job the gateway learns of from an AWS event (a Batch job it never
-- submitted) records what the events said and nothing else: no placeholder
-- script key ('unknown') or resources (1 vCPU, 1 MiB), no null metadata values.
-- What they did not say is NULL, which only such jobs may have.

ALTER TABLE jobs ALTER COLUMN script_key DROP NOT NULL,
                 ALTER COLUMN compute_type DROP NOT NULL,
                 ALTER COLUMN vcpus DROP NOT NULL,
                 ALTER COLUMN memory DROP NOT NULL,
                 ALTER COLUMN gpus DROP NOT NULL;
ALTER TABLE jobs ADD CONSTRAINT jobs_unknown_only_from_events CHECK (
    source IN ('eventbridge', 'sns') OR
    (script_key IS NOT NULL AND compute_type IS NOT NULL AND vcpus IS NOT NULL AND
     memory IS NOT NULL AND gpus IS NOT NULL));

-- Jobs recorded before: the placeholders become NULL. 1 MiB is below any
-- memory AWS Batch runs a container with, so memory 1 was never reported;
-- such a job's event carried no resources at all, so its 1 vCPU, 0 GPUs and
-- compute type were not reported either.
UPDATE jobs SET script_key = NULL
    WHERE source IN ('eventbridge', 'sns') AND script_key = 'unknown';
UPDATE jobs SET vcpus = NULL, memory = NULL, gpus = NULL, compute_type = NULL
    WHERE source IN ('eventbridge', 'sns') AND memory = 1 AND vcpus = 1 AND gpus = 0;
UPDATE jobs SET memory = NULL
    WHERE source IN ('eventbridge', 'sns') AND memory = 1;
UPDATE jobs SET metadata = jsonb_strip_nulls(metadata)
    WHERE source IN ('eventbridge', 'sns') AND metadata <> jsonb_strip_nulls(metadata);

-- As in 0004, but storing NULL for what the event did not carry, and filling
-- it in from a later event that does.
CREATE OR REPLACE FUNCTION mlgw_apply_job_event(
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
        VALUES (p_new_id, p_status, p_script_key,
                CASE WHEN p_gpus > 0 THEN 'gpu' WHEN p_gpus = 0 THEN 'cpu' END,
                p_vcpus, p_memory, p_gpus, 'batch',
                p_batch_job_id, p_output_uri, p_source,
                jsonb_strip_nulls(jsonb_build_object('batch_job_name', p_job_name,
                                                     'batch_job_queue', p_queue)),
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
                        -- what an earlier event of a job learnt of from events left unknown
                        script_key = coalesce(script_key, p_script_key),
                        compute_type = coalesce(compute_type, CASE WHEN p_gpus > 0 THEN 'gpu'
                                                                   WHEN p_gpus = 0 THEN 'cpu' END),
                        vcpus = coalesce(vcpus, p_vcpus),
                        memory = coalesce(memory, p_memory),
                        gpus = coalesce(gpus, p_gpus),
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
