#!/usr/bin/env python3
"""Signal feature extraction on the CPU (standard library only).

Generates ``--groups`` groups of ``--signals-per-group`` noisy signals — each group has its own
tone frequency, each signal its own amplitude, phase, DC offset and Gaussian noise, all
deterministic for a ``--seed`` — then computes per signal the mean, standard deviation, RMS,
minimum, maximum, zero crossings and the dominant frequency of its spectrum (a radix-2 FFT;
a plain DFT when the length is not a power of two), aggregates them per group, and writes
into ``$ML_OUTPUT_DIR``:

- ``features.csv``: one row per signal;
- ``groups.csv``: per group, the tone frequency, signal count, mean RMS/std/zero crossings and
  the share of signals whose dominant frequency is the group's tone (``detection_rate``);
- ``summary.json``: the settings, the groups, totals, timings and the SHA-256 of
  ``features.csv`` (equal for equal settings, whatever ``--workers``);
- ``signals.jsonl`` with ``--save-signals``: the raw samples, one signal a line.

The signals are spread over ``--workers`` processes (default: the CPUs this job may use).
"""
from __future__ import annotations

import argparse
import cmath
import concurrent.futures
import csv
import hashlib
import itertools
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

FEATURES = ("mean", "std", "rms", "min", "max", "zero_crossings", "peak_frequency_hz",
            "peak_amplitude")


def tone_frequencies(seed: int, groups: int, length: int, sample_rate: float) -> list[float]:
    """One distinct tone per group, each on an exact DFT bin between 2 and length/2 - 2."""
    low, high = 2, length // 2 - 2
    if high - low + 1 < groups:
        raise ValueError(f"--length {length} has room for only {max(high - low + 1, 0)} tones")
    bins = random.Random(f"tones/{seed}").sample(range(low, high + 1), groups)
    return [k * sample_rate / length for k in bins]


def generate_signal(seed: int, group: int, index: int, tone_hz: float, length: int,
                    sample_rate: float, noise: float) -> list[float]:
    """Amplitude 0.5..2, random phase, DC offset -0.2..0.2, Gaussian noise of sd ``noise``."""
    rng = random.Random(f"signal/{seed}/{group}/{index}")
    amplitude = rng.uniform(0.5, 2.0)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    offset = rng.uniform(-0.2, 0.2)
    step = 2.0 * math.pi * tone_hz / sample_rate
    return [offset + amplitude * math.sin(step * n + phase) + rng.gauss(0.0, noise)
            for n in range(length)]


def fft(values: Sequence[complex]) -> list[complex]:
    """Iterative radix-2 Cooley-Tukey FFT; ``len(values)`` must be a power of two."""
    n = len(values)
    out = list(values)
    j = 0
    for i in range(1, n):  # bit-reversal permutation
        bit = n >> 1
        while j & bit:
            j ^= bit
            bit >>= 1
        j |= bit
        if i < j:
            out[i], out[j] = out[j], out[i]
    size = 2
    while size <= n:
        twiddle = cmath.exp(-2j * math.pi / size)
        half = size // 2
        for start in range(0, n, size):
            w = 1 + 0j
            for k in range(start, start + half):
                even, odd = out[k], out[k + half] * w
                out[k], out[k + half] = even + odd, even - odd
                w *= twiddle
        size *= 2
    return out


def dft(values: Sequence[float]) -> list[complex]:
    """The plain O(n^2) DFT, for lengths that are not a power of two."""
    n = len(values)
    return [sum(x * cmath.exp(-2j * math.pi * k * t / n) for t, x in enumerate(values))
            for k in range(n)]


def spectrum(values: Sequence[float]) -> list[complex]:
    n = len(values)
    return fft([complex(x) for x in values]) if n & (n - 1) == 0 else dft(values)


