#!/usr/bin/env python3
"""Trains a small classifier on a synthetic task, on a GPU when there is one.

The task: inputs are standard normal vectors; the label of each is the arg-max class of a
fixed random "teacher" network, so there is real structure to learn and the loss falls. The
model is an MLP (Linear + GELU blocks) trained with AdamW and cross-entropy.

- CUDA: bf16 autocast (where the GPU supports bf16) and TF32 matmuls; otherwise fp32 on the
  CPU (``--precision bf16`` turns on CPU autocast).
- After every epoch the model, the optimizer and the position in the data go into
  ``$ML_OUTPUT_DIR/checkpoint.pt`` (written to a temporary name, then renamed). When that file
  is there at start — a retried attempt, where the job entrypoint has restored it — training
  resumes from it, at the very step where it stopped.
- SIGTERM/SIGINT (a spot interruption, a cancel) is handled at the next step: the checkpoint
  is written and the script exits with 128 + the signal number.
- ``$ML_OUTPUT_DIR/metrics.json``: the loss per epoch, samples/s, the device, the model's
  FLOPs per sample and the FLOP/s achieved (and the model FLOP utilisation when
  ``--peak-tflops`` gives the device's peak).

Run it through the gateway as ``jobs/gpu_training.py``; ``--help`` lists the settings.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import json
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import Any

# torch warns at import when numpy is not installed; this script does not use numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"
CHECKPOINT_FORMAT = 1
TEACHER_WIDTH = 64


def build_model(config: dict[str, int]) -> nn.Sequential:
    """The MLP described by ``config`` (features, hidden, layers, classes).

    gpu_inference.py has the same builder: each job script is uploaded on its own, so the
    few lines are repeated there (tests/examples checks that both build the same model).
    """
    modules: list[nn.Module] = []
    width = config["features"]
    for _ in range(config["layers"]):
        modules += [nn.Linear(width, config["hidden"]), nn.GELU()]
        width = config["hidden"]
    modules.append(nn.Linear(width, config["classes"]))
    return nn.Sequential(*modules)


def forward_flops_per_sample(model: nn.Module) -> int:
    """Multiply-adds of the linear layers, counted as 2 FLOPs each (activations are noise)."""
    return sum(2 * layer.in_features * layer.out_features
               for layer in model.modules() if isinstance(layer, nn.Linear))


def make_dataset(seed: int, samples: int, features: int,
                 classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (inputs, labels) on the CPU: labels from a random two-layer teacher."""
    generator = torch.Generator().manual_seed(seed)
    w1 = torch.randn(features, TEACHER_WIDTH, generator=generator) / math.sqrt(features)
    w2 = torch.randn(TEACHER_WIDTH, classes, generator=generator) / math.sqrt(TEACHER_WIDTH)
    inputs = torch.randn(samples, features, generator=generator)
    labels = (torch.tanh(inputs @ w1) @ w2).argmax(dim=1)
    return inputs, labels


def epoch_order(seed: int, epoch: int, count: int, device: torch.device) -> torch.Tensor:
    """The shuffled sample order of one epoch, the same on every attempt."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(count, generator=generator).to(device)


class StopRequest:
    """Remembers the first SIGTERM/SIGINT; the training loop stops at the next step."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum


def save_atomically(state: dict[str, Any], path: str) -> None:
    """torch.save to a temporary name in the same directory, fsync, then rename."""
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def write_json(path: str, value: Any) -> None:
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


def pick_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_training: --device cuda, but CUDA is not available")
    return torch.device(choice)


def pick_precision(choice: str, device: torch.device) -> str:
    if choice != "auto":
        return choice
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def flop_rate(flops_per_s: float) -> str:
    for unit, scale in (("TFLOP/s", 1e12), ("GFLOP/s", 1e9)):
        if flops_per_s >= scale:
            return f"{flops_per_s / scale:.2f} {unit}"
    return f"{flops_per_s / 1e6:.2f} MFLOP/s"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batches(order: torch.Tensor, batch_size: int,
            first_step: int) -> Iterator[tuple[int, torch.Tensor]]:
    steps = math.ceil(order.numel() / batch_size)
    for step in range(first_step, steps):
        yield step, order[step * batch_size:(step + 1) * batch_size]


