#!/usr/bin/env python3
"""Self-test of check_contract.py, and of the repository's openapi.yaml.

Run: python3 tests/contract/test_check_contract.py   (needs jsonschema and PyYAML,
e.g. build/venv/bin/python). Standard-library unittest; no pytest needed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
from typing import Any, Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "check_contract.py")
REPO_SPEC = os.path.join(HERE, "..", "..", "openapi.yaml")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree

import check_contract  # noqa: E402

TINY_SPEC = textwrap.dedent(
    """\
    openapi: 3.1.0
    info: { title: tiny, version: "1" }
    paths:
      /things:
        post:
          operationId: createThing
          responses:
            "201":
              description: Created.
              content:
                application/json:
                  schema: { $ref: "#/components/schemas/Thing" }
            "422": { $ref: "#/components/responses/Problem" }
      /things/{id}:
        get:
          operationId: getThing
          responses:
            "200":
              description: The thing.
              content:
                application/json:
                  schema: { $ref: "#/components/schemas/Thing" }
            "4XX": { $ref: "#/components/responses/Problem" }
        delete:
          operationId: deleteThing
          responses:
            "204": { description: Deleted. }
      /things/{id}/stop:
        post:
          operationId: stopThing
          responses:
            "202":
              description: Stopping.
              content:
                application/json:
                  schema: { $ref: "#/components/schemas/Thing" }
    components:
      responses:
        Problem:
          description: An error.
          content:
            application/problem+json:
              schema: { $ref: "#/components/schemas/Problem" }
      schemas:
        Thing:
          type: object
          required: [id, size, created_at]
          properties:
            id: { type: string }
            size: { type: integer }
            created_at: { type: string, format: date-time }
            note: { type: [string, "null"] }
        Problem:
          type: object
          required: [type, title, status]
          properties:
            type: { type: string }
            title: { type: string }
            status: { type: integer }
    """
)

JSON_CT = "application/json; charset=utf-8"
PROBLEM_CT = "application/problem+json"
THING = {"id": "t1", "size": 3, "created_at": "2025-03-14T09:26:53.589Z", "note": None}
PROBLEM_404 = {"type": "urn:x:not-found", "title": "Not Found", "status": 404}


def rec(method: str, path: str, status: int, body: Any = "", ct: str = JSON_CT) -> dict[str, Any]:
    return {
        "method": method,
        "path": path,
        "status": status,
        "content_type": ct,
        "body": body if isinstance(body, str) else json.dumps(body),
    }


ALL_OPS = [
    rec("POST", "/things", 201, THING),
    rec("GET", "/things/t1?verbose=1", 200, THING),
    rec("DELETE", "/things/t1", 204, "", ""),
    rec("POST", "/things/t1/stop", 202, THING),
]


class CheckerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.spec = os.path.join(self.tmp.name, "openapi.yaml")
        with open(self.spec, "w", encoding="utf-8") as f:
            f.write(TINY_SPEC)
        self.log = os.path.join(self.tmp.name, "exchanges.jsonl")

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def check(self, records: list[Any] | None, *flags: str) -> tuple[int, str]:
        if records is not None:
            with open(self.log, "w", encoding="utf-8") as f:
                for r in records:
                    f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
        p = subprocess.run(
            [sys.executable, CHECKER, self.spec, self.log, *flags],
            capture_output=True, text=True, timeout=60, check=False,
        )
        self.assertEqual(p.stderr, "", p.stderr)
        return p.returncode, p.stdout

    def assertPasses(self, records: list[Any] | None, *flags: str) -> str:
        rc, out = self.check(records, *flags)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("FAIL", out)
        return out

    def assertFails(self, records: list[Any] | None, needle: str, *flags: str) -> str:
        rc, out = self.check(records, *flags)
        self.assertEqual(rc, 1, out)
        self.assertIn(needle, out)
        return out

    # --- the cases the contract check exists for ---------------------------

    def test_valid_record_passes(self) -> None:
        out = self.assertPasses([rec("POST", "/things", 201, THING)])
        self.assertIn("contract: 1 checked, 0 failed", out)

    def test_wrong_type_field_fails(self) -> None:
        bad = dict(THING, size="3")
        out = self.assertFails([rec("POST", "/things", 201, bad)],
                               "FAIL POST /things 201: '3' is not of type 'integer' at $.size")
        self.assertIn("contract: 1 checked, 1 failed", out)

    def test_undeclared_status_fails(self) -> None:
        self.assertFails([rec("POST", "/things", 200, THING)],
                         "status 200 not declared for POST /things")

    def test_unknown_path_404_problem_passes(self) -> None:
        self.assertPasses([rec("GET", "/nowhere/at/all", 404, PROBLEM_404, PROBLEM_CT)])

    def test_wrong_content_type_fails(self) -> None:
        self.assertFails([rec("POST", "/things", 201, THING, "text/plain")],
                         "content type 'text/plain' not declared")

    def test_missing_coverage_fails_only_with_require_coverage(self) -> None:
        records = [rec("POST", "/things", 201, THING)]
        self.assertPasses(records)
        out = self.assertFails(records, "FAIL not covered: GET /things/{id}", "--require-coverage")
        self.assertIn("FAIL not covered: DELETE /things/{id}", out)
        self.assertIn("FAIL not covered: POST /things/{id}/stop", out)
        self.assertNotIn("not covered: POST /things has", out)
        self.assertIn("coverage: 1/4 operations", out)

    def test_full_coverage_passes(self) -> None:
        out = self.assertPasses(ALL_OPS, "--require-coverage")
        self.assertIn("coverage: 4/4 operations", out)

    # --- the rest of the rules ------------------------------------------------

    def test_missing_log_fails(self) -> None:
        self.assertFails(None, "no exchanges recorded")

    def test_empty_log_fails(self) -> None:
        self.assertFails([], "no exchanges recorded")

    def test_malformed_log_line_fails(self) -> None:
        self.assertFails(["{not json", rec("POST", "/things", 201, THING)], "not a JSON object")

    def test_record_without_status_fails(self) -> None:
        self.assertFails([{"method": "GET", "path": "/things/1"}], "no integer status")

    def test_missing_required_property_fails(self) -> None:
        bad = {k: v for k, v in THING.items() if k != "created_at"}
        self.assertFails([rec("POST", "/things", 201, bad)], "'created_at' is a required property")

    def test_bad_date_time_format_fails(self) -> None:
        bad = dict(THING, created_at="14/03/2025 09:26")
        self.assertFails([rec("POST", "/things", 201, bad)], "is not a 'date-time'")

    def test_nullable_type_array_accepts_null_and_string(self) -> None:
        self.assertPasses([rec("POST", "/things", 201, dict(THING, note=None)),
                           rec("POST", "/things", 201, dict(THING, note="hi"))])

    def test_non_json_body_fails(self) -> None:
        self.assertFails([rec("POST", "/things", 201, "<html>oops</html>")], "body is not JSON")

    def test_response_ref_and_problem_schema_are_followed(self) -> None:
        self.assertPasses([rec("POST", "/things", 422, {**PROBLEM_404, "status": 422}, PROBLEM_CT)])
        self.assertFails([rec("POST", "/things", 422, {"title": "x"}, PROBLEM_CT)],
                         "'type' is a required property")

    def test_status_range_matches(self) -> None:
        self.assertPasses([rec("GET", "/things/zz", 404, PROBLEM_404, PROBLEM_CT)])
        self.assertFails([rec("GET", "/things/zz", 500, PROBLEM_404, PROBLEM_CT)],
                         "status 500 not declared")

    def test_templates_match_one_whole_segment(self) -> None:
        # /things/{id}/stop is its own path, and {id} never spans a '/' or is empty.
        self.assertPasses([rec("POST", "/things/a1/stop", 202, THING)])
        self.assertFails([rec("GET", "/things/a/b", 200, THING)], "path not in the spec")
        self.assertFails([rec("GET", "/things/", 200, THING)], "path not in the spec")

    def test_unknown_path_needs_a_problem(self) -> None:
        self.assertFails([rec("GET", "/nowhere", 404, "not found", "text/plain")],
                         "content type 'text/plain' not declared")
        self.assertFails([rec("GET", "/nowhere", 404, {"oops": 1}, PROBLEM_CT)],
                         "'type' is a required property")
        self.assertFails([rec("GET", "/nowhere", 200, THING)], "path not in the spec, yet status 200")

    def test_wrong_method_405_problem_passes_but_2xx_fails(self) -> None:
        self.assertPasses([rec("PUT", "/things", 405, {**PROBLEM_404, "status": 405}, PROBLEM_CT)])
        self.assertFails([rec("PUT", "/things", 200, THING)], "method PUT on /things not in the spec")

    def test_head_is_checked_as_get_with_empty_body(self) -> None:
        self.assertPasses([rec("HEAD", "/things/t1", 200, "")])
        self.assertFails([rec("HEAD", "/things/t1", 200, THING)], "body on a HEAD 200 answer")
        self.assertFails([rec("HEAD", "/things/t1", 201, "")], "status 201 not declared")

    def test_204_body_must_be_empty(self) -> None:
        self.assertFails([rec("DELETE", "/things/t1", 204, "x", "text/plain")],
                         "body on a DELETE 204 answer")

    def test_options_records_are_skipped(self) -> None:
        out = self.assertPasses([rec("OPTIONS", "/things", 204, "", ""),
                                 rec("POST", "/things", 201, THING)])
        self.assertIn("1 skipped (OPTIONS)", out)


# --- the repository's own openapi.yaml ------------------------------------------


def _examples(spec: check_contract.Spec) -> Iterator[tuple[str, str, Any]]:
    """(schema pointer, where, example value) for every example in the spec."""
    esc = check_contract._pointer_escape

    def walk(node: Any, ptr: str) -> Iterator[tuple[str, str, Any]]:
        if isinstance(node, dict):
            if "schema" in node and isinstance(node["schema"], dict):
                if "example" in node:
                    yield f"{ptr}/schema", f"{ptr}/example", node["example"]
                for name, ex in (node.get("examples") or {}).items():
                    ex, ex_ptr = spec.deref(ex, f"{ptr}/examples/{esc(name)}")
                    if isinstance(ex, dict) and "value" in ex:
                        yield f"{ptr}/schema", f"{ex_ptr}/value", ex["value"]
            for k, v in node.items():
                if k not in ("example", "examples"):
                    yield from walk(v, f"{ptr}/{esc(str(k))}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, f"{ptr}/{i}")

    yield from walk(spec.doc["paths"], "/paths")
    yield from walk(spec.doc.get("components", {}), "/components")
    for name, schema in spec.doc.get("components", {}).get("schemas", {}).items():
        if isinstance(schema, dict) and "example" in schema:
            ptr = f"/components/schemas/{esc(name)}"
            yield ptr, f"{ptr}/example", schema["example"]


class RepoSpecTest(unittest.TestCase):
    spec: check_contract.Spec

    @classmethod
    def setUpClass(cls) -> None:
        cls.spec = check_contract.Spec(check_contract.load_spec(REPO_SPEC))

    def errors(self, schema: str, instance: Any) -> list[str]:
        v = self.spec.validator(f"/components/schemas/{schema}")
        return [f"{e.json_path}: {e.message}" for e in v.iter_errors(instance)]

    def test_spec_is_valid_openapi_3_1(self) -> None:
        try:
            from openapi_spec_validator import validate
        except ImportError:
            self.skipTest("openapi-spec-validator not installed")
        validate(self.spec.doc)

    def test_every_example_matches_its_schema(self) -> None:
        seen = 0
        for schema_ptr, where, value in _examples(self.spec):
            seen += 1
            errs = [f"{e.json_path}: {e.message}"
                    for e in self.spec.validator(schema_ptr).iter_errors(value)]
            self.assertEqual(errs, [], where)
        self.assertGreater(seen, 20)

    def test_seed_sns_messages_and_native_body_are_create_job_bodies(self) -> None:
        bodies = [
            {"trigger_type": "batch_job", "data": {"script_key": "jobs/gpu_processing.py"},
             "metadata": {"user": "ml-engineer", "project": "model-training"}},
            {"trigger_type": "batch_job",
             "data": {"script_key": "jobs/gpu_processing.py", "vcpus": 16, "memory": 65536,
                      "gpus": 4},
             "metadata": {"user": "ml-engineer", "project": "model-training"}},
            {"trigger_type": "batch_job",
             "data": {"script_key": "jobs/cpu_processing.py", "compute_type": "cpu"},
             "metadata": {"user": "ml-engineer", "project": "data-pipeline"}},
            {"trigger_type": "batch_job",
             "data": {"script_key": "jobs/cpu_processing.py", "compute_type": "cpu", "vcpus": 8,
                      "memory": 16384},
             "metadata": {"user": "ml-engineer", "project": "data-pipeline"}},
            {"trigger_type": "batch_job",
             "data": {"script_key": "jobs/cleanup_processor.py", "compute_type": "cpu",
                      "operation": "cleanup-cache"}},
            {"script_key": "jobs/train.py", "compute_type": "gpu", "vcpus": 4, "memory": 16384,
             "gpus": 1, "args": ["--epochs", "3"], "env": {"LEARNING_RATE": "0.001"},
             "timeout_seconds": 3600, "max_attempts": 3, "operation": "cleanup-cache",
             "metadata": {"user": "ml-engineer", "project": "model-training",
                          "experiment": "exp-7"},
             "notify": {"emails": ["a@example.com"], "webhooks": ["https://hooks.example.com/ml"]},
             "dispatch": "batch"},
        ]
        for body in bodies:
            self.assertEqual(self.errors("CreateJobBody", body), [], body)

    def test_create_job_body_rejects_what_the_api_rejects(self) -> None:
        base = {"script_key": "jobs/train.py"}
        bad = {
            "unknown field (typo gpu)": {**base, "gpu": 1},
            "absolute script_key": {"script_key": "/jobs/train.py"},
            "dot-dot segment": {"script_key": "jobs/../etc/passwd"},
            "dot segment": {"script_key": "jobs/./train.py"},
            "double slash": {"script_key": "jobs//train.py"},
            "trailing slash": {"script_key": "jobs/"},
            "bad character": {"script_key": "jobs/train me.py"},
            "no script_key": {"compute_type": "cpu"},
            "zero vcpus": {**base, "vcpus": 0},
            "timeout under 60": {**base, "timeout_seconds": 59},
            "max_attempts 11": {**base, "max_attempts": 11},
            "reserved env": {**base, "env": {"JOB_ID": "x"}},
            "AWS_ env": {**base, "env": {"AWS_SECRET": "x"}},
            "lowercase env": {**base, "env": {"lr": "x"}},
            "NUL in env value": {**base, "env": {"X": "a\u0000b"}},
            "loader env": {**base, "env": {"LD_PRELOAD": "/tmp/x.so"}},
            "python env": {**base, "env": {"PYTHONWARNINGS": "ignore"}},
            "browser env": {**base, "env": {"BROWSER": "/bin/bash"}},
            "bash env": {**base, "env": {"BASH_ENV": "/tmp/x"}},
            "proxy env": {**base, "env": {"HTTPS_PROXY": "http://10.0.0.1:3128"}},
            "gpu env": {**base, "env": {"CUDA_VISIBLE_DEVICES": "0"}},
            "non-string env value": {**base, "env": {"X": 1}},
            "plain http webhook": {**base, "notify": {"webhooks": ["http://hooks.example.com/"]}},
            "bad dispatch": {**base, "dispatch": "lambda"},
            "long operation": {**base, "operation": "x" * 65},
            "unknown trigger_type": {"trigger_type": "lambda_job", "data": base},
            "metadata inside data": {"trigger_type": "batch_job",
                                     "data": {**base, "metadata": {"user": "u"}}},
            "native and sns mixed": {**base, "trigger_type": "batch_job", "data": base},
        }
        for name, body in bad.items():
            self.assertNotEqual(self.errors("CreateJobBody", body), [], name)
        self.assertEqual(self.errors("CreateJobBody", {
            **base, "env": {"LANG": "C.UTF-8", "LC_ALL": "C", "MY_PATH": "/x",
                            "PROXY_TIMEOUT": "3"}}), [])
        self.assertEqual(self.errors("CreateJobBody", {
            **base, "notify": {"webhooks": ["http://127.0.0.1:9000/hook", "http://localhost/x",
                                            "http://[::1]:8080/"]}}), [])

    def test_job_requires_every_field_but_history_and_notifications(self) -> None:
        job = self.spec.doc["components"]["schemas"]["Job"]
        self.assertEqual(set(job["properties"]) - set(job["required"]),
                         {"history", "notifications"})

    def test_jobs_operations_are_present(self) -> None:
        ops = set(self.spec.operations())
        for op in [("/jobs", "POST"), ("/jobs", "GET"), ("/jobs/{id}", "GET"),
                   ("/jobs/{id}/cancel", "POST"), ("/metrics", "GET")]:
            self.assertIn(op, ops)

    def test_only_health_readiness_and_callbacks_skip_api_keys(self) -> None:
        """Callbacks (/events/*) authenticate with their own schemes and answer 403."""
        self.assertEqual(self.spec.doc["security"], [{"bearerAuth": []}])
        for template, method in self.spec.operations():
            op, _ = self.spec.operation(template, method)
            anonymous = op.get("security") == []
            callback = template.startswith("/events/")
            self.assertEqual(anonymous, template in ("/healthz", "/readyz") or callback,
                             (method, template))
            if callback:
                self.assertIn("403", op["responses"], (method, template))
                self.assertNotIn("401", op["responses"], (method, template))
            elif not anonymous:
                self.assertIn("401", op["responses"], (method, template))
                self.assertIn("403", op["responses"], (method, template))


if __name__ == "__main__":
    unittest.main(verbosity=2)
