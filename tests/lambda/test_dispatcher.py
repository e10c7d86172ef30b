"""The trigger dispatcher (deploy/modules/lambda/functions) against moto's Batch.

Each test publishes-as-SNS-would one message into the handler; the dispatcher's SubmitJob
goes to moto (server mode, loopback), which must accept it and put the job on the queue the
message routes to; the request body is also read off the wire (DescribeJobs does not echo
containerOverrides back)."""
from __future__ import annotations

import json
import uuid

import pytest

import dispatcher
from triggers import BaseTrigger, TriggerError
from triggers.batch_job import RESERVED_ENV, batch_job_name

# The original pipeline's four example messages and its cache cleanup message, verbatim.
GPU_DEFAULT = {"trigger_type": "batch_job", "data": {"script_key": "jobs/gpu_processing.py"},
               "metadata": {"user": "ml-engineer", "project": "model-training"}}
GPU_CUSTOM = {"trigger_type": "batch_job",
              "data": {"script_key": "jobs/gpu_processing.py", "vcpus": 16, "memory": 65536,
                       "gpus": 4},
              "metadata": {"user": "ml-engineer", "project": "model-training"}}
CPU_DEFAULT = {"trigger_type": "batch_job",
               "data": {"script_key": "jobs/cpu_processing.py", "compute_type": "cpu"},
               "metadata": {"user": "ml-engineer", "project": "data-pipeline"}}
CPU_CUSTOM = {"trigger_type": "batch_job",
              "data": {"script_key": "jobs/cpu_processing.py", "compute_type": "cpu",
                       "vcpus": 8, "memory": 16384},
              "metadata": {"user": "ml-engineer", "project": "data-pipeline"}}
CLEANUP = {"trigger_type": "batch_job",
           "data": {"script_key": "jobs/cleanup_processor.py", "compute_type": "cpu",
                    "operation": "cleanup-cache"}}


class Wire:
    """boto3 clients whose SubmitJob bodies are recorded as sent."""

    def __init__(self, session):
        self.bodies = []
        self.clients = dispatcher.Clients(session.client)
        batch = self.clients.get("batch")
        batch.meta.events.register("before-call.batch.SubmitJob", self._record)

    def _record(self, params, **_):
        body = params["body"]
        self.bodies.append(json.loads(body.decode() if isinstance(body, bytes) else body))


@pytest.fixture()
def wire(boto):
    return Wire(boto)


@pytest.fixture()
def settings(pipeline):
    # As deploy/modules/lambda sets them: queue ARNs, definition names, the seed's defaults.
    return dispatcher.Settings.from_env({
        "GPU_JOB_QUEUE": pipeline["gpu"]["queue"], "CPU_JOB_QUEUE": pipeline["cpu"]["queue"],
        "GPU_JOB_DEFINITION": pipeline["gpu"]["definition"],
        "CPU_JOB_DEFINITION": pipeline["cpu"]["definition"],
        "ML_INPUT_BUCKET": "t-ml-input", "ML_OUTPUT_BUCKET": "t-ml-output",
        "AWS_REGION": "us-east-1", "GPU_JOB_VCPUS": "4", "GPU_JOB_MEMORY": "16384",
        "GPU_JOB_GPUS": "1", "CPU_JOB_VCPUS": "2", "CPU_JOB_MEMORY": "4096"})


def sns_event(*messages):
    return {"Records": [{"EventSource": "aws:sns", "Sns": {
        "Type": "Notification", "MessageId": str(uuid.uuid4()),
        "Message": m if isinstance(m, str) else json.dumps(m)}} for m in messages]}


def resources(body):
    return {r["type"]: int(r["value"]) for r in body["containerOverrides"]["resourceRequirements"]}


def environment(body):
    return {e["name"]: e["value"] for e in body["containerOverrides"]["environment"]}


def run_one(message, settings, wire, boto):
    result = dispatcher.handle(sns_event(message), settings, wire.clients)["dispatched"]
    assert len(result) == 1 and len(wire.bodies) == 1
    job = boto.client("batch").describe_jobs(jobs=[result[0]["batch_job_id"]])["jobs"][0]
    return result[0], wire.bodies[0], job


@pytest.mark.parametrize("message, kind, want", [
    (GPU_DEFAULT, "gpu", {"VCPU": 4, "MEMORY": 16384, "GPU": 1}),
    (GPU_CUSTOM, "gpu", {"VCPU": 16, "MEMORY": 65536, "GPU": 4}),
    (CPU_DEFAULT, "cpu", {"VCPU": 2, "MEMORY": 4096}),
    (CPU_CUSTOM, "cpu", {"VCPU": 8, "MEMORY": 16384}),
    (CLEANUP, "cpu", {"VCPU": 2, "MEMORY": 4096}),
], ids=["gpu-default", "gpu-custom", "cpu-default", "cpu-custom", "cleanup"])
def test_seed_messages_route_with_resources(message, kind, want, settings, wire, boto, pipeline):
    result, body, job = run_one(message, settings, wire, boto)
    assert job["jobQueue"] == pipeline[kind]["queue"]          # moto put it on that queue
    assert job["jobDefinition"].startswith(pipeline[kind]["definition_arn"].rsplit(":", 1)[0])
    assert body["jobQueue"] == pipeline[kind]["queue"]
    assert body["jobDefinition"] == pipeline[kind]["definition"]
    assert resources(body) == want
    assert result["compute_type"] == kind


