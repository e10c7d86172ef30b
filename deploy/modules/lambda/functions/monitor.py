"""The job monitor (optional, ``enable_monitor``): Batch job state change -> notifications.

An EventBridge rule on ``aws.batch`` / ``Batch Job State Change`` for this deployment's job
queues invokes this function; for every status in ``NOTIFY_STATUSES`` (default SUCCEEDED and
FAILED) it publishes one summary to the notifications topic, whose email subscriptions are
the ``notification_emails`` variable. Off by default: where the gateway receives these events
it sends the notifications itself, and both would send two of each.

A malformed event raises: the asynchronous invocation is retried and then lands in the
monitor's dead-letter queue (the ``monitor_dlq_url`` output).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from dispatcher import Clients

LOG = logging.getLogger("monitor")
LOG.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
_CLIENTS = Clients()


class EventError(ValueError):
    """An event this function cannot read."""


def summarise(event: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(status, subject, body) of one Batch Job State Change event."""
    if event.get("source") != "aws.batch" or event.get("detail-type") != "Batch Job State Change":
        raise EventError("not a Batch Job State Change event")
    detail = event.get("detail")
    if not isinstance(detail, Mapping) or not isinstance(detail.get("status"), str) \
            or not isinstance(detail.get("jobId"), str):
        raise EventError("the event's detail has no jobId and status")
    status = detail["status"]
    name = str(detail.get("jobName", detail["jobId"]))
    env = {}
    container = detail.get("container")
    if isinstance(container, Mapping):
        for item in container.get("environment") or []:
            if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                env[item["name"]] = item.get("value")
    tags = detail.get("tags") if isinstance(detail.get("tags"), Mapping) else {}
    body = {
        "job_id": tags.get("mlgw:job-id") or env.get("JOB_ID"),
        "batch_job_id": detail["jobId"],
        "job_name": name,
        "status": status,
        "status_reason": detail.get("statusReason"),
        "job_queue": detail.get("jobQueue"),
        "script_key": env.get("SCRIPT_KEY"),
        "compute_type": env.get("COMPUTE_TYPE"),
        "output": (f"s3://{env['ML_OUTPUT_BUCKET']}/{env['OUTPUT_PREFIX']}/"
                   if env.get("ML_OUTPUT_BUCKET") and env.get("OUTPUT_PREFIX") else None),
        "exit_code": (container or {}).get("exitCode") if isinstance(container, Mapping) else None,
        "time": event.get("time"),
    }
    subject = f"ML job {name} {status}"[:100]  # SNS subjects stop at 100 characters
    return status, subject, body


def handle(event: Mapping[str, Any], env: Mapping[str, str], clients: Any) -> dict[str, Any]:
    topic = env.get("NOTIFY_TOPIC_ARN")
    if not topic:
        raise RuntimeError("monitor settings missing: NOTIFY_TOPIC_ARN")
    wanted = {s.strip() for s in env.get("NOTIFY_STATUSES", "SUCCEEDED,FAILED").split(",")}
    status, subject, body = summarise(event)
    if status not in wanted:
        return {"published": False, "status": status}
    text = json.dumps(body, indent=2, sort_keys=True)
    out = clients.get("sns").publish(TopicArn=topic, Subject=subject, Message=text)
    LOG.info(json.dumps({"msg": "notified", "status": status, "job": body["batch_job_id"],
                         "message_id": out.get("MessageId")}))
    return {"published": True, "status": status, "message_id": out.get("MessageId")}


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``monitor.handler``)."""
    return handle(event, os.environ, _CLIENTS)
