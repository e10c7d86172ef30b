"""Prints, as a JSON array, the messages waiting in an SQS queue (moto).

Usage: sqs_receive.py ENDPOINT_URL QUEUE_URL
Each item: {"body": ..., "attributes": {name: string value}}.
"""
from __future__ import annotations

import json
import sys

import botocore.session


def main() -> int:
    url, queue = sys.argv[1], sys.argv[2]
    sqs = botocore.session.get_session().create_client(
        "sqs", region_name="us-east-1", endpoint_url=url,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    out = []
    for _ in range(5):
        got = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
        )
        for m in got.get("Messages", []):
            attrs = {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()}
            out.append({"body": m["Body"], "attributes": attrs})
        if out:
            break
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
