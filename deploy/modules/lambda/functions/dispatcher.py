"""The trigger dispatcher: an SNS-subscribed Lambda function.

Every record of the event is one SNS message, a JSON object whose ``trigger_type`` names
a class in ``TRIGGER_REGISTRY``; that trigger validates the message and acts on it. A
message that is not JSON, names no known trigger or fails validation raises, so that SNS
retries the delivery and then hands it to the function's dead-letter queue (the
``trigger_dlq_url`` output) instead of it vanishing.

To add a trigger: write a ``BaseTrigger`` subclass in ``triggers/`` and register it
below, or call ``register`` from a module imported here.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from triggers import BaseTrigger, BatchJobTrigger, TriggerError

LOG = logging.getLogger("dispatcher")
LOG.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

#: trigger_type -> BaseTrigger subclass.
TRIGGER_REGISTRY: dict[str, type[BaseTrigger]] = {
    BatchJobTrigger.trigger_type: BatchJobTrigger,
}


def register(cls: type[BaseTrigger]) -> type[BaseTrigger]:
    """Class decorator adding a trigger to ``TRIGGER_REGISTRY`` under its ``trigger_type``."""
    if not (isinstance(cls, type) and issubclass(cls, BaseTrigger)) or not cls.trigger_type:
        raise TypeError("a trigger is a BaseTrigger subclass with a trigger_type")
    if TRIGGER_REGISTRY.get(cls.trigger_type, cls) is not cls:
        raise ValueError(f"trigger_type {cls.trigger_type!r} is already registered")
    TRIGGER_REGISTRY[cls.trigger_type] = cls
    return cls


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise RuntimeError(f"{name}={raw!r} is not an integer") from None


@dataclasses.dataclass(frozen=True)
class Settings:
    """What Terraform hands the function in its environment (deploy/modules/lambda)."""

    gpu_queue: str
    cpu_queue: str
    gpu_definition: str
    cpu_definition: str
    input_bucket: str
    output_bucket: str
    region: str = ""
    gpu_vcpus: int = 4
    gpu_memory: int = 16384
    gpu_gpus: int = 1
    cpu_vcpus: int = 2
    cpu_memory: int = 4096
    max_vcpus: int = 256
    max_memory: int = 2097152
    max_gpus: int = 8

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        required = {
            "gpu_queue": "GPU_JOB_QUEUE", "cpu_queue": "CPU_JOB_QUEUE",
            "gpu_definition": "GPU_JOB_DEFINITION", "cpu_definition": "CPU_JOB_DEFINITION",
            "input_bucket": "ML_INPUT_BUCKET", "output_bucket": "ML_OUTPUT_BUCKET",
        }
        missing = [name for name in required.values() if not env.get(name)]
        if missing:
            raise RuntimeError("dispatcher settings missing: " + ", ".join(missing))
        return cls(
            **{field: env[name] for field, name in required.items()},
            region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "")),
            gpu_vcpus=_env_int(env, "GPU_JOB_VCPUS", 4),
            gpu_memory=_env_int(env, "GPU_JOB_MEMORY", 16384),
            gpu_gpus=_env_int(env, "GPU_JOB_GPUS", 1),
            cpu_vcpus=_env_int(env, "CPU_JOB_VCPUS", 2),
            cpu_memory=_env_int(env, "CPU_JOB_MEMORY", 4096),
            max_vcpus=_env_int(env, "MAX_VCPUS", 256),
            max_memory=_env_int(env, "MAX_MEMORY", 2097152),
            max_gpus=_env_int(env, "MAX_GPUS", 8),
        )


class Clients:
    """boto3 clients by service name, each made on first use (and kept warm)."""

    def __init__(self, factory: Callable[[str], Any] | None = None) -> None:
        self._factory = factory
        self._made: dict[str, Any] = {}

    def get(self, service: str) -> Any:
        if service not in self._made:
            if self._factory is None:
                import boto3  # in the Lambda runtime; imported late so tests can stand in

                self._factory = boto3.client
            self._made[service] = self._factory(service)
        return self._made[service]


_CLIENTS = Clients()


def decode(raw: Any) -> dict[str, Any]:
    """One SNS message body -> the trigger message (an object with a ``trigger_type``)."""
    if not isinstance(raw, str):
        raise TriggerError("the SNS message is not a string")
    try:
        message = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TriggerError(f"the message is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise TriggerError("the message must be a JSON object")
    if not isinstance(message.get("trigger_type"), str):
        raise TriggerError("the message has no trigger_type")
    return message


def dispatch(message: Mapping[str, Any], settings: Settings, clients: Any) -> dict[str, Any]:
    """Runs the trigger the message names; raises TriggerError on a bad message."""
    kind = message.get("trigger_type")
    cls = TRIGGER_REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise TriggerError(f"unknown trigger_type {kind!r}; known: {sorted(TRIGGER_REGISTRY)}")
    return cls(message, settings, clients).run()


def handle(event: Mapping[str, Any], settings: Settings, clients: Any) -> dict[str, Any]:
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not records:
        raise TriggerError("the event has no SNS records")
    results = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        if not isinstance(sns, Mapping):
            raise TriggerError("a record is not an SNS notification")
        message = decode(sns.get("Message"))
        try:
            result = dispatch(message, settings, clients)
        except TriggerError as exc:
            LOG.error(json.dumps({"msg": "message refused", "error": str(exc),
                                  "message_id": sns.get("MessageId")}))
            raise
        LOG.info(json.dumps({"msg": "dispatched", "message_id": sns.get("MessageId"), **result}))
        results.append(result)
    return {"dispatched": results}


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``dispatcher.handler``)."""
    return handle(event, Settings.from_env(), _CLIENTS)
