#!/usr/bin/env python3
"""Batch inference with the classifier gpu_training.py trains, on a GPU when there is one.

The model comes from a checkpoint of gpu_training.py, which holds the weights and the
model's configuration:

- ``--checkpoint PATH``, ``file:///PATH`` or ``s3://bucket/key`` (an S3 checkpoint is
  downloaded once into ``$MODEL_CACHE_DIR/checkpoints/`` — the shared model cache, /opt/models
  in the job containers — and read from there by later jobs);
- else ``$ML_OUTPUT_DIR/checkpoint.pt`` when there is one;
- else, as a step of a pipeline, the best checkpoint its parent steps published into
  ``$ML_INPUT_DIR`` (``<step>/checkpoint.pt``, or ``<step>/<index>/checkpoint.pt`` for a
  fanned-out training step): the one whose ``metrics.json`` reports the lowest final
  validation loss;
- else no checkpoint: a freshly initialised model of ``--features/--hidden/--layers/--classes``
  (said so in the output: its predictions mean nothing, but the pipeline runs end to end).

It predicts the class of ``--samples`` generated inputs (standard normal, from ``--seed``) in
batches, with bf16 autocast on a bf16-capable GPU, and writes ``predictions.csv`` (``index,
predicted_class,confidence``) and ``inference_summary.json`` (the model's source, class counts,
mean confidence, samples/s) into ``$ML_OUTPUT_DIR``.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import glob
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import urllib.parse
import warnings
from typing import Any

# torch warns at import when numpy is not installed; this script does not use numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
from torch import nn  # noqa: E402

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


def build_model(config: dict[str, int]) -> nn.Sequential:
    """The MLP described by ``config``: the same builder as gpu_training.py's (each job
    script is uploaded on its own; tests/examples checks that the two stay the same)."""
    modules: list[nn.Module] = []
    width = config["features"]
    for _ in range(config["layers"]):
        modules += [nn.Linear(width, config["hidden"]), nn.GELU()]
        width = config["hidden"]
    modules.append(nn.Linear(width, config["classes"]))
    return nn.Sequential(*modules)


def make_inputs(seed: int, samples: int, features: int) -> torch.Tensor:
    """The inputs to classify: standard normal, deterministic for a seed."""
    return torch.randn(samples, features, generator=torch.Generator().manual_seed(seed))


def cache_dir() -> str:
    return os.environ.get("MODEL_CACHE_DIR") or "/opt/models"


def fetch_s3(uri: str) -> str:
    """Download an s3:// checkpoint into the model cache (once); return the local path."""
    parsed = urllib.parse.urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key:
        raise SystemExit(f"gpu_inference: {uri!r} is not s3://bucket/key")
    name = f"{hashlib.sha256(uri.encode()).hexdigest()[:16]}-{os.path.basename(key)}"
    directory = os.path.join(cache_dir(), "checkpoints")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        directory = tempfile.mkdtemp(prefix="gpu-inference-")  # no cache here: download anyway
    path = os.path.join(directory, name)
    if os.path.exists(path):
        print(f"checkpoint {uri} found in the model cache: {path}")
        return path
    import boto3  # lazily: only s3:// checkpoints need it

    temporary = f"{path}.tmp{os.getpid()}"
    print(f"downloading {uri} into {path}")
    try:
        boto3.client("s3").download_file(bucket, key, temporary)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(temporary)
    return path


def resolve_checkpoint(option: str | None, output_dir: str) -> str | None:
    if option:
        if option.startswith("s3://"):
            return fetch_s3(option)
        if option.startswith("file://"):
            option = urllib.parse.unquote(urllib.parse.urlparse(option).path)
        if not os.path.isfile(option):
            raise SystemExit(f"gpu_inference: checkpoint {option} does not exist")
        return option
    default = os.path.join(output_dir, CHECKPOINT_NAME)
    if os.path.isfile(default):
        return default
    return best_input_checkpoint(os.environ.get("ML_INPUT_DIR"))


