-- Pipelines: named, versioned DAGs of steps (each step a job request), and
-- their runs. A run's steps become ordinary jobs (jobs.pipeline_run_id,
-- jobs.step), dispatched through the same outbox as any other job.
--
-- The graph is advanced here, by a trigger on jobs: when a job of a run
-- reaches a terminal status, in that same transaction its step is resolved,
-- the jobs of every step that became ready are inserted with their outbox
-- rows, dependents of a failed step are skipped and the run ends when no step
-- is left. Whatever moved the job (the local executor, a callback, the
-- reconciler, a cancel, a dispatch that gave up) therefore advances the run
-- atomically: a crash between the two cannot lose a step or start one twice,
-- and gateways sharing the database serialise on the run's row.

-- A UUIDv7 (RFC 9562), as common/id.c makes them: 48 bits of Unix
-- milliseconds, version 7, variant 10, the rest random.
CREATE FUNCTION mlgw_uuidv7() RETURNS uuid
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    b bytea := uuid_send(gen_random_uuid());
    ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
BEGIN
    b := overlay(b PLACING substring(int8send(ms) FROM 3 FOR 6) FROM 1 FOR 6);
    b := set_byte(b, 6, (get_byte(b, 6) & 15) | 112);
    b := set_byte(b, 8, (get_byte(b, 8) & 63) | 128);
    RETURN encode(b, 'hex')::uuid;
END
$$;

CREATE TABLE pipelines (
    id             uuid NOT NULL UNIQUE DEFAULT mlgw_uuidv7(), -- list order and cursor
    team           text NOT NULL,
    name           text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    latest_version integer NOT NULL DEFAULT 1,
    api_key_id     text REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team, name)
);
CREATE INDEX pipelines_name ON pipelines (name);

-- Versions are immutable: rows are only ever inserted.
CREATE TABLE pipeline_versions (
    team       text NOT NULL,
    name       text NOT NULL,
    version    integer NOT NULL CHECK (version >= 1),
    definition jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    api_key_id text REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team, name, version),
    FOREIGN KEY (team, name) REFERENCES pipelines (team, name) ON DELETE CASCADE
);

CREATE TABLE pipeline_runs (
    id               uuid PRIMARY KEY,
    team             text NOT NULL,
    pipeline         text NOT NULL,
    version          integer NOT NULL,
    status           text NOT NULL DEFAULT 'QUEUED'
                     CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    cancel_requested boolean NOT NULL DEFAULT false,
    metadata         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    notify           jsonb NOT NULL DEFAULT '{"emails": [], "webhooks": []}',
    dispatch         text,
    notify_topic     text, -- the SNS topic the run's summary goes to, as configured at its start
    output_base      text NOT NULL, -- a job's output_uri is output_base || id || '/'
    api_key_id       text REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    stopped_at       timestamptz,
    FOREIGN KEY (team, pipeline, version)
        REFERENCES pipeline_versions (team, name, version) ON DELETE CASCADE
);
CREATE INDEX pipeline_runs_pipeline ON pipeline_runs (team, pipeline, id DESC);
CREATE INDEX pipeline_runs_active ON pipeline_runs (team, pipeline)
    WHERE status IN ('QUEUED', 'RUNNING');

-- One row per step of a run. spec is the step's job request with defaults,
-- the run's env, args and dispatch resolved; fanout lists one entry per job
-- ({} for a plain step; array_index or matrix, and the env they add).
CREATE TABLE pipeline_run_steps (
    run_id     uuid NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,
    name       text NOT NULL,
    ord        integer NOT NULL,
    status     text NOT NULL DEFAULT 'WAITING'
               CHECK (status IN ('WAITING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED',
                                 'CANCELLED')),
    depends_on text[] NOT NULL DEFAULT '{}',
    spec       jsonb NOT NULL,
    fanout     jsonb NOT NULL CHECK (jsonb_typeof(fanout) = 'array'
                                     AND jsonb_array_length(fanout) >= 1),
    started_at timestamptz,
    stopped_at timestamptz,
    PRIMARY KEY (run_id, name)
);