def features(values: Sequence[float], sample_rate: float) -> dict[str, float]:
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in values) / n)
    rms = math.sqrt(math.fsum(x * x for x in values) / n)
    crossings = sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))
    bins = spectrum(values)
    # The strongest bin above DC, up to Nyquist; its one-sided amplitude is 2|X_k|/n.
    peak = max(range(1, n // 2 + 1), key=lambda k: abs(bins[k]))
    return {"mean": mean, "std": std, "rms": rms, "min": min(values), "max": max(values),
            "zero_crossings": crossings, "peak_frequency_hz": peak * sample_rate / n,
            "peak_amplitude": 2 * abs(bins[peak]) / n}


def process(task: tuple[int, int, int, float, int, float, float, bool]) -> dict[str, Any]:
    """One signal: generate it, compute its features (runs in a worker process)."""
    seed, group, index, tone_hz, length, sample_rate, noise, keep = task
    values = generate_signal(seed, group, index, tone_hz, length, sample_rate, noise)
    row: dict[str, Any] = {"group": group, "signal": index,
                           **features(values, sample_rate)}
    if keep:
        row["samples"] = values
    return row


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=8, help="signal groups (default 8)")
    parser.add_argument("--signals-per-group", type=int, default=250, help="(default 250)")
    parser.add_argument("--length", type=int, default=1024,
                        help="samples per signal; a power of two uses the FFT (default 1024)")
    parser.add_argument("--sample-rate", type=float, default=1000.0, help="Hz (default 1000)")
    parser.add_argument("--noise", type=float, default=0.5,
                        help="standard deviation of the noise (default 0.5)")
    parser.add_argument("--seed", type=int, default=7, help="(default 7)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="processes (default: the CPUs available)")
    parser.add_argument("--save-signals", action="store_true",
                        help="also write the raw signals to signals.jsonl")
    parser.add_argument("--output-dir", default=os.environ.get("ML_OUTPUT_DIR", "output"),
                        help="default $ML_OUTPUT_DIR (else ./output)")
    args = parser.parse_args(argv)
    for name in ("groups", "signals_per_group", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.length < 8:
        parser.error("--length must be at least 8")
    if args.sample_rate <= 0 or args.noise < 0:
        parser.error("--sample-rate must be positive and --noise not negative")
    return args


def write_csv(path: str, header: Sequence[str], rows: list[list[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def number(value: float) -> str:
    return f"{value:.9g}"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    try:
        tones = tone_frequencies(args.seed, args.groups, args.length, args.sample_rate)
    except ValueError as exc:
        print(f"cpu_processing: {exc}", file=sys.stderr)
        return 2
    tasks = [(args.seed, group, index, tones[group], args.length, args.sample_rate, args.noise,
              args.save_signals)
             for group in range(args.groups) for index in range(args.signals_per_group)]
    method = "FFT" if args.length & (args.length - 1) == 0 else "DFT"
    print(f"{len(tasks)} signals of {args.length} samples at {args.sample_rate:g} Hz "
          f"({args.groups} groups, seed {args.seed}), {method}, {args.workers} worker(s)")

    started = time.perf_counter()
    if args.workers == 1:
        rows = [process(task) for task in tasks]
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=args.workers) as pool:
            chunk = max(1, len(tasks) // (args.workers * 8))
            rows = list(pool.map(process, tasks, chunksize=chunk))
    seconds = time.perf_counter() - started

    features_path = os.path.join(args.output_dir, "features.csv")
    write_csv(features_path, ["group", "signal", *FEATURES],
              [[row["group"], row["signal"], *(number(row[name]) for name in FEATURES)]
               for row in rows])
    if args.save_signals:
        with open(os.path.join(args.output_dir, "signals.jsonl"), "w",
                  encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps({"group": row["group"], "signal": row["signal"],
                                         "samples": row["samples"]}) + "\n")

    groups: list[dict[str, Any]] = []
    for group, tone in enumerate(tones):
        members = [row for row in rows if row["group"] == group]
        count = len(members)
        groups.append({
            "group": group, "tone_hz": tone, "signals": count,
            "mean_rms": math.fsum(row["rms"] for row in members) / count,
            "mean_std": math.fsum(row["std"] for row in members) / count,
            "mean_zero_crossings": sum(row["zero_crossings"] for row in members) / count,
            "detection_rate": sum(1 for row in members
                                  if row["peak_frequency_hz"] == tone) / count,
        })
    write_csv(os.path.join(args.output_dir, "groups.csv"),
              ["group", "tone_hz", "signals", "mean_rms", "mean_std", "mean_zero_crossings",
               "detection_rate"],
              [[g["group"], number(g["tone_hz"]), g["signals"], number(g["mean_rms"]),
                number(g["mean_std"]), number(g["mean_zero_crossings"]),
                number(g["detection_rate"])] for g in groups])

    with open(features_path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    detected = sum(1 for row in rows if row["peak_frequency_hz"] == tones[row["group"]])
    summary = {
        "settings": {"groups": args.groups, "signals_per_group": args.signals_per_group,
                     "length": args.length, "sample_rate": args.sample_rate,
                     "noise": args.noise, "seed": args.seed, "workers": args.workers,
                     "method": method},
        "groups": groups, "signals": len(rows), "detection_rate": detected / len(rows),
        "seconds": round(seconds, 4), "signals_per_s": len(rows) / seconds if seconds else None,
        "features_sha256": digest,
    }
    with open(os.path.join(args.output_dir, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
        handle.write("\n")

    for g in groups:
        print(f"group {g['group']}: tone {g['tone_hz']:g} Hz, {g['signals']} signals, "
              f"mean RMS {g['mean_rms']:.4f}, mean zero crossings "
              f"{g['mean_zero_crossings']:.1f}, detected {100 * g['detection_rate']:.1f}%")
    print(f"{len(rows)} signals in {seconds:.2f} s ({len(rows) / max(seconds, 1e-9):,.0f}/s); "
          f"tone detected in {100 * detected / len(rows):.1f}%; features sha256 {digest[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
