"""Writes log events to a CloudWatch Logs stream in moto, for the logs route's tests.

Usage: logs_put.py ENDPOINT_URL GROUP STREAM MESSAGE...

Creates the group (when missing) and the stream, then puts one event per
MESSAGE, one second apart and ending a minute ago (CloudWatch refuses events
older than 14 days). Prints the events' timestamps (milliseconds) as a JSON
array, so the caller can check the times it is served.
"""
from __future__ import annotations

import json
import sys
import time

import botocore.session


def main() -> int:
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    url, group, stream, messages = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    logs = botocore.session.get_session().create_client(
        "logs", region_name="us-east-1", endpoint_url=url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(time.time() * 1000) - 60_000 - 1000 * len(messages)
    stamps = [start + 1000 * i for i in range(len(messages))]
    got = logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": t, "message": m} for t, m in zip(stamps, messages)],
    )
    if got.get("rejectedLogEventsInfo"):
        print(f"rejected: {got['rejectedLogEventsInfo']}", file=sys.stderr)
        return 1
    json.dump(stamps, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
