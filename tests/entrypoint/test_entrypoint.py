#!/usr/bin/env python3
"""Tests of images/entrypoint/entrypoint.py, run as a real subprocess in local mode
(MLGW_INPUT_DIR + a file:// MLGW_OUTPUT_URI). Standard library only.

Run from the repository root: python3 tests/entrypoint/test_entrypoint.py
"""
from __future__ import annotations

import datetime
import hashlib
import importlib.util
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
import unittest.mock
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


class EntrypointCase(unittest.TestCase):
    """A temporary input, output and published directory, and ways to run the entrypoint."""

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


class EntrypointTest(EntrypointCase):
    """Fetch, run, signals, outputs and manifest, and restoring a retried attempt."""

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

    def test_a_second_sigterm_is_not_forwarded(self) -> None:
        self.write_script("""
            import os, signal, sys, time
            seen = []
            def on_term(signum, frame):
                seen.append(signum)
            signal.signal(signal.SIGTERM, on_term)
            print("ready", flush=True)
            deadline = time.monotonic() + 10
            while not seen and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(1.0)  # "checkpointing" while the second SIGTERM arrives
            with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "terms.txt"), "w") as f:
                f.write(str(len(seen)))
            sys.exit(0)
        """)
        proc = self.start()
        stdout = LineReader(proc.stdout)
        stderr = LineReader(proc.stderr)
        try:
            stdout.wait_for("ready")
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(code, 0, stderr.rest())
        self.assertEqual(self.read_published("terms.txt"), b"1")
        self.assertIn("again", stderr.rest())

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

    def test_a_reader_that_goes_away_loses_neither_exit_code_nor_outputs(self) -> None:
        # Whoever reads the job's output (the local executor) dies: the script
        # keeps printing far past a pipe's buffer, still ends, and its outputs
        # and exit code are published.
        self.write_script("""
            import os, sys
            for i in range(20000):
                print("line", i, "x" * 40)
            open(os.path.join(os.environ["ML_OUTPUT_DIR"], "done.txt"), "w").write("done")
            sys.exit(4)
        """)
        read_end, write_end = os.pipe()
        os.close(read_end)  # nobody will ever read
        try:
            proc = subprocess.run([sys.executable, ENTRYPOINT], env=self.env(),
                                  stdout=write_end, stderr=write_end, timeout=TIMEOUT)
        finally:
            os.close(write_end)
        self.assertEqual(proc.returncode, 4)
        self.assertEqual(self.read_published("done.txt"), b"done")
        self.assertEqual(self.manifest()["exit_code"], 4)

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

    def test_model_cache_use_is_recorded_in_the_manifest_and_marked(self) -> None:
        cache = os.path.join(self.tmp, "cache")
        for name in ("alpha", "beta", "idle"):
            os.makedirs(os.path.join(cache, name))
            with open(os.path.join(cache, name, "weights.bin"), "wb") as handle:
                handle.write(b"w" * 64)
            past = time.time() - 3600
            os.utime(os.path.join(cache, name, "weights.bin"), (past, past))
            os.utime(os.path.join(cache, name), (past, past))
        self.write_script("""
            import json, os
            cache = os.environ["MODEL_CACHE_DIR"]
            with open(os.path.join(cache, "alpha", "weights.bin"), "ab") as handle:
                handle.write(b"more")                      # changed: used
            os.makedirs(os.path.join(cache, "gamma"))      # new: created
            with open(os.path.join(cache, "gamma", "weights.bin"), "wb") as handle:
                handle.write(b"new")
            with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "cache_usage.json"), "w") as f:
                json.dump({"used": ["beta", "not-there"]}, f)   # read, by its own report
        """)
        result = self.run_entrypoint(MODEL_CACHE_DIR=cache)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.manifest()["cache"],
                         {"dir": cache, "used": ["alpha", "beta"], "created": ["gamma"]})
        self.assertEqual(sorted(os.listdir(os.path.join(cache, ".usage"))),
                         ["alpha", "beta", "gamma"])

    def test_no_cache_no_cache_record(self) -> None:
        self.write_script("print('hi')\n")
        result = self.run_entrypoint(MODEL_CACHE_DIR=os.path.join(self.tmp, "absent"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("cache", self.manifest())
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "absent")))

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

    # --- a retried attempt restores what an earlier one published ---

    def write_published(self, rel: str, content: bytes) -> None:
        path = os.path.join(self.published, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)

    RESUMING_SCRIPT = """
        import json, os
        out = os.environ["ML_OUTPUT_DIR"]
        seen = {}
        for root, dirs, files in os.walk(out):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    seen[os.path.relpath(path, out)] = f.read().decode()
        step = int(seen.get("checkpoint.txt", "step=0").split("=")[1])
        with open(os.path.join(out, "checkpoint.txt"), "w") as f:
            f.write(f"step={step + 1}")
        with open(os.path.join(out, "seen.json"), "w") as f:
            json.dump(seen, f, sort_keys=True)
        print(f"attempt {os.environ.get('MLGW_ATTEMPT')} at step {step + 1}")
    """

    def test_retry_restores_the_published_outputs_before_the_script_runs(self) -> None:
        self.write_script(self.RESUMING_SCRIPT)
        first = self.run_entrypoint(MLGW_ATTEMPT="1")
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(self.read_published("checkpoint.txt"), b"step=1")
        self.write_published("nested/dir/state.bin", b"\x00\x01state")

        # A retry runs on a fresh machine: an empty ML_OUTPUT_DIR of its own.
        second = self.run_entrypoint(MLGW_ATTEMPT="2",
                                     ML_OUTPUT_DIR=os.path.join(self.tmp, "second-output"))
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertIn("attempt 2 at step 2", second.stdout)
        self.assertIn("restored 3 file(s)", second.stderr)
        seen = json.loads(self.read_published("seen.json"))
        # The earlier manifest is not restored: the name is the entrypoint's.
        self.assertEqual(sorted(seen), ["checkpoint.txt", "nested/dir/state.bin", "seen.json"])
        self.assertEqual(seen["checkpoint.txt"], "step=1")
        self.assertEqual(self.read_published("checkpoint.txt"), b"step=2")
        manifest = self.manifest()
        self.assertEqual(manifest["attempt"], 2)
        self.assertEqual(manifest["exit_code"], 0)
        files = {entry["path"]: entry for entry in manifest["files"]}
        self.assertEqual(sorted(files), ["checkpoint.txt", "nested/dir/state.bin", "seen.json"])
        self.assertEqual(files["nested/dir/state.bin"]["sha256"],
                         hashlib.sha256(b"\x00\x01state").hexdigest())

        third = self.run_entrypoint(MLGW_ATTEMPT="3",
                                    ML_OUTPUT_DIR=os.path.join(self.tmp, "third-output"))
        self.assertEqual(third.returncode, 0, third.stderr)
        self.assertIn("attempt 3 at step 3", third.stdout)

    def test_first_attempt_restores_nothing(self) -> None:
        self.write_script(self.RESUMING_SCRIPT)
        self.write_published("checkpoint.txt", b"step=7")
        result = self.run_entrypoint(MLGW_ATTEMPT="1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(self.read_published("seen.json")), {})
        self.assertEqual(self.read_published("checkpoint.txt"), b"step=1")

    def test_retry_with_nothing_published_starts_afresh(self) -> None:
        self.write_script(self.RESUMING_SCRIPT)
        for published in ("missing", "only-a-manifest"):
            with self.subTest(published=published):
                shutil.rmtree(self.published, ignore_errors=True)
                shutil.rmtree(self.output_dir, ignore_errors=True)
                if published == "only-a-manifest":
                    self.write_published("manifest.json", b'{"files": []}')
                result = self.run_entrypoint(MLGW_ATTEMPT="2")
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn("nothing was published", result.stderr)
                self.assertIn("attempt 2 at step 1", result.stdout)
                self.assertEqual(json.loads(self.read_published("seen.json")), {})

    def test_retry_keeps_files_already_in_the_output_dir(self) -> None:
        self.write_script(self.RESUMING_SCRIPT)
        self.write_published("checkpoint.txt", b"step=4")
        self.write_published("other.txt", b"published")
        os.makedirs(self.output_dir)
        with open(os.path.join(self.output_dir, "checkpoint.txt"), "w", encoding="utf-8") as f:
            f.write("step=5")  # this machine's own, newer than the published copy
        result = self.run_entrypoint(MLGW_ATTEMPT="2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("attempt 2 at step 6", result.stdout)
        self.assertIn("kept 1 file(s)", result.stderr)
        seen = json.loads(self.read_published("seen.json"))
        self.assertEqual(seen, {"checkpoint.txt": "step=5", "other.txt": "published"})

    def test_retry_into_the_published_directory_itself(self) -> None:
        self.write_script(self.RESUMING_SCRIPT)
        self.write_published("checkpoint.txt", b"step=1")
        result = self.run_entrypoint(MLGW_ATTEMPT="2", ML_OUTPUT_DIR=self.published)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("attempt 2 at step 2", result.stdout)
        self.assertEqual(self.read_published("checkpoint.txt"), b"step=2")
        self.assertEqual(self.manifest()["exit_code"], 0)

    def test_restored_files_left_unchanged_are_not_copied_again(self) -> None:
        self.write_script("""
            import os
            with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "changed.txt"), "w") as f:
                f.write("new")
        """)
        self.write_published("big-checkpoint.bin", b"weights" * 1000)
        self.write_published("changed.txt", b"old")
        for rel in ("big-checkpoint.bin", "changed.txt"):
            os.utime(os.path.join(self.published, rel), (1000, 1000))
        result = self.run_entrypoint(MLGW_ATTEMPT="2")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("1 restored and unchanged", result.stderr)
        self.assertEqual(os.stat(os.path.join(self.published, "big-checkpoint.bin")).st_mtime,
                         1000)
        self.assertEqual(self.read_published("changed.txt"), b"new")
        paths = [entry["path"] for entry in self.manifest()["files"]]
        self.assertEqual(paths, ["big-checkpoint.bin", "changed.txt"])

class PipelineInputsTest(EntrypointCase):
    """Data between the steps of a pipeline: PARENT_OUTPUT_URIS → ML_INPUT_DIR."""

    def publish_parent(self, name: str, files: dict[str, bytes]) -> str:
        root = os.path.join(self.tmp, "parents", name)
        for rel, content in files.items():
            path = os.path.join(root, *rel.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(content)
        with open(os.path.join(root, "manifest.json"), "w", encoding="utf-8") as handle:
            handle.write('{"exit_code": 0}')
        return f"file://{root}/"

    LISTING = """
        import json, os
        root = os.environ["ML_INPUT_DIR"]
        seen = {}
        for base, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(base, name)
                with open(path, "rb") as handle:
                    seen[os.path.relpath(path, root)] = handle.read().decode()
        with open(os.path.join(os.environ["ML_OUTPUT_DIR"], "inputs.json"), "w") as out:
            json.dump({"files": seen, "dir": root,
                       "batch_index": os.environ.get("AWS_BATCH_JOB_ARRAY_INDEX")}, out)
    """

    def test_each_parents_outputs_land_in_a_folder_named_after_it(self) -> None:
        self.write_script(self.LISTING)
        parents = {
            "prep": [self.publish_parent("p", {"data.csv": b"a,b", "sub/x.txt": b"x"})],
            "train": [self.publish_parent("t0", {"model.pt": b"m0"}),
                      self.publish_parent("t1", {"model.pt": b"m1"})],
        }
        done = self.run_entrypoint(PARENT_OUTPUT_URIS=json.dumps(parents), ARRAY_INDEX="3")
        self.assertEqual(done.returncode, 0, done.stderr)
        seen = json.loads(self.read_published("inputs.json"))
        self.assertEqual(seen["files"], {
            "prep/data.csv": "a,b", "prep/sub/x.txt": "x",
            "train/0/model.pt": "m0", "train/1/model.pt": "m1",
        })
        self.assertEqual(seen["batch_index"], "3")
        self.assertFalse(os.path.exists(seen["dir"]), "the fetched inputs are removed afterwards")
        self.assertIn("fetched 4 file(s) of 2 parent step(s)", done.stderr)

    def test_an_ml_input_dir_that_is_set_is_the_one_filled(self) -> None:
        self.write_script(self.LISTING)
        chosen = os.path.join(self.tmp, "chosen-input")
        parents = {"prep": [self.publish_parent("p", {"a.txt": b"1"})]}
        done = self.run_entrypoint(PARENT_OUTPUT_URIS=json.dumps(parents), ML_INPUT_DIR=chosen)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(self.read_published("inputs.json"))["dir"], chosen)
        with open(os.path.join(chosen, "prep", "a.txt"), encoding="utf-8") as handle:
            self.assertEqual(handle.read(), "1")

    def test_a_job_outside_a_pipeline_gets_no_ml_input_dir(self) -> None:
        self.write_script("""
            import os, sys
            sys.exit(3 if "ML_INPUT_DIR" in os.environ else 0)
        """)
        done = self.run_entrypoint()
        self.assertEqual(done.returncode, 0, done.stderr)

    def test_parents_that_cannot_be_fetched_fail_the_job_before_the_script(self) -> None:
        self.write_script("""
            import os
            open(os.path.join(os.environ["ML_OUTPUT_DIR"], "ran"), "w").close()
        """)
        for bad in ('{"prep": ["ftp://host/x/"]}', "not json", '{"../up": ["file:///tmp/"]}',
                    '{"prep": "file:///tmp/"}'):
            with self.subTest(parents=bad):
                done = self.run_entrypoint(PARENT_OUTPUT_URIS=bad)
                self.assertEqual(done.returncode, 127, done.stderr)
                self.assertEqual(self.manifest()["exit_code"], 127)
                self.assertIn("PARENT_OUTPUT_URIS" if "ftp" not in bad else "ftp",
                              self.manifest()["error"])
                self.assertFalse(os.path.exists(os.path.join(self.published, "ran")))


def load_entrypoint_module() -> Any:
    spec = importlib.util.spec_from_file_location("mlgw_entrypoint", ENTRYPOINT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class FakeS3Client:
    """The two S3 calls the restore makes, over a dict of keys, in pages of two keys."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.requests: list[dict[str, str]] = []

    def list_objects_v2(self, **request: str) -> dict[str, Any]:
        self.requests.append(dict(request))
        keys = sorted(k for k in self.objects if k.startswith(request["Prefix"]))
        start = int(request.get("ContinuationToken", "0"))
        page: dict[str, Any] = {"IsTruncated": start + 2 < len(keys)}
        if keys[start:start + 2]:
            page["Contents"] = [{"Key": key} for key in keys[start:start + 2]]
        if page["IsTruncated"]:
            page["NextContinuationToken"] = str(start + 2)
        return page

    def download_file(self, bucket: str, key: str, path: str) -> None:
        assert bucket == "out-bucket"
        with open(path, "wb") as handle:
            handle.write(self.objects[key])


class RestoreInProcessTest(unittest.TestCase):
    """The restore's S3 side with a stand-in client (boto3 is not needed), and its failures."""

    def setUp(self) -> None:
        self.entrypoint = load_entrypoint_module()
        self.tmp = tempfile.mkdtemp(prefix="mlgw-ep-s3-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def destination(self, client: FakeS3Client) -> Any:
        destination = self.entrypoint.S3Destination.__new__(self.entrypoint.S3Destination)
        destination.bucket = "out-bucket"
        destination.prefix = "outputs/job-1/"
        destination.client = client
        return destination

    def test_lists_every_page_below_the_prefix_without_folder_markers(self) -> None:
        client = FakeS3Client({
            "outputs/job-1/a.txt": b"a", "outputs/job-1/dir/": b"", "outputs/job-1/dir/b.txt": b"b",
            "outputs/job-1/manifest.json": b"{}", "outputs/job-1/z.bin": b"z",
            "outputs/job-10/other.txt": b"not this job's",
        })
        rels = self.destination(client).list_files()
        self.assertEqual(rels, ["a.txt", "dir/b.txt", "manifest.json", "z.bin"])
        self.assertEqual(len(client.requests), 3)
        self.assertEqual(client.requests[1]["ContinuationToken"], "2")

    def test_restores_plain_paths_only_and_never_the_manifest(self) -> None:
        client = FakeS3Client({
            "outputs/job-1/checkpoint.pt": b"ckpt", "outputs/job-1/logs/epoch1.txt": b"log",
            "outputs/job-1/manifest.json": b"{}", "outputs/job-1/../escape.txt": b"x",
            "outputs/job-1/a//b.txt": b"x", "outputs/job-1/./c.txt": b"x",
        })
        destination = self.destination(client)
        self.entrypoint.open_destination = lambda uri: destination
        output_dir = os.path.join(self.tmp, "out")
        os.makedirs(output_dir)
        restored: dict[str, str] = {}
        self.entrypoint.restore(output_dir, "s3://out-bucket/outputs/job-1/", restored)
        self.assertEqual(restored, {
            "checkpoint.pt": hashlib.sha256(b"ckpt").hexdigest(),
            "logs/epoch1.txt": hashlib.sha256(b"log").hexdigest(),
        })
        found = sorted(os.path.relpath(os.path.join(root, name), self.tmp)
                       for root, _dirs, files in os.walk(self.tmp) for name in files)
        self.assertEqual(found, ["out/checkpoint.pt", "out/logs/epoch1.txt"])

    def test_listing_failure_is_a_restore_error(self) -> None:
        class Failing(FakeS3Client):
            def list_objects_v2(self, **request: str) -> dict[str, Any]:
                raise OSError("AccessDenied")

        destination = self.destination(Failing({}))
        self.entrypoint.open_destination = lambda uri: destination
        with self.assertRaisesRegex(self.entrypoint.RestoreError, "AccessDenied"):
            self.entrypoint.restore(self.tmp, "s3://out-bucket/outputs/job-1/", {})

    def test_failed_restore_fails_the_attempt_and_loses_nothing(self) -> None:
        published = os.path.join(self.tmp, "published")
        os.makedirs(os.path.join(published, "sub"))
        for rel, content in (("a.txt", b"a"), ("sub/checkpoint.pt", b"step=9")):
            with open(os.path.join(published, rel), "wb") as out:
                out.write(content)
        input_dir = os.path.join(self.tmp, "input")
        os.makedirs(input_dir)
        with open(os.path.join(input_dir, "job.py"), "w", encoding="utf-8") as script:
            script.write("import sys; sys.exit(0)\n")
        destination = self.entrypoint.FileDestination(published)
        copy = destination.get_file

        def failing_on_the_checkpoint(rel: str, path: str) -> None:
            if rel.endswith(".pt"):
                raise OSError(5, "Input/output error")
            copy(rel, path)

        destination.get_file = failing_on_the_checkpoint
        self.entrypoint.open_destination = lambda uri: destination
        env = {"SCRIPT_KEY": "job.py", "MLGW_INPUT_DIR": input_dir, "MLGW_ATTEMPT": "2",
               "ML_OUTPUT_DIR": os.path.join(self.tmp, "out"), "JOB_ID": "job-1",
               "MLGW_OUTPUT_URI": f"file://{published}/"}
        with unittest.mock.patch.dict(os.environ, env):
            code = self.entrypoint.main(["entrypoint.py"])
        self.assertEqual(code, 127)
        with open(os.path.join(published, "manifest.json"), encoding="utf-8") as text:
            manifest = json.load(text)
        self.assertEqual(manifest["exit_code"], 127)
        self.assertIn("cannot restore sub/checkpoint.pt", manifest["error"])
        self.assertIn("Input/output error", manifest["error"])
        with open(os.path.join(published, "sub", "checkpoint.pt"), "rb") as data:
            self.assertEqual(data.read(), b"step=9")  # the earlier progress is still there


if __name__ == "__main__":
    unittest.main()
