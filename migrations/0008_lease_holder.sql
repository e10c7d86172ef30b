-- A claim on the dispatch outbox records the claiming gateway's presence key
-- (jobs/presence.c: a session-level advisory lock that PostgreSQL releases
-- the moment that gateway's session ends). A claim whose holder no longer
-- holds its lock is abandoned: another dispatcher takes it at once instead
-- of waiting for lease_until. Claims without a holder keep the lease rule.

ALTER TABLE dispatch_outbox ADD COLUMN lease_holder bigint;

-- Whether the gateway holding key is alive: its advisory lock is granted.
-- A bigint advisory lock shows in pg_locks as classid (high 32 bits), objid
-- (low 32 bits) and objsubid 1.
CREATE FUNCTION mlgw_holder_alive(key bigint) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN EXISTS (SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                     AND l.classid = ((key >> 32) & 4294967295)::oid
                     AND l.objid = (key & 4294967295)::oid);
