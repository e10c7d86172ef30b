#!/usr/bin/env python3
"""Maintains the shared model cache (the EFS file system at /opt/models in the job containers).

The operation comes from ``--operation`` or else the ``OPERATION`` environment variable (the
job's ``operation`` field):

- ``cleanup-cache``: deletes everything inside the cache directory — files, links, folders —
  and keeps the directory itself (the EFS mount point stays ready for the next job). It reports
  the bytes freed and the files removed on stdout and in ``$ML_OUTPUT_DIR/cleanup.json``.
  ``--dry-run`` only counts. It refuses to clean ``/`` or an empty path.
- ``warm-cache``: fills the cache with the ``--models`` named, each as
  ``<cache>/<name>/weights.bin`` (``--size-mb`` of deterministic bytes standing in for the
  weights a real job would download) and ``<name>/model.json`` (size and SHA-256). A model
  already there and intact is left alone; a damaged one is replaced. Each model is written to
  a temporary folder and renamed into place, so other jobs never see half a model. It reports
  in ``$ML_OUTPUT_DIR/warm.json``.

The cache directory is ``--cache-dir``, else ``$MODEL_CACHE_DIR``, else ``/opt/models``.
Exit status: 0 done, 1 some entries could not be handled (listed in the report), 2 a bad
operation, path or option.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import sys
import time
from typing import Any

OPERATIONS = ("cleanup-cache", "warm-cache")
DEFAULT_CACHE_DIR = "/opt/models"
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
CHUNK = 1 << 20


class UsageError(Exception):
    """A bad operation, cache path or option: exit status 2."""


def human(size: float) -> str:
    if size < 1024:
        return f"{size:.0f} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    value, unit = size / 1024, 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.2f} {units[unit]}"


def cache_directory(option: str | None) -> str:
    if option is None:
        option = os.environ.get("MODEL_CACHE_DIR") or DEFAULT_CACHE_DIR
    path = option
    if not path.strip():
        raise UsageError("the cache directory is an empty path; refusing")
    resolved = os.path.realpath(path)
    if resolved == os.path.realpath("/"):
        raise UsageError(f"the cache directory {path!r} is the root directory; refusing")
    return resolved


# --- cleanup-cache ---------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.bytes = 0
        self.files = 0
        self.directories = 0
        self.errors: list[str] = []


def remove_tree_contents(directory: str, tally: Tally, dry_run: bool) -> None:
    """Delete everything inside ``directory`` (never following links), counting as it goes."""
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        tally.errors.append(f"{directory}: {exc.strerror or exc}")
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                remove_tree_contents(entry.path, tally, dry_run)
                if not dry_run:
                    os.rmdir(entry.path)
                tally.directories += 1
            else:
                size = entry.stat(follow_symlinks=False).st_size if entry.is_file(
                    follow_symlinks=False) else 0
                if not dry_run:
                    os.unlink(entry.path)
                tally.files += 1
                tally.bytes += size
        except OSError as exc:
            tally.errors.append(f"{entry.path}: {exc.strerror or exc}")


def cleanup(cache_dir: str, dry_run: bool) -> dict[str, Any]:
    tally = Tally()
    exists = os.path.isdir(cache_dir)
    if exists:
        remove_tree_contents(cache_dir, tally, dry_run)
    elif os.path.lexists(cache_dir):
        raise UsageError(f"the cache directory {cache_dir} is not a directory")
    verb = "would free" if dry_run else "freed"
    if not exists:
        print(f"{cache_dir} does not exist: nothing to clean")
    else:
        print(f"{verb} {human(tally.bytes)} ({tally.bytes} bytes) in {tally.files} file(s) and "
              f"{tally.directories} folder(s) from {cache_dir}; the directory itself is kept")
    for error in tally.errors:
        print(f"could not remove {error}", file=sys.stderr)
    return {"cache_dir": cache_dir, "existed": exists, "dry_run": dry_run,
            "freed_bytes": tally.bytes, "files": tally.files, "directories": tally.directories,
            "errors": tally.errors}


# --- warm-cache ------------------------------------------------------------------------------


def write_weights(path: str, name: str, size: int) -> str:
    """``size`` deterministic bytes for the model ``name``; returns their SHA-256."""
    generator = random.Random(f"model-weights/{name}")
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        remaining = size
        while remaining > 0:
            block = generator.randbytes(min(CHUNK, remaining))
            handle.write(block)
            digest.update(block)
            remaining -= len(block)
        handle.flush()
        os.fsync(handle.fileno())
    return digest.hexdigest()


def intact(model_dir: str) -> dict[str, Any] | None:
    """The model's description when its weights match it, else None."""
    try:
        with open(os.path.join(model_dir, "model.json"), encoding="utf-8") as handle:
            description: dict[str, Any] = json.load(handle)
        digest = hashlib.sha256()
        with open(os.path.join(model_dir, "weights.bin"), "rb") as handle:
            for block in iter(lambda: handle.read(CHUNK), b""):
                digest.update(block)
    except (OSError, ValueError):
        return None
    return description if digest.hexdigest() == description.get("sha256") else None


