-- What a job's owner sees of a failed notification is a class (refused,
-- timeout, tls, dns, http_<status>, unavailable, rejected, error), never the
-- transport's text: that named internal hosts and ports, so webhooks could
-- map a network. The text stays in last_error and the log, for operators.
ALTER TABLE notifications ADD COLUMN error_class text;

-- Rows failed before this migration kept only the text: show a class.
UPDATE notifications SET error_class = 'error' WHERE last_error IS NOT NULL;

CREATE OR REPLACE FUNCTION mlgw_job_notifications(job uuid) RETURNS json
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN (SELECT coalesce(json_agg(json_build_object(
                'status', n.status, 'channel', n.channel, 'recipient', n.recipient,
                'state', CASE WHEN n.sent_at IS NOT NULL THEN 'sent'
                              WHEN n.failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END,
                'attempts', n.attempts, 'error', n.error_class,
                'sent_at', mlgw_ts(n.sent_at)) ORDER BY n.id), '[]'::json)
            FROM notifications n WHERE n.job_id = job);
END
$$;
