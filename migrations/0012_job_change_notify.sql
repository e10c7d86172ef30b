-- Every change to what GET /jobs/{id} shows (the job row, its history, its
-- notifications) NOTIFYs mlgw_job with the job's id once the transaction
-- commits, so that each gateway's in-memory job cache (db/jobcache.c) drops
-- its copy. PostgreSQL folds identical notifications of one transaction into
-- one, so a transaction touching one job three ways sends one message.
CREATE FUNCTION mlgw_job_changed() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    job uuid;
BEGIN
    IF TG_TABLE_NAME = 'jobs' THEN
        job := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
    ELSE
        job := CASE WHEN TG_OP = 'DELETE' THEN OLD.job_id ELSE NEW.job_id END;
    END IF;
    PERFORM pg_notify('mlgw_job', job::text);
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
