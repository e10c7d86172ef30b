-- The local executor (dispatch 'local'): which executor owns a job, when it
-- joined that executor's first-in first-out queue, and the session id of its
-- running process tree, so that a gateway restarted after a crash can find
-- and stop what its predecessor left running before the job is retried.
ALTER TABLE jobs
    ADD COLUMN local_node text,         -- "<host>:<MLGW_LOCAL_ROOT>" of the owning executor
    ADD COLUMN local_queued_at timestamptz, -- when it (last) became RUNNABLE there
    ADD COLUMN local_pid integer;       -- session id of the running attempt, if any

-- The executor's queue, in the order jobs start.
CREATE INDEX jobs_local_runnable ON jobs (local_node, local_queued_at, id)
    WHERE dispatch = 'local' AND status = 'RUNNABLE';

-- What an executor runs (crash recovery looks these up at start).
CREATE INDEX jobs_local_active ON jobs (local_node)
    WHERE dispatch = 'local' AND status IN ('STARTING', 'RUNNING');
