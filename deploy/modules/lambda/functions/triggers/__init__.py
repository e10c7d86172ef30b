"""Triggers of the dispatcher (``dispatcher.TRIGGER_REGISTRY`` maps a name to a class)."""
from .base import BaseTrigger, TriggerError
from .batch_job import BatchJobTrigger

__all__ = ["BaseTrigger", "BatchJobTrigger", "TriggerError"]
