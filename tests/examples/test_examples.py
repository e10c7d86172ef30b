#!/usr/bin/env python3
"""Runs each job of examples/ through the real job entrypoint, as the gateway does, on the CPU
with tiny settings, and checks what they publish against independent computations.

Needs PyTorch: run it with the test venv's interpreter (tests/requirements.txt), from the
repository root: build/venv/bin/python tests/examples/test_examples.py. Without torch it
fails; it never skips.
"""
from __future__ import annotations

import cmath
import csv
import hashlib
import importlib.util
import itertools
import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings
from typing import Any

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # a failure, not a skip: these tests are the examples' only check
    sys.exit(f"test_examples: PyTorch is required ({exc}); run with $MLGW_VENV/bin/python "
             "after `make venv`")

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ENTRYPOINT = os.path.join(REPO, "images", "entrypoint", "entrypoint.py")
EXAMPLES = os.path.join(REPO, "examples")
JOBS = ("gpu_training", "gpu_inference", "cpu_processing", "cleanup_processor")
TIMEOUT = 120  # seconds for one job; each takes a few

# The tiny settings (README: examples/README.md): each job runs in seconds on a CPU.
TRAIN_ARGS = ["--samples", "2048", "--hidden", "64", "--layers", "2", "--batch-size", "128"]
FEATURES, HIDDEN, LAYERS, CLASSES = 32, 64, 2, 8  # the model TRAIN_ARGS make
CPU_ARGS = ["--groups", "3", "--signals-per-group", "10", "--length", "256", "--seed", "11"]


def interpreter() -> str:
    """$MLGW_VENV/bin/python when MLGW_VENV is set (CTest sets it), else this interpreter."""
    venv = os.environ.get("MLGW_VENV")
    return os.path.join(venv, "bin", "python") if venv else sys.executable


def setUpModule() -> None:
    probe = subprocess.run([interpreter(), "-c", "import torch"], capture_output=True,
                           text=True, timeout=TIMEOUT)
    if probe.returncode != 0:
        raise AssertionError(f"{interpreter()} cannot import torch:\n{probe.stderr}")


