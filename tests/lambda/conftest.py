"""Fixtures of the Lambda tests: moto in server mode on loopback, and the Batch
resources deploy/modules/batch creates (a GPU and a CPU queue and job definition)."""
from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

FUNCTIONS = pathlib.Path(__file__).resolve().parents[2] / "deploy/modules/lambda/functions"
sys.path.insert(0, str(FUNCTIONS))
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.2)
    # Batch jobs run without Docker (they just move on to SUCCEEDED).
    req = urllib.request.Request(url + "/moto-api/config", method="POST",
                                 data=json.dumps({"batch": {"use_docker": False}}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).close()
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def aws_env(moto_url):
    saved = dict(os.environ)
    os.environ.update({"AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
                       "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"})
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    yield moto_url
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def boto(aws_env):
    import boto3

    return boto3.session.Session(region_name=REGION)


@pytest.fixture(scope="session")
def pipeline(boto):
    """The Batch side of the pipeline, named as deploy/modules/batch names it."""
    iam = boto.client("iam")
    ec2 = boto.client("ec2")
    batch = boto.client("batch")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"},
        "Action": "sts:AssumeRole"}]})
    service_role = iam.create_role(RoleName="t-batch-service",
                                   AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.create_role(RoleName="t-batch-instance", AssumeRolePolicyDocument=trust)
    profile = iam.create_instance_profile(InstanceProfileName="t-batch-instance")
    iam.add_role_to_instance_profile(InstanceProfileName="t-batch-instance",
                                     RoleName="t-batch-instance")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="t-batch", Description="batch",
                                   VpcId=vpc)["GroupId"]
    out = {}
    for kind, types in (("gpu", ["g4dn.xlarge"]), ("cpu", ["m5.large"])):
        ce = batch.create_compute_environment(
            computeEnvironmentName=f"t-ml-{kind}", type="MANAGED", state="ENABLED",
            serviceRole=service_role,
            computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 64,
                              "instanceTypes": types, "subnets": [subnet],
                              "securityGroupIds": [sg],
                              "instanceRole": profile["InstanceProfile"]["Arn"]})
        queue = batch.create_job_queue(
            jobQueueName=f"t-ml-{kind}-job-queue", state="ENABLED", priority=1,
            computeEnvironmentOrder=[{"order": 1,
                                      "computeEnvironment": ce["computeEnvironmentArn"]}])
        resources = [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}]
        if kind == "gpu":
            resources.append({"type": "GPU", "value": "1"})
        definition = batch.register_job_definition(
            jobDefinitionName=f"t-ml-{kind}-job", type="container",
            containerProperties={"image": "busybox:latest", "command": ["true"],
                                 "resourceRequirements": resources})
        out[kind] = {"queue": queue["jobQueueArn"], "queue_name": f"t-ml-{kind}-job-queue",
                     "definition": f"t-ml-{kind}-job",
                     "definition_arn": definition["jobDefinitionArn"]}
    return out
