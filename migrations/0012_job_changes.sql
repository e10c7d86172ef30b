-- What GET /jobs/{id} shows of a job (its row, history and notifications)
-- changed: one row per change, stamped with the writing transaction's id, so
-- that each gateway's in-memory job cache (db/jobcache.c) learns, by polling,
-- exactly which jobs changed between two of its snapshots, whatever wrote
-- them (a gateway, a worker, a callback, psql).
--
-- Not NOTIFY: PostgreSQL serializes the commits of notifying transactions
-- (a lock held until the commit record is flushed), so a NOTIFY in every
-- callback's transaction took callback ingest from about 970 to 270-510
-- events/s on the bench machine (bench/README.md). A row insert does not
-- serialize anything.
CREATE TABLE job_changes (
    xid    xid8 NOT NULL DEFAULT pg_current_xact_id(),
    job_id uuid NOT NULL
);
CREATE INDEX job_changes_xid ON job_changes (xid);

CREATE FUNCTION mlgw_job_changed() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    job uuid;
BEGIN
    IF TG_TABLE_NAME = 'jobs' THEN
        INSERT INTO job_changes (job_id) VALUES (OLD.id);
        RETURN NULL;
    END IF;
    job := CASE WHEN TG_OP = 'DELETE' THEN OLD.job_id ELSE NEW.job_id END;
    -- The job row itself written by this transaction: either a new job (in
    -- no cache) or an update, which jobs_changed has recorded already.
    IF TG_OP = 'INSERT' AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = job
                                    AND j.xmin = pg_current_xact_id()::xid) THEN
        RETURN NULL;
    END IF;
    INSERT INTO job_changes (job_id) VALUES (job);
    RETURN NULL;
END
$$;

-- A new job is in no cache: only its later changes matter.
CREATE TRIGGER jobs_changed AFTER UPDATE OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION mlgw_job_changed();
CREATE TRIGGER job_history_changed AFTER INSERT OR UPDATE OR DELETE ON job_history
    FOR EACH ROW EXECUTE FUNCTION mlgw_job_changed();
CREATE TRIGGER notifications_changed AFTER INSERT OR UPDATE OR DELETE ON notifications
    FOR EACH ROW EXECUTE FUNCTION mlgw_job_changed();