def test_job_environment_contract(settings, wire, boto):
    result, body, _ = run_one(GPU_DEFAULT, settings, wire, boto)
    env = environment(body)
    job_id = result["job_id"]
    uuid.UUID(job_id)
    assert env == {
        "ML_INPUT_BUCKET": "t-ml-input", "ML_OUTPUT_BUCKET": "t-ml-output",
        "OUTPUT_PREFIX": f"jobs/{job_id}", "COMPUTE_TYPE": "gpu",
        "SCRIPT_KEY": "jobs/gpu_processing.py", "JOB_ID": job_id,
        "TRIGGER_USER": "ml-engineer", "TRIGGER_PROJECT": "model-training",
        "TRIGGER_EXPERIMENT": "", "AWS_DEFAULT_REGION": "us-east-1",
        "ML_OUTPUT_DIR": "/workspace/output"}
    # Named and tagged as the gateway names and tags its own jobs.
    assert body["jobName"] == f"model-training-{job_id}"
    assert body["tags"] == {"mlgw:job-id": job_id, "mlgw:user": "ml-engineer",
                            "mlgw:project": "model-training"}
    assert body["propagateTags"] is True
    assert set(env) - {"OPERATION"} == RESERVED_ENV - {"OPERATION"}


def test_operation_passed_on(settings, wire, boto):
    _, body, _ = run_one(CLEANUP, settings, wire, boto)
    env = environment(body)
    assert env["OPERATION"] == "cleanup-cache"
    assert env["COMPUTE_TYPE"] == "cpu"
    assert env["SCRIPT_KEY"] == "jobs/cleanup_processor.py"
    assert body["jobName"].startswith("mlgw-")  # no project in the message


