"""The trigger interface of the dispatcher: one class per ``trigger_type``.

A trigger is built from one decoded SNS message and the dispatcher's settings, checks
the message in ``validate`` (raising ``TriggerError`` on anything it cannot act on) and
acts in ``execute``, returning a small JSON-serialisable summary for the log.
"""
from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any


class TriggerError(ValueError):
    """A message the dispatcher refuses. Raised out of the handler so that SNS retries
    the delivery and, once its retries are spent, the message lands in the dead-letter
    queue where an operator can read it."""


class BaseTrigger(abc.ABC):
    """Base class of every trigger.

    ``message`` is the whole decoded message (``trigger_type``, ``data``, ``metadata``);
    ``settings`` the dispatcher's settings (``Settings``); ``clients`` maps a service
    name (``"batch"``, ``"sns"``…) to a boto3 client, created on first use.
    """

    #: The ``trigger_type`` this class answers to; set by each subclass.
    trigger_type: str = ""

    def __init__(self, message: Mapping[str, Any], settings: Any, clients: Any) -> None:
        self.message = message
        self.settings = settings
        self.clients = clients
        data = message.get("data", {})
        metadata = message.get("metadata", {})
        if not isinstance(data, Mapping):
            raise TriggerError("data must be a JSON object")
        if not isinstance(metadata, Mapping):
            raise TriggerError("metadata must be a JSON object")
        self.data: Mapping[str, Any] = data
        self.metadata: Mapping[str, Any] = metadata

    def validate(self) -> None:
        """Raise ``TriggerError`` when the message cannot be acted on."""

    @abc.abstractmethod
    def execute(self) -> dict[str, Any]:
        """Act on the message; returns a summary for the log."""

    def run(self) -> dict[str, Any]:
        self.validate()
        return self.execute()
