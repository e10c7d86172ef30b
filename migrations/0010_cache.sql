-- The model cache (GET /cache, POST /cache/warm, POST /cache/cleanup).
--
-- A gateway's background scanner walks its cache root and stores what it
-- found: one cache_scans row per root (the totals of the last scan) and one
-- cache_entries row per top-level entry (one model). An entry keeps the time
-- it was first seen across scans; entries no longer on disk are deleted.
--
-- Every job whose operation works on the cache (warm-cache, cleanup-cache)
-- gets a cache_operations row, whether it came through /cache, the size
-- policy or a plain POST /jobs (the seed's message): the trigger below adds
-- the row the /cache path did not add itself. freed_bytes is read from a
-- finished cleanup job's summary.json.

CREATE TABLE cache_scans (
    root        text PRIMARY KEY,
    scanned_at  timestamptz NOT NULL,
    duration_ms integer NOT NULL,
    bytes       bigint NOT NULL,
    files       bigint NOT NULL,
    complete    boolean NOT NULL, -- false: the scan stopped at its file or time bound
    error       text              -- why the root could not be read, if it could not
);

CREATE TABLE cache_entries (
    root          text NOT NULL,
    name          text NOT NULL,
    bytes         bigint NOT NULL,
    files         bigint NOT NULL,
    last_used_at  timestamptz,    -- newest access, change or job report seen
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (root, name)
);

CREATE TABLE cache_operations (
    job_id       uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE
                     DEFERRABLE INITIALLY DEFERRED,
    operation    text NOT NULL CHECK (operation IN ('warm-cache', 'cleanup-cache')),
    origin       text NOT NULL CHECK (origin IN ('api', 'policy', 'job')),
    request      jsonb NOT NULL DEFAULT '{}',
    freed_bytes  bigint,
    summary_read boolean NOT NULL DEFAULT false, -- summary.json looked at (or given up on)
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX cache_operations_created ON cache_operations (created_at DESC);

CREATE FUNCTION mlgw_cache_operation_record() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cache_operations (job_id, operation, origin)
    VALUES (NEW.id, NEW.operation, 'job') ON CONFLICT (job_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_cache_operation AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.operation IN ('warm-cache', 'cleanup-cache'))
    EXECUTE FUNCTION mlgw_cache_operation_record();