def final_val_loss(directory: str) -> float:
    """The last epoch's validation loss in directory/metrics.json; infinity when unknown."""
    try:
        with open(os.path.join(directory, "metrics.json"), encoding="utf-8") as handle:
            epochs = json.load(handle).get("epochs") or []
        return float(epochs[-1]["val_loss"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return math.inf


def best_input_checkpoint(input_dir: str | None) -> str | None:
    """Of the checkpoints the parent steps published under input_dir, the one with the lowest
    final validation loss (ties: the first by path); None when there is none."""
    if not input_dir or not os.path.isdir(input_dir):
        return None
    found = sorted(glob.glob(os.path.join(input_dir, "**", CHECKPOINT_NAME), recursive=True))
    if not found:
        return None
    best = min(found, key=lambda path: (final_val_loss(os.path.dirname(path)), path))
    print(f"checkpoint chosen from the parent steps' outputs: {best} "
          f"(validation loss {final_val_loss(os.path.dirname(best)):.4f})")
    return best


def pick_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_inference: --device cuda, but CUDA is not available")
    return torch.device(choice)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None,
                        help="path, file:// or s3:// URI of a gpu_training.py checkpoint "
                             "(default $ML_OUTPUT_DIR/checkpoint.pt when present)")
    parser.add_argument("--samples", type=int, default=10000, help="inputs to classify (10000)")
    parser.add_argument("--batch-size", type=int, default=4096, help="(default 4096)")
    parser.add_argument("--seed", type=int, default=1, help="input (and untrained model) seed")
    parser.add_argument("--features", type=int, default=32, help="without a checkpoint only")
    parser.add_argument("--hidden", type=int, default=512, help="without a checkpoint only")
    parser.add_argument("--layers", type=int, default=3, help="without a checkpoint only")
    parser.add_argument("--classes", type=int, default=8, help="without a checkpoint only")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="auto: bf16 autocast on a bf16-capable GPU, else fp32")
    parser.add_argument("--output-dir", default=os.environ.get("ML_OUTPUT_DIR", "output"),
                        help="default $ML_OUTPUT_DIR (else ./output)")
    args = parser.parse_args(argv)
    for name in ("samples", "batch_size", "features", "hidden", "layers", "classes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    device = pick_device(args.device)
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"

    source = resolve_checkpoint(args.checkpoint, args.output_dir)
    trained_epochs = None
    if source is not None:
        checkpoint = torch.load(source, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            print(f"gpu_inference: {source} is not a gpu_training.py checkpoint", file=sys.stderr)
            return 1
        config = checkpoint["config"]
        model = build_model(config)
        model.load_state_dict(checkpoint["model"])
        trained_epochs = checkpoint["epoch"]
        print(f"model from {source}: {config}, trained for {trained_epochs} epoch(s)")
    else:
        config = {"features": args.features, "hidden": args.hidden, "layers": args.layers,
                  "classes": args.classes}
        torch.manual_seed(args.seed)
        model = build_model(config)
        print(f"no checkpoint: an untrained model {config} (its predictions are arbitrary)")
    model = model.to(device).eval()

    inputs = make_inputs(args.seed, args.samples, config["features"])
    predicted = torch.empty(args.samples, dtype=torch.long)
    confidence = torch.empty(args.samples)
    use_bf16 = precision == "bf16"
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, args.samples, args.batch_size):
            batch = inputs[start:start + args.batch_size].to(device, non_blocking=True)
            autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                        if use_bf16 else contextlib.nullcontext())
            with autocast:
                logits = model(batch)
            probabilities = torch.softmax(logits.float(), dim=1)
            best, classes = probabilities.max(dim=1)
            predicted[start:start + batch.shape[0]] = classes.cpu()
            confidence[start:start + batch.shape[0]] = best.cpu()
    seconds = time.perf_counter() - started
    samples_per_s = args.samples / seconds if seconds > 0 else None

    predictions_path = os.path.join(args.output_dir, "predictions.csv")
    with open(predictions_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "predicted_class", "confidence"])
        labels, scores = predicted.tolist(), confidence.tolist()
        for index in range(args.samples):
            writer.writerow([index, labels[index], f"{scores[index]:.6f}"])

    counts = torch.bincount(predicted, minlength=config["classes"]).tolist()
    summary: dict[str, Any] = {
        "checkpoint": source, "trained_epochs": trained_epochs, "model": config,
        "samples": args.samples, "seed": args.seed, "batch_size": args.batch_size,
        "device": str(device), "precision": precision,
        "class_counts": {str(label): count for label, count in enumerate(counts)},
        "mean_confidence": confidence.mean().item(),
        "seconds": round(seconds, 4), "samples_per_s": samples_per_s,
    }
    with open(os.path.join(args.output_dir, "inference_summary.json"), "w",
              encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
        handle.write("\n")

    rate = f"{samples_per_s:,.0f} samples/s" if samples_per_s else "n/a"
    print(f"{args.samples} predictions on {device} ({precision}) in {seconds:.3f} s ({rate}), "
          f"mean confidence {summary['mean_confidence']:.3f}")
    print("class counts: " + ", ".join(f"{label}: {count}" for label, count in enumerate(counts)))
    print(f"wrote {predictions_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
