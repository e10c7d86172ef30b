"""Schemathesis hooks for tests/schemathesis/run.py.

POST /events/sns takes SNS's own envelope, signed by SNS: a generated string can
never carry a valid signature. So every body generated as valid for that
operation is turned, just before it is sent, into an SNS Notification signed
(SignatureVersion 2, SHA256withRSA) with the test signing certificate run.py made
and serves, whose Message is an AWS Batch "Batch Job State Change" event. The
event is derived from the generated text, so that the run stays reproducible
from its seed: the text picks the status and the Batch job (a handful of ids, so
that later events find earlier jobs), and rides along as the statusReason.
Bodies generated as invalid are sent as they are.

POST /jobs: an Idempotency-Key used again with a different body is 422, as the
spec says, but which keys were used before is state the generator cannot see
(it draws the same short keys again and again). A valid request's key is made
its own by a suffix from the body, so that the same key with the same body
still replays, and a different body never meets an earlier request's key.

With MLGW_CONTRACT_LOG set (as CTest sets it for the integration tests), every
exchange is appended there too, in the format of tests/harness, so that
tests/contract/check_contract.py checks these answers against openapi.yaml
with its own validator as well.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import urllib.parse
import uuid
from typing import Any

import schemathesis
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
_key = None


def _signing_key() -> Any:
    global _key
    if _key is None:
        with open(os.environ["MLGW_ST_SNS_KEY"], "rb") as f:
            _key = serialization.load_pem_private_key(f.read(), password=None)
    return _key


def string_to_sign(m: dict[str, str]) -> str:
    """What SNS signs for a Notification: these fields, in this order."""
    out = []
    for k in ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"):
        if k in m:
            out.append(f"{k}\n{m[k]}\n")
    return "".join(out)


def batch_event(seed_text: str) -> dict[str, Any]:
    h = hashlib.sha256(seed_text.encode("utf-8", "surrogatepass")).digest()
    batch_id = f"schemathesis-batch-{h[0] % 6}"
    status = STATUSES[h[1] % len(STATUSES)]
    detail: dict[str, Any] = {
        "jobId": batch_id,
        "jobName": f"external-{batch_id}",
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/ml-cpu-job-queue",
        "status": status,
        # No NUL and no lone surrogate: a valid event holds neither (the spec's JsonText).
        "statusReason": "".join(c for c in seed_text[:200]
                                if c != "\0" and not 0xD800 <= ord(c) <= 0xDFFF),
        "attempts": [],
    }
    if h[2] % 2:
        detail["container"] = {"vcpus": 1 + h[3] % 8, "memory": 512 * (1 + h[4] % 8),
                               "logStreamName": f"ml-job/default/{batch_id}"}
    if status in ("SUCCEEDED", "FAILED"):
        detail["container"] = {**detail.get("container", {}), "exitCode": 0 if status == "SUCCEEDED" else 1}
    return {"version": "0", "id": str(uuid.UUID(bytes=h[:16])), "detail-type": "Batch Job State Change",
            "source": "aws.batch", "account": "123456789012", "region": "us-east-1",
            "time": "2026-11-28T20:01:50Z", "detail": detail}


def signed_notification(seed_text: str) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    m = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": os.environ["MLGW_ST_SNS_TOPIC"],
        "Message": json.dumps(batch_event(seed_text)),
        "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "SignatureVersion": "2",
        "SigningCertURL": os.environ["MLGW_ST_SNS_CERT_URL"],
    }
    sig = _signing_key().sign(string_to_sign(m).encode(), padding.PKCS1v15(), hashes.SHA256())
    m["Signature"] = base64.b64encode(sig).decode()
    return json.dumps(m)


def _idempotency_key(key: str, body: Any) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8", "surrogatepass"))
    return f"{key[:230]}.{digest.hexdigest()[:24]}"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    meta = case.meta
    if meta is not None and not meta.generation.mode.is_positive:
        return
    where = (case.operation.method.upper(), case.operation.path)
    if where == ("POST", "/events/sns") and isinstance(case.body, str):
        case.body = signed_notification(case.body)
    elif where == ("POST", "/jobs") and case.headers and "Idempotency-Key" in case.headers:
        key = case.headers["Idempotency-Key"]
        if isinstance(key, str):
            case.headers["Idempotency-Key"] = _idempotency_key(key, case.body)


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    path = os.environ.get("MLGW_CONTRACT_LOG")
    if not path:
        return
    url = urllib.parse.urlsplit(response.request.url)
    ct = response.headers.get("content-type")
    rec = {
        "method": response.request.method,
        "path": url.path + (f"?{url.query}" if url.query else ""),
        "status": response.status_code,
        "content_type": ct[0] if ct else None,
        "body": response.content.decode("utf-8", "replace"),
    }
    if rec["content_type"] is None:
        del rec["content_type"]
    # One write per line: the integration tests append to the same file.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(rec) + "\n").encode())
    finally:
        os.close(fd)