def test_gateway_message_fields(settings, wire, boto):
    """What the gateway publishes for dispatch: sns (jobs/dispatcher.c trigger_message)."""
    job_id = str(uuid.uuid4())
    message = {"trigger_type": "batch_job",
               "data": {"script_key": "jobs/train.py", "compute_type": "gpu", "vcpus": 8,
                        "memory": 32768, "gpus": 2, "job_id": job_id, "args": ["--epochs", "3"],
                        "env": {"EPOCHS": "3"}, "timeout_seconds": 3600, "max_attempts": 3},
               "metadata": {"user": "u", "project": "p/q r", "experiment": "e1"}}
    result, body, _ = run_one(message, settings, wire, boto)
    assert result["job_id"] == job_id
    assert body["jobName"] == f"p-q-r-{job_id}"
    assert body["containerOverrides"]["command"] == ["--epochs", "3"]
    assert environment(body)["EPOCHS"] == "3"
    assert environment(body)["JOB_ID"] == job_id
    assert environment(body)["TRIGGER_EXPERIMENT"] == "e1"
    assert body["timeout"] == {"attemptDurationSeconds": 3600}
    assert body["retryStrategy"] == {"attempts": 3, "evaluateOnExit": [
        {"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}]}
    assert resources(body) == {"VCPU": 8, "MEMORY": 32768, "GPU": 2}


def test_several_records_in_one_event(settings, wire, boto):
    out = dispatcher.handle(sns_event(GPU_DEFAULT, CPU_DEFAULT), settings, wire.clients)
    assert [r["compute_type"] for r in out["dispatched"]] == ["gpu", "cpu"]
    assert len(wire.bodies) == 2


def test_custom_trigger_registers_and_runs(settings, wire):
    seen = []

    @dispatcher.register
    class Echo(BaseTrigger):
        trigger_type = "test_echo"

        def validate(self):
            if "word" not in self.data:
                raise TriggerError("data.word is required")

        def execute(self):
            seen.append((self.data["word"], self.metadata.get("user")))
            return {"echoed": self.data["word"]}

    try:
        assert dispatcher.TRIGGER_REGISTRY["test_echo"] is Echo
        out = dispatcher.handle(sns_event({"trigger_type": "test_echo", "data": {"word": "hi"},
                                           "metadata": {"user": "me"}}), settings, wire.clients)
        assert out == {"dispatched": [{"echoed": "hi"}]}
        assert seen == [("hi", "me")]
        with pytest.raises(TriggerError, match="data.word"):
            dispatcher.handle(sns_event({"trigger_type": "test_echo", "data": {}}), settings,
                              wire.clients)
        with pytest.raises(ValueError, match="already registered"):
            dispatcher.register(type("Other", (Echo,), {}))
        with pytest.raises(TypeError):
            dispatcher.register(dict)
        assert wire.bodies == []  # nothing went to Batch
    finally:
        dispatcher.TRIGGER_REGISTRY.pop("test_echo", None)


def with_data(**changes):
    data = dict(GPU_DEFAULT["data"], **changes)
    return dict(GPU_DEFAULT, data=data)


@pytest.mark.parametrize("message, error", [
    ("not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ({"data": {"script_key": "a.py"}}, "no trigger_type"),
    ({"trigger_type": "nope", "data": {}}, "unknown trigger_type"),
    ({"trigger_type": "batch_job", "data": {}}, "script_key"),
    ({"trigger_type": "batch_job", "data": "jobs/a.py"}, "data must be"),
    ({"trigger_type": "batch_job", "data": {"script_key": "a.py"}, "metadata": []}, "metadata"),
    (with_data(script_key="/etc/passwd"), "script_key"),
    (with_data(script_key="jobs/../secret.py"), "script_key"),
    (with_data(script_key="jobs//a.py"), "script_key"),
    (with_data(script_key="jobs/a b.py"), "script_key"),
    (with_data(compute_type="tpu"), "compute_type"),
    (with_data(vcpus=0), "vcpus"),
    (with_data(vcpus="4"), "vcpus"),
    (with_data(vcpus=True), "vcpus"),
    (with_data(vcpus=257), "vcpus"),
    (with_data(memory=2), "memory"),
    (with_data(gpus=9), "gpus"),
    (with_data(compute_type="cpu", gpus=1), "gpus"),
    (with_data(operation="rm -rf /"), "operation"),
    (with_data(job_id="../x"), "job_id"),
    (with_data(args="--epochs 3"), "args"),
    (with_data(env={"OUTPUT_PREFIX": "elsewhere"}), "reserved"),
    (with_data(env={"LD_PRELOAD": "/tmp/x.so"}), "reserved"),
    (with_data(env={"A": 1}), "strings"),
    (with_data(timeout_seconds=10), "timeout_seconds"),
    (with_data(max_attempts=11), "max_attempts"),
    (dict(GPU_DEFAULT, metadata={"user": 7}), "metadata.user"),
])
def test_bad_messages_raise(message, error, settings, wire):
    """A refused message raises out of the handler: SNS retries it, then the DLQ keeps it."""
    with pytest.raises(TriggerError, match=error):
        dispatcher.handle(sns_event(message), settings, wire.clients)
    assert wire.bodies == []


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": [{"Sqs": {}}]}])
def test_events_without_sns_records_raise(event, settings, wire):
    with pytest.raises(TriggerError):
        dispatcher.handle(event, settings, wire.clients)


def test_batch_refusal_raises(settings, wire, pipeline):
    """A queue Batch does not know: SubmitJob fails and the handler raises (no silent loss)."""
    import dataclasses

    from botocore.exceptions import ClientError

    broken = dataclasses.replace(settings, cpu_queue="arn:aws:batch:us-east-1:123456789012:"
                                                    "job-queue/no-such-queue")
    with pytest.raises(ClientError):
        dispatcher.handle(sns_event(CPU_DEFAULT), broken, wire.clients)


def test_settings_from_env():
    with pytest.raises(RuntimeError, match="GPU_JOB_QUEUE"):
        dispatcher.Settings.from_env({"CPU_JOB_QUEUE": "q"})
    full = {"GPU_JOB_QUEUE": "g", "CPU_JOB_QUEUE": "c", "GPU_JOB_DEFINITION": "gd",
            "CPU_JOB_DEFINITION": "cd", "ML_INPUT_BUCKET": "i", "ML_OUTPUT_BUCKET": "o"}
    s = dispatcher.Settings.from_env(full)
    assert (s.gpu_vcpus, s.gpu_memory, s.gpu_gpus, s.cpu_vcpus, s.cpu_memory) == \
        (4, 16384, 1, 2, 4096)
    with pytest.raises(RuntimeError, match="GPU_JOB_VCPUS"):
        dispatcher.Settings.from_env(dict(full, GPU_JOB_VCPUS="four"))


def test_batch_job_name_matches_the_gateway():
    jid = "0b6c1c9e-7d0a-4f51-9d7e-8f2d0c8a1b2c"
    assert batch_job_name(None, jid) == f"mlgw-{jid}"
    assert batch_job_name("--My Project!", jid) == f"My-Project--{jid}"
    assert batch_job_name("é", jid) == f"mlgw-{jid}"
    assert batch_job_name("aé", jid) == f"a---{jid}"  # two bytes, two dashes, as in C
    assert len(batch_job_name("x" * 500, jid)) == 90 + 1 + 36
