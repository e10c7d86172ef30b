"""Creates, in a moto server, the AWS resources the aws/ tests use.

Usage: moto_setup.py ENDPOINT_URL > resources.json

Batch compute environment, GPU and CPU job queues and a job definition;
an SNS trigger topic with an SQS queue subscribed (raw delivery, so the test
can read back exactly what was published); S3 buckets; a CloudWatch Logs
group and stream holding a few events. Prints their names and ARNs as JSON.
"""
from __future__ import annotations

import json
import sys
import time

import botocore.session

REGION = "us-east-1"


def client(session: botocore.session.Session, name: str, url: str):
    return session.create_client(
        name,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def main() -> int:
    url = sys.argv[1]
    s = botocore.session.get_session()
    iam, ec2, batch = client(s, "iam", url), client(s, "ec2", url), client(s, "batch", url)
    sns, sqs, s3, logs = (client(s, n, url) for n in ("sns", "sqs", "s3", "logs"))

    role = iam.create_role(
        RoleName="ml-batch-instance",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    iam.create_instance_profile(InstanceProfileName="ml-batch-instance")
    profile = iam.add_role_to_instance_profile(
        InstanceProfileName="ml-batch-instance", RoleName="ml-batch-instance"
    )
    profile = iam.get_instance_profile(InstanceProfileName="ml-batch-instance")["InstanceProfile"]["Arn"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="ml", Description="ml", VpcId=vpc)["GroupId"]
    ce = batch.create_compute_environment(
        computeEnvironmentName="ml-ce",
        type="MANAGED",
        state="ENABLED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 64,
            "instanceTypes": ["optimal"],
            "subnets": [subnet],
            "securityGroupIds": [sg],
            "instanceRole": profile,
        },
        serviceRole=role,
    )["computeEnvironmentArn"]
    queues = {}
    for name in ("ml-gpu-job-queue", "ml-cpu-job-queue"):
        queues[name] = batch.create_job_queue(
            jobQueueName=name,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
        )["jobQueueArn"]
    jobdef = batch.register_job_definition(
        jobDefinitionName="ml-job",
        type="container",
        containerProperties={
            "image": "busybox",
            "command": ["true"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "512"},
            ],
        },
    )["jobDefinitionArn"]

    topic = sns.create_topic(Name="ml-trigger-events")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="ml-trigger-tap")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )

    for bucket in ("ml-inputs", "ml-outputs"):
        s3.create_bucket(Bucket=bucket)

    logs.create_log_group(logGroupName="/aws/batch/ml-jobs")
    logs.create_log_stream(logGroupName="/aws/batch/ml-jobs", logStreamName="ml-job/default/abc")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName="/aws/batch/ml-jobs",
        logStreamName="ml-job/default/abc",
        logEvents=[{"timestamp": now + i, "message": f"line {i}"} for i in range(5)],
    )

    json.dump(
        {
            "region": REGION,
            "gpu_queue": queues["ml-gpu-job-queue"],
            "cpu_queue": queues["ml-cpu-job-queue"],
            "job_definition": jobdef,
            "topic_arn": topic,
            "tap_queue_url": queue_url,
            "log_group": "/aws/batch/ml-jobs",
            "log_stream": "ml-job/default/abc",
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
