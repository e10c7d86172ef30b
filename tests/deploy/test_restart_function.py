#!/usr/bin/env python3
"""deploy/modules/gateway/functions/restart.py: a RotationSucceeded event for the database's
master secret restarts the gateway's service (forceNewDeployment), anything else does not; and
restart.tf gives the function exactly the environment it reads. Standard library only (the
ECS client is a recording stand-in)."""
from __future__ import annotations

import pathlib
import re
import sys
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODULE = ROOT / "deploy/modules/gateway"
sys.path.insert(0, str(MODULE / "functions"))

import restart  # noqa: E402

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-0a1b2c3d-4e5f-AbCdEf"
ENV = {"CLUSTER": "ml-pipeline-gateway", "SERVICE": "ml-pipeline-gateway", "SECRET_ARN": ARN}


class RecordingEcs:
    def __init__(self):
        self.calls = []

    def update_service(self, **kwargs):
        self.calls.append(kwargs)
        return {"service": {}}


def rotation(secret_id: str, name: str = "RotationSucceeded", source: str = "aws.secretsmanager") -> dict:
    return {"source": source, "detail-type": "AWS Service Event via CloudTrail",
            "detail": {"eventName": name, "additionalEventData": {"SecretId": secret_id}}}


class Restart(unittest.TestCase):
    def run_with(self, event):
        ecs = RecordingEcs()
        out = restart.handle(event, ecs, ENV)
        return out, ecs.calls

    def test_the_master_secret_by_arn_restarts_the_service(self):
        out, calls = self.run_with(rotation(ARN))
        self.assertEqual(out, {"restarted": True})
        self.assertEqual(calls, [{"cluster": ENV["CLUSTER"], "service": ENV["SERVICE"],
                                  "forceNewDeployment": True}])

    def test_the_master_secret_by_name_restarts_the_service(self):
        _, calls = self.run_with(rotation("rds!db-0a1b2c3d-4e5f"))
        self.assertEqual(len(calls), 1)

    def test_another_secret_changes_nothing(self):
        for other in ("arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf",
                      "rds!db-ffffffff", ""):
            out, calls = self.run_with(rotation(other))
            self.assertEqual((out, calls), ({"restarted": False}, []), other)

    def test_other_events_change_nothing(self):
        for event in (rotation(ARN, name="RotationStarted"), rotation(ARN, source="aws.rds"), {}):
            out, calls = self.run_with(event)
            self.assertEqual((out, calls), ({"restarted": False}, []), event)

    def test_terraform_gives_exactly_the_environment_read(self):
        tf = (MODULE / "restart.tf").read_text()
        block = re.search(r"^\s*variables = \{(.*?)^\s*\}", tf, re.M | re.S).group(1)
        given = set(re.findall(r"^\s*([A-Z_]+)\s*=", block, re.M))
        read = set(re.findall(r'env\["([A-Z_]+)"\]', (MODULE / "functions/restart.py").read_text()))
        self.assertEqual(given, read)
        handler = re.search(r'handler\s*=\s*"([^"]+)"', tf).group(1)
        self.assertEqual(handler, "restart.handler")
        self.assertTrue(callable(restart.handler))


if __name__ == "__main__":
    unittest.main()