def warm(cache_dir: str, models: list[str], size: int) -> dict[str, Any]:
    os.makedirs(cache_dir, exist_ok=True)
    written_bytes = 0
    written_files = 0
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in models:
        target = os.path.join(cache_dir, name)
        present = intact(target)
        if present is not None:
            print(f"{name}: already in the cache ({human(present['size'])})")
            results.append({"name": name, "status": "present", "size": present["size"]})
            continue
        temporary = os.path.join(cache_dir, f".{name}.tmp{os.getpid()}")
        try:
            shutil.rmtree(temporary, ignore_errors=True)
            os.makedirs(temporary)
            digest = write_weights(os.path.join(temporary, "weights.bin"), name, size)
            description = {"name": name, "size": size, "sha256": digest,
                           "created_at": datetime.datetime.now(datetime.timezone.utc)
                           .isoformat(timespec="seconds")}
            with open(os.path.join(temporary, "model.json"), "w", encoding="utf-8") as handle:
                json.dump(description, handle, indent=2)
                handle.write("\n")
            replaced = os.path.lexists(target)
            if replaced:  # damaged or foreign: make room for an intact copy
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                else:
                    os.unlink(target)
            os.rename(temporary, target)
        except OSError as exc:
            shutil.rmtree(temporary, ignore_errors=True)
            errors.append(f"{name}: {exc.strerror or exc}")
            print(f"{name}: could not be written: {exc}", file=sys.stderr)
            continue
        written_bytes += size + os.path.getsize(os.path.join(target, "model.json"))
        written_files += 2
        status = "replaced" if replaced else "written"
        print(f"{name}: {status}, {human(size)} of weights, sha256 {digest[:16]}")
        results.append({"name": name, "status": status, "size": size, "sha256": digest})
    print(f"warmed {cache_dir}: {written_files} file(s), {human(written_bytes)} written, "
          f"{sum(1 for r in results if r['status'] == 'present')} model(s) already there")
    return {"cache_dir": cache_dir, "models": results, "written_bytes": written_bytes,
            "written_files": written_files, "errors": errors}


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operation", default=None,
                        help=f"{' or '.join(OPERATIONS)} (default $OPERATION)")
    parser.add_argument("--cache-dir", default=None,
                        help=f"default $MODEL_CACHE_DIR, else {DEFAULT_CACHE_DIR}")
    parser.add_argument("--models", nargs="+", default=["mlp-small"],
                        help="warm-cache: model names (default mlp-small)")
    parser.add_argument("--size-mb", type=float, default=8.0,
                        help="warm-cache: weights per model, in MiB (default 8)")
    parser.add_argument("--dry-run", action="store_true",
                        help="cleanup-cache: count what would be freed, delete nothing")
    parser.add_argument("--output-dir", default=os.environ.get("ML_OUTPUT_DIR", "output"),
                        help="default $ML_OUTPUT_DIR (else ./output)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    operation = args.operation or os.environ.get("OPERATION", "")
    if operation not in OPERATIONS:
        shown = repr(operation) if operation else "none"
        raise UsageError(f"unknown operation {shown}: use --operation or OPERATION = "
                         f"{' or '.join(OPERATIONS)}")
    cache_dir = cache_directory(args.cache_dir)
    if operation == "cleanup-cache":
        return "cleanup.json", cleanup(cache_dir, args.dry_run)
    names: list[str] = []
    for entry in args.models:  # "a b" and "a,b" both work, as from a job's args list
        names += [name for name in entry.replace(",", " ").split() if name]
    bad = [name for name in names if not MODEL_NAME.fullmatch(name)]
    if bad or not names:
        raise UsageError(f"model names must match {MODEL_NAME.pattern}: {bad or names}")
    if not 0 <= args.size_mb <= 65536:
        raise UsageError("--size-mb must be between 0 and 65536")
    return "warm.json", warm(cache_dir, list(dict.fromkeys(names)), int(args.size_mb * CHUNK))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        report_name, report = run(args)
    except UsageError as exc:
        print(f"cleanup_processor: {exc}", file=sys.stderr)
        return 2
    operation = args.operation or os.environ.get("OPERATION")
    report = {"operation": operation, **report,
              "seconds": round(time.perf_counter() - started, 4),
              "finished_at": datetime.datetime.now(datetime.timezone.utc)
              .isoformat(timespec="seconds")}
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, report_name), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