@torch.no_grad()
def evaluate(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int,
             device: torch.device, precision: str) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over a held-out set."""
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for start in range(0, inputs.shape[0], batch_size):
        x = inputs[start:start + batch_size]
        y = labels[start:start + batch_size]
        with autocast(device, precision):
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
    model.train()
    count = max(inputs.shape[0], 1)
    return loss_sum.item() / count, correct.item() / count


def env_float(name: str, default: float) -> float:
    """A float from the environment (a pipeline step's matrix sets such values), else default."""
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs in all (default 5)")
    parser.add_argument("--samples", type=int, default=65536,
                        help="generated samples, 10%% held out for validation (default 65536)")
    parser.add_argument("--features", type=int, default=32, help="input size (default 32)")
    parser.add_argument("--classes", type=int, default=8, help="classes (default 8)")
    parser.add_argument("--hidden", type=int, default=512, help="hidden width (default 512)")
    parser.add_argument("--layers", type=int, default=3, help="hidden layers (default 3)")
    parser.add_argument("--batch-size", type=int, default=1024, help="(default 1024)")
    parser.add_argument("--lr", type=float, default=env_float("LEARNING_RATE", 3e-3),
                        help="AdamW learning rate ($LEARNING_RATE, else 3e-3: a pipeline's "
                             "matrix can set it)")
    parser.add_argument("--seed", type=int, default=0, help="data and initialisation seed (0)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="auto: bf16 autocast on a bf16-capable GPU, else fp32")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s at this precision, to report MFU")
    parser.add_argument("--output-dir", default=os.environ.get("ML_OUTPUT_DIR", "output"),
                        help="default $ML_OUTPUT_DIR (else ./output)")
    args = parser.parse_args(argv)
    for name in ("epochs", "samples", "features", "classes", "hidden", "layers", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.samples < 10:
        parser.error("--samples must be at least 10 (10% are held out)")
    if args.classes < 2:
        parser.error("--classes must be at least 2")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    stop = StopRequest()
    stop.install()
    os.makedirs(args.output_dir, exist_ok=True)
    checkpoint_path = os.path.join(args.output_dir, CHECKPOINT_NAME)
    for stale in glob.glob(f"{glob.escape(checkpoint_path)}.tmp*"):
        os.remove(stale)  # left by an attempt killed in the middle of a save

    device = pick_device(args.device)
    precision = pick_precision(args.precision, device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 where fp32 remains

    config = {"features": args.features, "hidden": args.hidden, "layers": args.layers,
              "classes": args.classes}
    data = {"seed": args.seed, "samples": args.samples, "features": args.features,
            "classes": args.classes}
    batch_size = args.batch_size
    checkpoint: dict[str, Any] | None = None
    if os.path.exists(checkpoint_path):
        checkpoint = torch.load(checkpoint_path, map_location=device, weights_only=True)
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            print(f"gpu_training: {checkpoint_path} is not a checkpoint of this script",
                  file=sys.stderr)
            return 1
        # The run goes on as it started: its model, its data and its batches.
        if (checkpoint["config"], checkpoint["data"], checkpoint["batch_size"]) != (
                config, data, batch_size):
            print("note: the checkpoint's model, data and batch size are used, not the options")
        config, data, batch_size = checkpoint["config"], checkpoint["data"], checkpoint[
            "batch_size"]

    inputs, labels = make_dataset(data["seed"], data["samples"], data["features"],
                                  data["classes"])
    held_out = max(1, data["samples"] // 10)
    train_x, train_y = inputs[:-held_out].to(device), labels[:-held_out].to(device)
    val_x, val_y = inputs[-held_out:].to(device), labels[-held_out:].to(device)

    torch.manual_seed(data["seed"])
    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    history: list[dict[str, Any]] = []
    epoch, first_step = 0, 0
    partial = {"loss_sum": 0.0, "count": 0}
    resumed_from = None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        for group in optimizer.param_groups:
            group["lr"] = args.lr
        history = checkpoint["history"]
        epoch, first_step = checkpoint["epoch"], checkpoint["step"]
        partial = checkpoint["partial"]
        resumed_from = {"epoch": epoch, "step": first_step}
        print(f"resuming from {CHECKPOINT_NAME}: {epoch} epoch(s) done, step {first_step} "
              f"of epoch {epoch + 1}")

    params = sum(p.numel() for p in model.parameters())
    forward_flops = forward_flops_per_sample(model)
    train_flops = 3 * forward_flops  # forward, plus a backward pass that costs about twice
    print(f"device {describe(device)}, precision {precision}, model {config}, "
          f"{params:,} parameters, {train_flops:,} training FLOPs per sample")
    print(f"data: {train_x.shape[0]} training and {held_out} validation samples, "
          f"{data['classes']} classes, batch size {batch_size}")

    def checkpoint_state() -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "epoch": epoch, "step": first_step,
                "partial": partial, "config": config, "data": data, "batch_size": batch_size,
                "history": history, "torch": str(torch.__version__)}

    timings: list[tuple[int, float]] = []  # (samples, seconds) of each epoch of this attempt

    def metrics(status: str) -> dict[str, Any]:
        # The first epoch pays for warm-up (CUDA context, kernels, caches): leave it out of
        # the throughput when there are others.
        steady = timings[1:] if len(timings) > 1 else timings
        run_samples = sum(samples for samples, _ in steady)
        run_seconds = sum(seconds for _, seconds in steady)
        samples_per_s = run_samples / run_seconds if run_seconds > 0 else None
        achieved = samples_per_s * train_flops if samples_per_s else None
        result: dict[str, Any] = {
            "status": status, "device": describe(device), "precision": precision,
            "model": config, "parameters": params, "data": data, "batch_size": batch_size,
            "epochs_done": epoch, "epochs": history, "resumed_from": resumed_from,
            "attempt": int(os.environ.get("MLGW_ATTEMPT") or 1),
            "flops_per_sample": {"forward": forward_flops, "train": train_flops},
            "samples_trained_this_attempt": sum(samples for samples, _ in timings),
            "throughput_excludes_first_epoch": len(timings) > 1,
            "samples_per_s": samples_per_s, "achieved_flops_per_s": achieved,
        }
        if args.peak_tflops:
            result["peak_flops_per_s"] = args.peak_tflops * 1e12
            result["mfu"] = achieved / (args.peak_tflops * 1e12) if achieved else None
        return result

    model.train()
    while epoch < args.epochs and stop.signum is None:
        order = epoch_order(data["seed"], epoch, train_x.shape[0], device)
        loss_sum = torch.tensor(partial["loss_sum"], device=device)
        count = partial["count"]
        synchronize(device)
        started = time.perf_counter()
        samples_done = 0
        for step, index in batches(order, batch_size, first_step):
            x, y = train_x[index], train_y[index]
            with autocast(device, precision):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * index.numel()
            count += index.numel()
            samples_done += index.numel()
            first_step = step + 1
            if stop.signum is not None:
                break
        synchronize(device)
        seconds = time.perf_counter() - started
        timings.append((samples_done, seconds))
        if stop.signum is not None and first_step * batch_size < train_x.shape[0]:
            partial = {"loss_sum": loss_sum.item(), "count": count}
            break  # in the middle of the epoch: the checkpoint below keeps the place

        val_loss, val_accuracy = evaluate(model, val_x, val_y, batch_size, device, precision)
        samples_per_s = samples_done / seconds if seconds > 0 else 0.0
        epoch += 1
        first_step = 0
        partial = {"loss_sum": 0.0, "count": 0}
        history.append({"epoch": epoch, "loss": loss_sum.item() / max(count, 1),
                        "val_loss": val_loss, "val_accuracy": val_accuracy,
                        "seconds": round(seconds, 4), "samples_per_s": samples_per_s,
                        "flops_per_s": samples_per_s * train_flops})
        save_atomically(checkpoint_state(), checkpoint_path)
        print(f"epoch {epoch}/{args.epochs}  loss {history[-1]['loss']:.4f}  "
              f"val_loss {val_loss:.4f}  val_acc {val_accuracy:.3f}  "
              f"{samples_per_s:,.0f} samples/s  {flop_rate(samples_per_s * train_flops)}",
              flush=True)
        write_json(os.path.join(args.output_dir, METRICS_NAME), metrics("running"))

    if stop.signum is not None:
        name = signal.Signals(stop.signum).name
        save_atomically(checkpoint_state(), checkpoint_path)
        write_json(os.path.join(args.output_dir, METRICS_NAME), metrics("interrupted"))
        print(f"{name}: checkpoint saved at epoch {epoch + 1} step {first_step}; exiting",
              flush=True)
        return 128 + stop.signum

    result = metrics("completed")
    write_json(os.path.join(args.output_dir, METRICS_NAME), result)
    if history:
        last = history[-1]
        print(f"done: {epoch} epoch(s), final loss {last['loss']:.4f}, "
              f"val_acc {last['val_accuracy']:.3f}")
    if result["samples_per_s"]:
        line = (f"throughput {result['samples_per_s']:,.0f} samples/s, "
                f"{flop_rate(result['achieved_flops_per_s'])} achieved")
        if "mfu" in result:
            line += f", MFU {100 * result['mfu']:.1f}% of {args.peak_tflops:g} TFLOP/s"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