def load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_csv(path: str) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class Job:
    """One job of a test: its input folder, its published output (the file:// output URI),
    and a fresh ML_OUTPUT_DIR per attempt, as on a new container."""

    def __init__(self, root: str, name: str) -> None:
        self.root = root
        self.name = name
        self.input_dir = os.path.join(root, "input")
        self.published = os.path.join(root, "published")
        os.makedirs(os.path.join(self.input_dir, "jobs"), exist_ok=True)
        for job in JOBS:
            shutil.copyfile(os.path.join(EXAMPLES, f"{job}.py"),
                            os.path.join(self.input_dir, "jobs", f"{job}.py"))

    def env(self, attempt: int, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MLGW_", "ML_")) and k not in ("OPERATION", "MODEL_CACHE_DIR")}
        env.update({
            "SCRIPT_KEY": f"jobs/{self.name}.py",
            "MLGW_INPUT_DIR": self.input_dir,
            "MLGW_OUTPUT_URI": f"file://{self.published}/",
            "ML_OUTPUT_DIR": os.path.join(self.root, f"work-attempt-{attempt}"),
            "JOB_ID": f"test-{self.name}",
            "MLGW_ATTEMPT": str(attempt),
            "COMPUTE_TYPE": "cpu",
            "CUDA_VISIBLE_DEVICES": "",  # these tests run on the CPU, on every machine
        })
        env.update(extra or {})
        return env

    def command(self, args: list[str]) -> list[str]:
        return [interpreter(), ENTRYPOINT, *args]

    def run(self, *args: str, attempt: int = 1,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(list(args)), env=self.env(attempt, env),
                              capture_output=True, text=True, timeout=TIMEOUT)

    def start(self, *args: str, attempt: int = 1) -> tuple[subprocess.Popen[str], str]:
        """Starts the job with its stdout on a pipe; returns it and the file of its stderr."""
        stderr_path = os.path.join(self.root, f"stderr-attempt-{attempt}.txt")
        with open(stderr_path, "w", encoding="utf-8") as stderr:
            proc = subprocess.Popen(self.command(list(args)), env=self.env(attempt),
                                    stdout=subprocess.PIPE, stderr=stderr, text=True)
        return proc, stderr_path

    def path(self, rel: str) -> str:
        return os.path.join(self.published, rel)

    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = read_json(self.path("manifest.json"))
        return manifest

    def listed(self) -> dict[str, dict[str, Any]]:
        return {entry["path"]: entry for entry in self.manifest()["files"]}


class ExampleTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="mlgw-examples-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def job(self, name: str, folder: str | None = None) -> Job:
        return Job(os.path.join(self.tmp, folder or name), name)

    def assertSucceeded(self, result: subprocess.CompletedProcess[str]) -> None:
        self.assertEqual(result.returncode, 0,
                         f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")

    def assertPublishedAsListed(self, job: Job, *rels: str) -> None:
        listed = job.listed()
        for rel in rels:
            self.assertIn(rel, listed)
            self.assertEqual(listed[rel]["sha256"], sha256(job.path(rel)), rel)


def train_flops_per_sample() -> int:
    widths = [FEATURES] + [HIDDEN] * LAYERS + [CLASSES]
    forward = sum(2 * a * b for a, b in itertools.pairwise(widths))
    return 3 * forward


class TrainingTest(ExampleTestCase):
    def test_training_publishes_a_checkpoint_and_a_retry_resumes_from_it(self) -> None:
        job = self.job("gpu_training")
        first = job.run(*TRAIN_ARGS, "--epochs", "2", attempt=1)
        self.assertSucceeded(first)
        self.assertIn("epoch 2/2", first.stdout)
        self.assertPublishedAsListed(job, "checkpoint.pt", "metrics.json")
        manifest = job.manifest()
        self.assertEqual((manifest["attempt"], manifest["exit_code"]), (1, 0))
        metrics = read_json(job.path("metrics.json"))
        self.assertEqual(metrics["status"], "completed")
        self.assertTrue(metrics["device"].startswith("cpu"), metrics["device"])
        self.assertEqual(metrics["precision"], "fp32")
        self.assertEqual(metrics["flops_per_sample"]["train"], train_flops_per_sample())
        self.assertGreater(metrics["samples_per_s"], 0)
        self.assertAlmostEqual(metrics["achieved_flops_per_s"],
                               metrics["samples_per_s"] * train_flops_per_sample(), delta=1)
        losses = [epoch["loss"] for epoch in metrics["epochs"]]
        self.assertEqual([epoch["epoch"] for epoch in metrics["epochs"]], [1, 2])
        self.assertLess(losses[1], losses[0])
        checkpoint = torch.load(job.path("checkpoint.pt"), weights_only=True)
        self.assertEqual((checkpoint["epoch"], checkpoint["step"]), (2, 0))
        self.assertEqual(checkpoint["config"], {"features": FEATURES, "hidden": HIDDEN,
                                                "layers": LAYERS, "classes": CLASSES})

        # The retry: a fresh ML_OUTPUT_DIR, the same output URI, two more epochs.
        second = job.run(*TRAIN_ARGS, "--epochs", "4", attempt=2)
        self.assertSucceeded(second)
        self.assertIn("restored 2 file(s)", second.stderr)
        self.assertIn("resuming from checkpoint.pt: 2 epoch(s) done, step 0", second.stdout)
        self.assertNotIn("epoch 1/4", second.stdout)
        self.assertIn("epoch 3/4", second.stdout)
        resumed = read_json(job.path("metrics.json"))
        self.assertEqual(resumed["resumed_from"], {"epoch": 2, "step": 0})
        self.assertEqual(resumed["attempt"], 2)
        self.assertEqual([epoch["epoch"] for epoch in resumed["epochs"]], [1, 2, 3, 4])
        self.assertEqual(resumed["epochs"][:2], metrics["epochs"])  # carried, not redone
        resumed_losses = [epoch["loss"] for epoch in resumed["epochs"]]
        self.assertLess(resumed_losses[3], resumed_losses[0])
        self.assertEqual(torch.load(job.path("checkpoint.pt"), weights_only=True)["epoch"], 4)
        self.assertEqual(job.manifest()["attempt"], 2)
        self.assertPublishedAsListed(job, "checkpoint.pt", "metrics.json")

    def test_sigterm_checkpoints_exits_non_zero_and_the_retry_goes_on_from_there(self) -> None:
        job = self.job("gpu_training")
        # Small batches and many epochs: it is still training when SIGTERM comes.
        args = [*TRAIN_ARGS[:-1], "16", "--epochs", "1000"]
        proc, stderr_path = job.start(*args, attempt=1)
        lines: queue.Queue[str | None] = queue.Queue()
        seen: list[str] = []

        def read_stdout() -> None:
            assert proc.stdout is not None
            with proc.stdout:
                for line in iter(proc.stdout.readline, ""):
                    lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read_stdout, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + TIMEOUT
            while not any(line.startswith("epoch 1/1000") for line in seen):
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                self.assertIsNotNone(line, f"training ended early: {''.join(seen)}")
                seen.append(line or "")
            proc.send_signal(signal.SIGTERM)  # what Batch and the local executor send
            code = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
        while not lines.empty():
            seen.append(lines.get() or "")
        stdout = "".join(seen)
        with open(stderr_path, encoding="utf-8") as handle:
            stderr = handle.read()
        self.assertEqual(code, 128 + signal.SIGTERM, f"{stdout}\n{stderr}")
        self.assertIn("SIGTERM: checkpoint saved", stdout)
        self.assertEqual(job.manifest()["exit_code"], 128 + signal.SIGTERM)
        self.assertPublishedAsListed(job, "checkpoint.pt", "metrics.json")
        self.assertEqual(read_json(job.path("metrics.json"))["status"], "interrupted")
        checkpoint = torch.load(job.path("checkpoint.pt"), weights_only=True)
        epoch, step = checkpoint["epoch"], checkpoint["step"]
        self.assertGreaterEqual(epoch, 1)
        self.assertEqual(len(checkpoint["history"]), epoch)

        # The retry finishes the epoch that was cut short, from the step it had reached.
        retry = job.run(*args[:-1], str(epoch + 1), attempt=2)
        self.assertSucceeded(retry)
        self.assertIn(f"resuming from checkpoint.pt: {epoch} epoch(s) done, step {step} ",
                      retry.stdout)
        self.assertIn(f"epoch {epoch + 1}/{epoch + 1}", retry.stdout)
        metrics = read_json(job.path("metrics.json"))
        self.assertEqual(metrics["status"], "completed")
        self.assertEqual(metrics["resumed_from"], {"epoch": epoch, "step": step})
        self.assertEqual(len(metrics["epochs"]), epoch + 1)

    def test_training_and_inference_build_the_same_model(self) -> None:
        training, inference = load_example("gpu_training"), load_example("gpu_inference")
        for config in ({"features": 3, "hidden": 5, "layers": 1, "classes": 2},
                       {"features": 32, "hidden": 64, "layers": 3, "classes": 8}):
            a, b = training.build_model(config), inference.build_model(config)
            self.assertEqual(str(a), str(b))
            self.assertEqual({k: v.shape for k, v in a.state_dict().items()},
                             {k: v.shape for k, v in b.state_dict().items()})


class InferenceTest(ExampleTestCase):
    def test_inference_predicts_with_the_trained_checkpoint(self) -> None:
        training = self.job("gpu_training")
        self.assertSucceeded(training.run(*TRAIN_ARGS, "--epochs", "2"))
        checkpoint_uri = f"file://{training.path('checkpoint.pt')}"

        job = self.job("gpu_inference")
        result = job.run("--checkpoint", checkpoint_uri, "--samples", "64", "--seed", "5",
                         "--batch-size", "16")
        self.assertSucceeded(result)
        self.assertIn("trained for 2 epoch(s)", result.stdout)
        self.assertPublishedAsListed(job, "predictions.csv", "inference_summary.json")
        summary = read_json(job.path("inference_summary.json"))
        self.assertEqual(summary["checkpoint"], training.path("checkpoint.pt"))
        self.assertEqual(summary["trained_epochs"], 2)
        self.assertEqual(sum(summary["class_counts"].values()), 64)
        rows = read_csv(job.path("predictions.csv"))
        self.assertEqual([int(row["index"]) for row in rows], list(range(64)))

        # The same predictions, computed here from the checkpoint's tensors by hand.
        state = torch.load(training.path("checkpoint.pt"), weights_only=True)["model"]
        inputs = torch.randn(64, FEATURES, generator=torch.Generator().manual_seed(5))
        hidden = inputs
        layer_keys = sorted({key.split(".")[0] for key in state}, key=int)
        for position, key in enumerate(layer_keys):
            hidden = hidden @ state[f"{key}.weight"].T + state[f"{key}.bias"]
            if position < len(layer_keys) - 1:
                hidden = F.gelu(hidden)
        probabilities = torch.softmax(hidden, dim=1)
        expected_confidence, expected_class = probabilities.max(dim=1)
        self.assertEqual([int(row["predicted_class"]) for row in rows], expected_class.tolist())
        for row, confidence in zip(rows, expected_confidence.tolist(), strict=True):
            self.assertAlmostEqual(float(row["confidence"]), confidence, places=5)
        self.assertGreater(len({row["predicted_class"] for row in rows}), 1)


def naive_dft_magnitudes(values: list[float]) -> list[float]:
    n = len(values)
    return [abs(sum(x * cmath.exp(-2j * math.pi * k * t / n) for t, x in enumerate(values)))
            for k in range(n // 2 + 1)]


class CpuProcessingTest(ExampleTestCase):
    def test_features_match_an_independent_computation(self) -> None:
        job = self.job("cpu_processing")
        result = job.run(*CPU_ARGS, "--workers", "2", "--save-signals")
        self.assertSucceeded(result)
        self.assertPublishedAsListed(job, "features.csv", "groups.csv", "summary.json",
                                     "signals.jsonl")
        summary = read_json(job.path("summary.json"))
        tones = [group["tone_hz"] for group in summary["groups"]]
        self.assertEqual(len(set(tones)), 3)
        for tone in tones:  # each on an exact bin of a 256-sample DFT at 1000 Hz
            self.assertAlmostEqual(tone * 256 / 1000, round(tone * 256 / 1000), places=9)
        rows = read_csv(job.path("features.csv"))
        self.assertEqual(len(rows), 30)
        with open(job.path("signals.jsonl"), encoding="utf-8") as handle:
            signals = [json.loads(line) for line in handle]
        self.assertEqual(len(signals), 30)
        for row, signal_ in zip(rows, signals, strict=True):
            self.assertEqual((int(row["group"]), int(row["signal"])),
                             (signal_["group"], signal_["signal"]))
            values = signal_["samples"]
            self.assertEqual(len(values), 256)
            n = len(values)
            rms = math.sqrt(sum(x * x for x in values) / n)
            mean = sum(values) / n
            crossings = sum(1 for i in range(1, n) if (values[i - 1] < 0) != (values[i] < 0))
            magnitudes = naive_dft_magnitudes(values)
            peak_bin = max(range(1, n // 2 + 1), key=magnitudes.__getitem__)
            self.assertAlmostEqual(float(row["rms"]), rms, places=6)
            self.assertAlmostEqual(float(row["mean"]), mean, places=6)
            self.assertEqual(int(row["zero_crossings"]), crossings)
            self.assertAlmostEqual(float(row["peak_frequency_hz"]), peak_bin * 1000 / n)
            self.assertAlmostEqual(float(row["peak_amplitude"]), 2 * magnitudes[peak_bin] / n,
                                   places=6)
            # The tone put into each signal is the one found (noise sd 0.5, amplitude >= 0.5).
            self.assertAlmostEqual(float(row["peak_frequency_hz"]), tones[signal_["group"]])
        self.assertEqual(summary["detection_rate"], 1.0)
        self.assertEqual(summary["features_sha256"], sha256(job.path("features.csv")))

        # Deterministic: the same seed gives the same features, however many workers.
        again = self.job("cpu_processing", "again")
        self.assertSucceeded(again.run(*CPU_ARGS, "--workers", "1"))
        self.assertEqual(sha256(again.path("features.csv")), sha256(job.path("features.csv")))
        other = self.job("cpu_processing", "other-seed")
        self.assertSucceeded(other.run(*CPU_ARGS[:-1], "12", "--workers", "1"))
        self.assertNotEqual(sha256(other.path("features.csv")), sha256(job.path("features.csv")))


def tree_size(directory: str) -> tuple[int, int]:
    """(bytes, files) of the regular files below ``directory``."""
    size = files = 0
    for root, _dirs, names in os.walk(directory):
        for name in names:
            size += os.path.getsize(os.path.join(root, name))
            files += 1
    return size, files


class CleanupTest(ExampleTestCase):
    def test_cleanup_frees_what_warm_cache_wrote_and_keeps_the_directory(self) -> None:
        cache = os.path.join(self.tmp, "cache")
        env = {"MODEL_CACHE_DIR": cache}
        warm = self.job("cleanup_processor", "warm")
        result = warm.run("--models", "alpha", "beta", "--size-mb", "0.05",
                          env={**env, "OPERATION": "warm-cache"})
        self.assertSucceeded(result)
        self.assertIn("alpha: written", result.stdout)
        report = read_json(warm.path("summary.json"))
        size, files = tree_size(cache)
        self.assertEqual((report["written_bytes"], report["written_files"]), (size, files))
        self.assertEqual(files, 4)
        self.assertGreater(size, 2 * int(0.05 * 2**20))
        for name in ("alpha", "beta"):
            description = read_json(os.path.join(cache, name, "model.json"))
            self.assertEqual(description["sha256"],
                             sha256(os.path.join(cache, name, "weights.bin")))

        again = self.job("cleanup_processor", "warm-again")
        self.assertSucceeded(again.run("--models", "alpha", "--size-mb", "0.05",
                                       env={**env, "OPERATION": "warm-cache"}))
        self.assertEqual(read_json(again.path("summary.json"))["written_bytes"], 0)

        clean = self.job("cleanup_processor", "clean")
        result = clean.run(env={**env, "OPERATION": "cleanup-cache"})
        self.assertSucceeded(result)
        self.assertIn(f"freed {size / 1024:.2f} KiB ({size} bytes) in 4 file(s)", result.stdout)
        report = read_json(clean.path("summary.json"))
        self.assertEqual((report["freed_bytes"], report["files"], report["directories"]),
                         (size, 4, 2))
        self.assertEqual(report["errors"], [])
        self.assertTrue(os.path.isdir(cache))
        self.assertEqual(os.listdir(cache), [])

    def warm_models(self, cache: str, *names: str) -> None:
        warm = self.job("cleanup_processor", "warm-" + "-".join(names))
        self.assertSucceeded(warm.run("--models", *names, "--size-mb", "0.01",
                                      env={"MODEL_CACHE_DIR": cache, "OPERATION": "warm-cache"}))

    def test_cleanup_of_named_models_removes_only_them(self) -> None:
        cache = os.path.join(self.tmp, "cache")
        self.warm_models(cache, "alpha", "beta", "gamma")
        os.makedirs(os.path.join(cache, ".usage"))
        with open(os.path.join(cache, ".usage", "beta"), "w", encoding="utf-8"):
            pass
        beta_size, _ = tree_size(os.path.join(cache, "beta"))
        clean = self.job("cleanup_processor", "clean-some")
        result = clean.run("--models", "beta", "delta",
                           env={"MODEL_CACHE_DIR": cache, "OPERATION": "cleanup-cache"})
        self.assertSucceeded(result)
        report = read_json(clean.path("summary.json"))
        self.assertEqual((report["removed"], report["absent"]), (["beta"], ["delta"]))
        self.assertEqual(report["freed_bytes"], beta_size)
        self.assertEqual(sorted(os.listdir(cache)), [".usage", "alpha", "gamma"])
        self.assertEqual(os.listdir(os.path.join(cache, ".usage")), [])
        self.assertIn("delta: not in the cache", result.stdout)

    def test_cleanup_older_than_removes_entries_not_used_since(self) -> None:
        cache = os.path.join(self.tmp, "cache")
        self.warm_models(cache, "old", "recent", "marked")
        ten_days_ago = time.time() - 10 * 86400
        for name in ("old", "marked"):  # every time in them ten days back
            for folder, _dirs, files in os.walk(os.path.join(cache, name)):
                for child in files:
                    os.utime(os.path.join(folder, child), (ten_days_ago, ten_days_ago))
                os.utime(folder, (ten_days_ago, ten_days_ago))
        os.makedirs(os.path.join(cache, ".usage"))  # a job reported using "marked" just now
        with open(os.path.join(cache, ".usage", "marked"), "w", encoding="utf-8"):
            pass
        clean = self.job("cleanup_processor", "clean-old")
        result = clean.run("--older-than-days", "7",
                           env={"MODEL_CACHE_DIR": cache, "OPERATION": "cleanup-cache"})
        self.assertSucceeded(result)
        self.assertEqual(read_json(clean.path("summary.json"))["removed"], ["old"])
        self.assertEqual(sorted(os.listdir(cache)), [".usage", "marked", "recent"])

    def test_bad_operations_and_paths_are_refused(self) -> None:
        job = self.job("cleanup_processor")
        cases = [
            ({"OPERATION": "defragment"}, [], "unknown operation 'defragment'"),
            ({}, [], "unknown operation none"),
            # --dry-run: even if the refusal failed, nothing would be deleted.
            ({"OPERATION": "cleanup-cache"}, ["--cache-dir", "/", "--dry-run"], "root directory"),
            ({"OPERATION": "cleanup-cache"}, ["--cache-dir", "", "--dry-run"], "empty path"),
            ({"OPERATION": "warm-cache", "MODEL_CACHE_DIR": self.tmp}, ["--models", "../up"],
             "model names must match"),
            ({"OPERATION": "cleanup-cache", "MODEL_CACHE_DIR": self.tmp},
             ["--models", "a", "--older-than-days", "3", "--dry-run"], "cannot be used together"),
            ({"OPERATION": "cleanup-cache", "MODEL_CACHE_DIR": self.tmp},
             ["--older-than-days", "0", "--dry-run"], "--older-than-days must be"),
        ]
        for env, args, message in cases:
            with self.subTest(env=env, args=args):
                result = job.run(*args, env=env)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(message, result.stderr)
                self.assertEqual(job.manifest()["exit_code"], 2)


if __name__ == "__main__":
    unittest.main()
