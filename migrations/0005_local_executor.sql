-- The local executor (dispatch 'local'): which executor owns a job, so that a
-- gateway restarted after a crash finds the jobs its predecessor was running,
-- and when the job joined that executor's first-in first-out queue.
ALTER TABLE jobs
    ADD COLUMN local_node text,             -- "<host>:<MLGW_LOCAL_ROOT>" of the owning executor
    ADD COLUMN local_queued_at timestamptz; -- when it (last) became RUNNABLE there

-- The executor's queue, in the order jobs start.
CREATE INDEX jobs_local_runnable ON jobs (local_node, local_queued_at, id)
    WHERE dispatch = 'local' AND status = 'RUNNABLE';

-- What an executor runs (crash recovery looks these up at start).
CREATE INDEX jobs_local_active ON jobs (local_node)
    WHERE dispatch = 'local' AND status IN ('STARTING', 'RUNNING');