-- Every change of a run or of one of its steps (step NULL: the run), oldest first.
CREATE TABLE pipeline_run_history (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id uuid NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,
    step   text,
    status text NOT NULL,
    at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    reason text
);
CREATE INDEX pipeline_run_history_run ON pipeline_run_history (run_id, id);

-- One message per (run, channel, recipient) when the run ends.
CREATE TABLE pipeline_run_notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          uuid NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,
    status          text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'webhook', 'sns')),
    recipient       text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text,
    error_class     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, channel, recipient)
);
CREATE INDEX pipeline_run_notifications_due ON pipeline_run_notifications (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE TRIGGER pipeline_run_notifications_notify AFTER INSERT ON pipeline_run_notifications
    FOR EACH STATEMENT EXECUTE FUNCTION mlgw_notifications_notify();

ALTER TABLE jobs ADD COLUMN pipeline_run_id uuid REFERENCES pipeline_runs (id) ON DELETE SET NULL;
ALTER TABLE jobs ADD COLUMN step text;
ALTER TABLE jobs ADD COLUMN array_index integer;
ALTER TABLE jobs ADD COLUMN matrix jsonb;
CREATE INDEX jobs_pipeline_run ON jobs (pipeline_run_id, step) WHERE pipeline_run_id IS NOT NULL;

-- Jobs the engine creates record 'pipeline' as the source of their first row.
ALTER TABLE job_history DROP CONSTRAINT job_history_source_check;
ALTER TABLE job_history ADD CONSTRAINT job_history_source_check CHECK (source IN (
    'api', 'dispatcher', 'eventbridge', 'sns', 'reconciler', 'local', 'pipeline'));

-- The job resource gains pipeline_run_id and step, after team; the rest as in 0006.
CREATE OR REPLACE FUNCTION mlgw_job_json(j jobs, history json) RETURNS json
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    b json := json_build_object(
        'id', j.id,
        'team', j.team,
        'pipeline_run_id', j.pipeline_run_id,
        'step', j.step,
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

-- Inserts the jobs of step s of run r (one per fanout entry) with their first
-- history row and dispatch outbox row, and marks the step RUNNING. A step with
-- parents gets PARENT_OUTPUT_URIS: step name → its jobs' output URIs, in
-- array or matrix order.
CREATE FUNCTION mlgw_pipeline_start_step(r pipeline_runs, s pipeline_run_steps) RETURNS void
    LANGUAGE plpgsql
AS $$
DECLARE
    parents jsonb := '{}';
BEGIN
    IF cardinality(s.depends_on) > 0 THEN
        SELECT jsonb_build_object('PARENT_OUTPUT_URIS', jsonb_object_agg(p.step, p.uris)::text)
            INTO parents
            FROM (SELECT j.step, jsonb_agg(j.output_uri ORDER BY j.array_index, j.id) AS uris
                  FROM jobs j WHERE j.pipeline_run_id = r.id AND j.step = ANY (s.depends_on)
                  GROUP BY j.step) p;
    END IF;
    WITH n AS (
        SELECT mlgw_uuidv7() AS id, f.entry, f.ord - 1 AS idx
        FROM jsonb_array_elements(s.fanout) WITH ORDINALITY AS f(entry, ord)),
    j AS (
        INSERT INTO jobs (id, status, script_key, compute_type, vcpus, memory, gpus, args, env,
                          timeout_seconds, max_attempts, operation, metadata, notify, dispatch,
                          output_uri, source, api_key_id, team, pipeline_run_id, step,
                          array_index, matrix)
        SELECT n.id, 'QUEUED', s.spec ->> 'script_key', s.spec ->> 'compute_type',
               (s.spec ->> 'vcpus')::integer, (s.spec ->> 'memory')::integer,
               (s.spec ->> 'gpus')::integer, s.spec -> 'args',
               (s.spec -> 'env') || coalesce(n.entry -> 'env', '{}') || parents,
               (s.spec ->> 'timeout_seconds')::integer, (s.spec ->> 'max_attempts')::integer,
               s.spec ->> 'operation', s.spec -> 'metadata', s.spec -> 'notify',
               s.spec ->> 'dispatch', r.output_base || n.id || '/', 'pipeline', r.api_key_id,
               r.team, r.id, s.name, (n.entry ->> 'array_index')::integer, n.entry -> 'matrix'
        FROM n ORDER BY n.idx
        RETURNING id, dispatch, created_at),
    h AS (
        INSERT INTO job_history (job_id, status, source, at, reason)
        SELECT id, 'QUEUED', 'pipeline', created_at, 'step ' || s.name || ' of run ' || r.id
        FROM j)
    INSERT INTO dispatch_outbox (job_id, action, target, created_at)
    SELECT id, 'submit', dispatch, created_at FROM j;

    UPDATE pipeline_run_steps SET status = 'RUNNING', started_at = now()
        WHERE run_id = r.id AND name = s.name;
    INSERT INTO pipeline_run_history (run_id, step, status) VALUES (r.id, s.name, 'RUNNING');
END
$$;

-- Starts every WAITING step of run whose parents have all SUCCEEDED.
CREATE FUNCTION mlgw_pipeline_start_ready(run uuid) RETURNS integer
    LANGUAGE plpgsql
AS $$
DECLARE
    r pipeline_runs%ROWTYPE;
    s pipeline_run_steps%ROWTYPE;
    started integer := 0;
BEGIN
    SELECT * INTO r FROM pipeline_runs WHERE id = run;
    FOR s IN SELECT w.* FROM pipeline_run_steps w
             WHERE w.run_id = run AND w.status = 'WAITING'
               AND NOT EXISTS (SELECT 1 FROM pipeline_run_steps d
                               WHERE d.run_id = run AND d.name = ANY (w.depends_on)
                                 AND d.status <> 'SUCCEEDED')
             ORDER BY w.ord
    LOOP
        PERFORM mlgw_pipeline_start_step(r, s);
        started := started + 1;
    END LOOP;
    RETURN started;
END
$$;

-- Ends run when none of its steps is waiting or running: SUCCEEDED when
-- every step did, CANCELLED when a user cancelled it (or a step's jobs were
-- cancelled and none failed), FAILED otherwise; one notification row per
-- recipient of the run's and its pipeline version's notify, and the SNS
-- summary topic.
CREATE FUNCTION mlgw_pipeline_maybe_end(run uuid) RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    r pipeline_runs%ROWTYPE;
    fin text;
    def_notify jsonb;
BEGIN
    SELECT * INTO r FROM pipeline_runs WHERE id = run;
    IF r.status IN ('SUCCEEDED', 'FAILED', 'CANCELLED') THEN
        RETURN r.status;
    END IF;
    IF EXISTS (SELECT 1 FROM pipeline_run_steps
               WHERE run_id = run AND status IN ('WAITING', 'RUNNING')) THEN
        RETURN r.status;
    END IF;
    SELECT CASE WHEN r.cancel_requested THEN 'CANCELLED'
                WHEN bool_and(status = 'SUCCEEDED') THEN 'SUCCEEDED'
                WHEN bool_or(status = 'FAILED') THEN 'FAILED'
                ELSE 'CANCELLED' END
        INTO fin FROM pipeline_run_steps WHERE run_id = run;
    UPDATE pipeline_runs SET status = fin, stopped_at = now(), updated_at = now(),
                             started_at = coalesce(started_at, now())
        WHERE id = run;
    INSERT INTO pipeline_run_history (run_id, status) VALUES (run, fin);

    SELECT v.definition -> 'notify' INTO def_notify FROM pipeline_versions v
        WHERE v.team = r.team AND v.name = r.pipeline AND v.version = r.version;
    INSERT INTO pipeline_run_notifications (run_id, status, channel, recipient)
    SELECT run, fin, c.channel, c.recipient
    FROM (SELECT 'email' AS channel, jsonb_array_elements_text(n -> 'emails') AS recipient
          FROM (VALUES (r.notify), (def_notify)) AS x(n) WHERE jsonb_typeof(n -> 'emails') = 'array'
          UNION
          SELECT 'webhook', jsonb_array_elements_text(n -> 'webhooks')
          FROM (VALUES (r.notify), (def_notify)) AS x(n)
          WHERE jsonb_typeof(n -> 'webhooks') = 'array'
          UNION
          SELECT 'sns', r.notify_topic WHERE coalesce(r.notify_topic, '') <> '') c
    ON CONFLICT DO NOTHING;
    RETURN fin;
END
$$;

-- The trigger: a job of a run changed status.
CREATE FUNCTION mlgw_pipeline_job_changed() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    r pipeline_runs%ROWTYPE;
    n_total integer;
    n_done integer;
    n_ok integer;
    n_failed integer;
    st text;
BEGIN
    SELECT * INTO r FROM pipeline_runs WHERE id = NEW.pipeline_run_id FOR UPDATE;
    IF r.id IS NULL OR r.status IN ('SUCCEEDED', 'FAILED', 'CANCELLED') THEN
        RETURN NULL;
    END IF;
    IF r.status = 'QUEUED' AND mlgw_status_rank(NEW.status) >= 6 THEN
        UPDATE pipeline_runs SET status = 'RUNNING', started_at = now(), updated_at = now()
            WHERE id = r.id;
        INSERT INTO pipeline_run_history (run_id, status) VALUES (r.id, 'RUNNING');
    END IF;
    IF mlgw_status_rank(NEW.status) < 7 THEN
        RETURN NULL;
    END IF;

    SELECT count(*), count(*) FILTER (WHERE mlgw_status_rank(status) = 7),
           count(*) FILTER (WHERE status = 'SUCCEEDED'),
           count(*) FILTER (WHERE status IN ('FAILED', 'DISPATCH_FAILED'))
        INTO n_total, n_done, n_ok, n_failed
        FROM jobs WHERE pipeline_run_id = r.id AND step = NEW.step;
    IF n_done < n_total THEN
        RETURN NULL;
    END IF;
    st := CASE WHEN n_ok = n_total THEN 'SUCCEEDED' WHEN n_failed > 0 THEN 'FAILED'
               ELSE 'CANCELLED' END;
    UPDATE pipeline_run_steps SET status = st, stopped_at = now()
        WHERE run_id = r.id AND name = NEW.step AND status = 'RUNNING';
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO pipeline_run_history (run_id, step, status, reason)
    VALUES (r.id, NEW.step, st, CASE WHEN st = 'SUCCEEDED' THEN NULL
                                     ELSE n_failed || ' of ' || n_total || ' jobs failed' END);
    UPDATE pipeline_runs SET updated_at = now() WHERE id = r.id;

    IF st = 'SUCCEEDED' THEN
        IF NOT r.cancel_requested THEN
            PERFORM mlgw_pipeline_start_ready(r.id);
        END IF;
    ELSE
        WITH RECURSIVE dep(name) AS (
            SELECT NEW.step
            UNION
            SELECT c.name FROM pipeline_run_steps c JOIN dep ON dep.name = ANY (c.depends_on)
            WHERE c.run_id = r.id)
        , skipped AS (
            UPDATE pipeline_run_steps SET status = 'SKIPPED', stopped_at = now()
            WHERE run_id = r.id AND status = 'WAITING' AND name IN (SELECT name FROM dep)
            RETURNING name)
        INSERT INTO pipeline_run_history (run_id, step, status, reason)
        SELECT r.id, name, 'SKIPPED', 'step ' || NEW.step || ' ended ' || st FROM skipped;
    END IF;
    PERFORM mlgw_pipeline_maybe_end(r.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_pipeline_advance AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (NEW.pipeline_run_id IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION mlgw_pipeline_job_changed();

-- A step's job notifies its own notify only (the step's, if any), not the
-- configured global list nor the SNS topic: a run's end is announced once,
-- to the run's and the pipeline's recipients (pipeline_run_notifications).
CREATE FUNCTION mlgw_pipeline_job_notification_filter() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    own jsonb;
BEGIN
    SELECT j.notify INTO own FROM jobs j
        WHERE j.id = NEW.job_id AND j.pipeline_run_id IS NOT NULL;
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    IF (NEW.channel = 'email' AND coalesce(own -> 'emails', '[]') ? NEW.recipient)
       OR (NEW.channel = 'webhook' AND coalesce(own -> 'webhooks', '[]') ? NEW.recipient) THEN
        RETURN NEW;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER notifications_pipeline_filter BEFORE INSERT ON notifications
    FOR EACH ROW EXECUTE FUNCTION mlgw_pipeline_job_notification_filter();

-- The run resource of API.md; history (a JSON array) appended when not NULL.
CREATE FUNCTION mlgw_run_json(r pipeline_runs, with_history boolean) RETURNS json
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    steps json;
    hist json;
    b json;
BEGIN
    SELECT coalesce(json_agg(json_build_object(
               'name', s.name, 'status', s.status, 'depends_on', to_json(s.depends_on),
               'started_at', mlgw_ts(s.started_at), 'stopped_at', mlgw_ts(s.stopped_at),
               'jobs', (SELECT coalesce(json_agg(CASE
                            WHEN j.array_index IS NOT NULL THEN json_build_object(
                                'id', j.id, 'status', j.status, 'array_index', j.array_index)
                            WHEN j.matrix IS NOT NULL THEN json_build_object(
                                'id', j.id, 'status', j.status, 'matrix', j.matrix)
                            ELSE json_build_object('id', j.id, 'status', j.status) END
                            ORDER BY j.array_index, j.id), '[]'::json)
                        FROM jobs j WHERE j.pipeline_run_id = r.id AND j.step = s.name))
               ORDER BY s.ord), '[]'::json)
        INTO steps FROM pipeline_run_steps s WHERE s.run_id = r.id;
    IF with_history THEN
        SELECT coalesce(json_agg(json_build_object(
                   'status', h.status, 'step', h.step, 'at', mlgw_ts(h.at), 'reason', h.reason)
                   ORDER BY h.id), '[]'::json)
            INTO hist FROM pipeline_run_history h WHERE h.run_id = r.id;
    END IF;
    b := json_build_object(
        'id', r.id, 'team', r.team, 'pipeline', r.pipeline, 'version', r.version,
        'status', r.status, 'created_at', mlgw_ts(r.created_at),
        'started_at', mlgw_ts(r.started_at), 'stopped_at', mlgw_ts(r.stopped_at),
        'metadata', r.metadata, 'notify', r.notify, 'dispatch', r.dispatch,
        'steps', steps);
    IF hist IS NULL THEN
        RETURN b;
    END IF;
    RETURN (left(b::text, -1) || ',"history":' || hist::text || '}')::json;
END
$$;

-- A definition as the API shows it.
CREATE FUNCTION mlgw_pipeline_json(v pipeline_versions, p pipelines) RETURNS json
    LANGUAGE sql STABLE
    RETURN (jsonb_build_object('name', v.name, 'team', v.team, 'version', v.version,
                               'latest_version', p.latest_version,
                               'created_at', mlgw_ts(p.created_at),
                               'version_created_at', mlgw_ts(v.created_at))
            || v.definition)::json;
