#!/usr/bin/env python3
"""Tests of images/entrypoint/entrypoint.py, run as a real subprocess in local mode
(MLGW_INPUT_DIR + a file:// MLGW_OUTPUT_URI). Standard library only.

Run from the repository root: python3 tests/entrypoint/test_entrypoint.py
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
from typing import Any

ENTRYPOINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "images",
                          "entrypoint", "entrypoint.py")
TIMEOUT = 15  # seconds: no single run should come near it


class LineReader:
    """Reads a pipe on a thread so that tests can wait for a line with a timeout."""

    def __init__(self, pipe: Any) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.thread.start()

    def _run(self, pipe: Any) -> None:
        with pipe:
            for line in iter(pipe.readline, ""):
                self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r} within {timeout} s; saw {self.seen}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"stream ended without {text!r}; saw {self.seen}")
            self.seen.append(line)
            if text in line:
                return line

    def rest(self) -> str:
        self.thread.join(timeout=5)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


class EntrypointTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="mlgw-ep-test-")
        self.input_dir = os.path.join(self.tmp, "input")
        self.output_dir = os.path.join(self.tmp, "work-output")  # ML_OUTPUT_DIR
        self.published = os.path.join(self.tmp, "published")  # the file:// output URI
        os.makedirs(os.path.join(self.input_dir, "scripts"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    # --- helpers ---

    def write_script(self, body: str, key: str = "scripts/job.py") -> str:
        path = os.path.join(self.input_dir, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(textwrap.dedent(body))
        return key

    def env(self, key: str = "scripts/job.py", **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLGW_", "ML_"))}
        env.update({
            "SCRIPT_KEY": key,
            "ML_INPUT_BUCKET": "in-bucket",
            "ML_OUTPUT_BUCKET": "out-bucket",
            "OUTPUT_PREFIX": "outputs/job-123",
            "JOB_ID": "job-123",
            "COMPUTE_TYPE": "cpu",
            "TRIGGER_USER": "alice",
            "TRIGGER_PROJECT": "proj",
            "TRIGGER_EXPERIMENT": "exp-1",
            "OPERATION": "train",
            "ML_OUTPUT_DIR": self.output_dir,
            "MLGW_INPUT_DIR": self.input_dir,
            "MLGW_OUTPUT_URI": f"file://{self.published}/",
        })
        env.update(extra)
        return env

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        key = env.pop("key", "scripts/job.py")
        return subprocess.Popen([sys.executable, ENTRYPOINT, *args], env=self.env(key, **env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run_entrypoint(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        key = env.pop("key", "scripts/job.py")
        return subprocess.run([sys.executable, ENTRYPOINT, *args], env=self.env(key, **env),
                              capture_output=True, text=True, timeout=TIMEOUT)

    def manifest(self) -> dict[str, Any]:
        with open(os.path.join(self.published, "manifest.json"), encoding="utf-8") as handle:
            return json.load(handle)

    def read_published(self, rel: str) -> bytes:
        with open(os.path.join(self.published, rel), "rb") as handle:
            return handle.read()

    # --- tests ---

    def test_success_publishes_outputs_and_manifest(self) -> None:
        self.write_script("""
            import os
            out = os.environ["ML_OUTPUT_DIR"]
            os.makedirs(os.path.join(out, "sub", "deeper"))
            with open(os.path.join(out, "model.bin"), "wb") as f:
                f.write(bytes(range(256)) * 40)
            with open(os.path.join(out, "sub", "deeper", "metrics.json"), "w") as f:
                f.write('{"loss": 0.25}')
            open(os.path.join(out, "empty.txt"), "w").close()
            print("done")
        """)
        result = self.run_entrypoint(MLGW_ATTEMPT="2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("done\n", result.stdout)
        self.assertIn("entrypoint: ", result.stderr)

        expected = {
            "model.bin": bytes(range(256)) * 40,
            "sub/deeper/metrics.json": b'{"loss": 0.25}',
            "empty.txt": b"",
        }
        for rel, content in expected.items():
            self.assertEqual(self.read_published(rel), content, rel)

        manifest = self.manifest()
        self.assertEqual(manifest["job_id"], "job-123")
        self.assertEqual(manifest["attempt"], 2)
        self.assertEqual(manifest["exit_code"], 0)
        self.assertNotIn("error", manifest)
        self.assertIsInstance(manifest["duration_seconds"], (int, float))
        self.assertGreaterEqual(manifest["duration_seconds"], 0)
        started = self.parse_rfc3339(manifest["started_at"])
        ended = self.parse_rfc3339(manifest["ended_at"])
        self.assertLessEqual(started, ended)
        self.assertLess(abs((datetime.datetime.now(datetime.timezone.utc) - ended).total_seconds()),
                        60)
        files = {entry["path"]: entry for entry in manifest["files"]}
        self.assertEqual(set(files), set(expected))  # the manifest does not list itself
        for rel, content in expected.items():
            self.assertEqual(files[rel]["size"], len(content), rel)
            self.assertEqual(files[rel]["sha256"], hashlib.sha256(content).hexdigest(), rel)

    def parse_rfc3339(self, text: str) -> datetime.datetime:
        self.assertTrue(text.endswith("Z"), text)
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        self.assertEqual(parsed.utcoffset(), datetime.timedelta(0))
        return parsed

    def test_args_reach_the_script(self) -> None:
        self.write_script("""
            import json, os, sys
            with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "argv.json"), "w") as f:
                json.dump(sys.argv[1:], f)
        """)
        args = ["--epochs", "3", "with space", "--flag=a=b", ""]
        result = self.run_entrypoint(*args)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(self.read_published("argv.json")), args)

    def test_script_sees_the_environment_contract(self) -> None:
        names = ["SCRIPT_KEY", "ML_INPUT_BUCKET", "ML_OUTPUT_BUCKET", "OUTPUT_PREFIX", "JOB_ID",
                 "COMPUTE_TYPE", "TRIGGER_USER", "TRIGGER_PROJECT", "TRIGGER_EXPERIMENT",
                 "OPERATION", "ML_OUTPUT_DIR"]
        self.write_script(f"""
            import json, os
            names = {names!r}
            with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "env.json"), "w") as f:
                json.dump({{n: os.environ.get(n) for n in names}}, f)
        """)
        result = self.run_entrypoint()
        self.assertEqual(result.returncode, 0, result.stderr)
        seen = json.loads(self.read_published("env.json"))
        expected = self.env()
        for name in names:
            self.assertEqual(seen[name], expected[name], name)
        self.assertTrue(os.path.isdir(self.output_dir))  # created by the entrypoint

    def test_nonzero_exit_code_is_propagated_and_outputs_published(self) -> None:
        self.write_script("""
            import os, sys
            with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "partial.txt"), "w") as f:
                f.write("half")
            print("boom", file=sys.stderr)
            sys.exit(3)
        """)
        result = self.run_entrypoint()
        self.assertEqual(result.returncode, 3)
        self.assertIn("boom\n", result.stderr)
        manifest = self.manifest()
        self.assertEqual(manifest["exit_code"], 3)
        self.assertEqual([f["path"] for f in manifest["files"]], ["partial.txt"])
        self.assertEqual(self.read_published("partial.txt"), b"half")

    def test_script_killed_by_its_own_signal_reports_128_plus_signal(self) -> None:
        self.write_script("""
            import os, signal
            os.kill(os.getpid(), signal.SIGKILL)
        """)
        result = self.run_entrypoint()
        self.assertEqual(result.returncode, 137)
        self.assertEqual(self.manifest()["exit_code"], 137)

    def test_sigterm_is_forwarded_and_checkpoint_published(self) -> None:
        self.write_script("""
            import os, signal, sys, time
            def on_term(signum, frame):
                with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "checkpoint.pt"), "w") as f:
                    f.write("step=42")
                print("checkpointed", flush=True)
                sys.exit(0)
            signal.signal(signal.SIGTERM, on_term)
            print("ready", flush=True)
            time.sleep(30)
            sys.exit(9)
        """)
        proc = self.start()
        stdout = LineReader(proc.stdout)
        stderr = LineReader(proc.stderr)
        try:
            stdout.wait_for("ready")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(code, 0, stderr.rest())
        self.assertIn("checkpointed", stdout.rest())
        self.assertEqual(self.read_published("checkpoint.pt"), b"step=42")
        manifest = self.manifest()
        self.assertEqual(manifest["exit_code"], 0)
        self.assertEqual([f["path"] for f in manifest["files"]], ["checkpoint.pt"])

    def test_script_ignoring_sigterm_is_killed_after_grace(self) -> None:
        self.write_script("""
            import os, signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "before.txt"), "w") as f:
                f.write("x")
            print("ready", flush=True)
            time.sleep(30)
        """)
        proc = self.start(MLGW_TERM_GRACE="1")
        stdout = LineReader(proc.stdout)
        stderr = LineReader(proc.stderr)
        try:
            stdout.wait_for("ready")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        elapsed = time.monotonic() - started
        self.assertEqual(code, 137, stderr.rest())
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 5)
        self.assertIn("SIGKILL", stderr.rest())
        manifest = self.manifest()
        self.assertEqual(manifest["exit_code"], 137)
        self.assertEqual([f["path"] for f in manifest["files"]], ["before.txt"])

    def test_missing_script_exits_127_with_manifest(self) -> None:
        result = self.run_entrypoint(key="scripts/nope.py")
        self.assertEqual(result.returncode, 127)
        self.assertIn("entrypoint: ", result.stderr)
        manifest = self.manifest()
        self.assertEqual(manifest["exit_code"], 127)
        self.assertIn("nope.py", manifest["error"])
        self.assertEqual(manifest["files"], [])
        self.assertEqual(manifest["job_id"], "job-123")

    def test_unsafe_keys_are_refused(self) -> None:
        # A file that a '..' key would reach, so that only the check can stop it.
        with open(os.path.join(self.tmp, "evil.py"), "w", encoding="utf-8") as handle:
            handle.write("import sys; print('EVIL'); sys.exit(0)\n")
        for key in ("../evil.py", "scripts/../../evil.py", os.path.join(self.tmp, "evil.py"), ""):
            with self.subTest(key=key):
                shutil.rmtree(self.published, ignore_errors=True)
                result = self.run_entrypoint(key=key)
                self.assertEqual(result.returncode, 127, result.stderr)
                self.assertNotIn("EVIL", result.stdout)
                manifest = self.manifest()
                self.assertEqual(manifest["exit_code"], 127)
                self.assertIn("error", manifest)

    def test_output_is_streamed_line_by_line(self) -> None:
        self.write_script("""
            import sys, time
            print("first line")
            print("first err", file=sys.stderr)
            time.sleep(1.5)
            print("second line")
        """)
        proc = self.start()
        stdout = LineReader(proc.stdout)
        stderr = LineReader(proc.stderr)
        try:
            stdout.wait_for("first line", timeout=5)
            self.assertIsNone(proc.poll(), "the first line arrived only after the script ended")
            stderr.wait_for("first err", timeout=5)
            self.assertIsNone(proc.poll())
            stdout.wait_for("second line", timeout=5)
            self.assertEqual(proc.wait(timeout=TIMEOUT), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def test_publish_failure_fails_a_successful_job(self) -> None:
        self.write_script("print('ok')\n")
        result = self.run_entrypoint(MLGW_OUTPUT_URI="ftp://host/out/")
        self.assertEqual(result.returncode, 1)
        self.assertIn("entrypoint: cannot publish", result.stderr)

    def test_publish_failure_keeps_a_failed_jobs_code(self) -> None:
        self.write_script("import sys; sys.exit(5)\n")
        result = self.run_entrypoint(MLGW_OUTPUT_URI="ftp://host/out/")
        self.assertEqual(result.returncode, 5)

    def test_script_manifest_name_is_reserved(self) -> None:
        self.write_script("""
            import os
            out = os.environ["ML_OUTPUT_DIR"]
            with open(os.path.join(out, "manifest.json"), "w") as f:
                f.write("not ours")
            with open(os.path.join(out, "a.txt"), "w") as f:
                f.write("a")
        """)
        result = self.run_entrypoint()
        self.assertEqual(result.returncode, 0, result.stderr)
        manifest = self.manifest()  # ours, valid JSON, written last
        self.assertEqual([f["path"] for f in manifest["files"]], ["a.txt"])


if __name__ == "__main__":
    unittest.main()
