"""Restarts the gateway's ECS service when RDS has rotated the database's master password.

The tasks read MLGW_DATABASE_PASSWORD from the RDS-managed secret when they start; after a
rotation the connections they already hold keep working, but new ones would be refused. A
forced new deployment replaces the tasks one by one (the service keeps its minimum healthy
percent), each starting with the new password.

Invoked by EventBridge with Secrets Manager's RotationSucceeded event (CloudTrail service
event) for that secret; anything else is ignored. Environment: CLUSTER, SERVICE, SECRET_ARN.
"""
from __future__ import annotations

import json
import logging
import os

log = logging.getLogger()
log.setLevel(logging.INFO)


def rotated_secret(event: dict) -> str | None:
    """The secret an EventBridge RotationSucceeded event names, or None for another event."""
    detail = event.get("detail") or {}
    if event.get("source") != "aws.secretsmanager" or detail.get("eventName") != "RotationSucceeded":
        return None
    extra = detail.get("additionalEventData") or {}
    return extra.get("SecretId") or extra.get("secretId")


def same_secret(named: str, arn: str) -> bool:
    """Secrets Manager events name a secret by ARN (with its random suffix) or by name."""
    return named == arn or arn.split(":secret:", 1)[-1].startswith(named.split(":secret:", 1)[-1])


def handle(event: dict, ecs, env: dict) -> dict:
    named = rotated_secret(event)
    if named is None or not same_secret(named, env["SECRET_ARN"]):
        log.info("ignored: %s", json.dumps({"source": event.get("source"), "secret": named}))
        return {"restarted": False}
    ecs.update_service(cluster=env["CLUSTER"], service=env["SERVICE"], forceNewDeployment=True)
    log.info("rotation of %s: new deployment of %s/%s", named, env["CLUSTER"], env["SERVICE"])
    return {"restarted": True}


def handler(event, context):  # pragma: no cover - the Lambda entry point
    import boto3

    return handle(event, boto3.client("ecs"), os.environ)
