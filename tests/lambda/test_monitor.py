"""The optional job monitor (deploy/modules/lambda/functions/monitor.py): a Batch Job State
Change event becomes one summary on the notifications topic (moto's SNS, fanned out to an
SQS queue so the test can read what was published)."""
from __future__ import annotations

import json

import pytest

import dispatcher
import monitor


def state_event(status, **detail):
    d = {"jobName": "model-training-1234", "jobId": "b-1", "status": status,
         "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/t-ml-gpu-job-queue",
         "statusReason": "Essential container in task exited",
         "tags": {"mlgw:job-id": "1234"},
         "container": {"exitCode": 0, "environment": [
             {"name": "SCRIPT_KEY", "value": "jobs/train.py"},
             {"name": "COMPUTE_TYPE", "value": "gpu"},
             {"name": "ML_OUTPUT_BUCKET", "value": "t-ml-output"},
             {"name": "OUTPUT_PREFIX", "value": "jobs/1234"}]}}
    d.update(detail)
    return {"version": "0", "id": "e-1", "source": "aws.batch",
            "detail-type": "Batch Job State Change", "time": "2026-01-01T00:00:00Z",
            "detail": d}


@pytest.fixture(scope="module")
def topic(boto):
    sns = boto.client("sns")
    sqs = boto.client("sqs")
    arn = sns.create_topic(Name="t-ml-notifications")["TopicArn"]
    url = sqs.create_queue(QueueName="t-ml-notifications-copy")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn,
                  Attributes={"RawMessageDelivery": "false"})
    return arn, url


def received(boto, url):
    out = boto.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=1).get("Messages", [])
    for m in out:
        boto.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in out]


def test_terminal_status_is_published(boto, topic):
    arn, url = topic
    clients = dispatcher.Clients(boto.client)
    out = monitor.handle(state_event("SUCCEEDED"), {"NOTIFY_TOPIC_ARN": arn}, clients)
    assert out["published"] is True
    [note] = received(boto, url)
    assert note["Subject"] == "ML job model-training-1234 SUCCEEDED"
    body = json.loads(note["Message"])
    assert body["job_id"] == "1234" and body["status"] == "SUCCEEDED"
    assert body["output"] == "s3://t-ml-output/jobs/1234/"
    assert body["script_key"] == "jobs/train.py" and body["exit_code"] == 0


def test_other_statuses_are_not(boto, topic):
    arn, url = topic
    clients = dispatcher.Clients(boto.client)
    for status in ("SUBMITTED", "RUNNABLE", "RUNNING"):
        assert monitor.handle(state_event(status), {"NOTIFY_TOPIC_ARN": arn},
                              clients)["published"] is False
    out = monitor.handle(state_event("RUNNING"),
                         {"NOTIFY_TOPIC_ARN": arn, "NOTIFY_STATUSES": "RUNNING"}, clients)
    assert out["published"] is True
    assert len(received(boto, url)) == 1


@pytest.mark.parametrize("event", [
    {}, {"source": "aws.ec2", "detail-type": "Batch Job State Change", "detail": {}},
    {"source": "aws.batch", "detail-type": "Batch Job State Change", "detail": {"jobId": "x"}},
    {"source": "aws.batch", "detail-type": "Batch Job State Change", "detail": "x"},
])
def test_malformed_events_raise(event, boto, topic):
    with pytest.raises(monitor.EventError):
        monitor.handle(event, {"NOTIFY_TOPIC_ARN": topic[0]}, dispatcher.Clients(boto.client))


def test_missing_topic_setting_raises():
    with pytest.raises(RuntimeError, match="NOTIFY_TOPIC_ARN"):
        monitor.handle(state_event("FAILED"), {}, dispatcher.Clients())
