#!/usr/bin/env python3
"""Maintains the shared model cache (the EFS file system at /opt/models in the job containers).

The operation comes from ``--operation`` or else the ``OPERATION`` environment variable (the
job's ``operation`` field):

- ``cleanup-cache``: with no selection, deletes everything inside the cache directory — files,
  links, folders — and keeps the directory itself (the EFS mount point stays ready for the next
  job). ``--models a b`` removes only those top-level entries; ``--older-than-days N`` removes
  the entries not used for N days (an entry's last use is the newest access or change time of
  anything in it, or its ``.usage/<name>`` marker, which the job entrypoint touches for the
  entries a job used). It reports the bytes freed and the files removed on stdout and in
  ``$ML_OUTPUT_DIR/summary.json`` (``freed_bytes``, which the gateway shows in ``GET /cache``).
  ``--dry-run`` only counts. It refuses to clean ``/`` or an empty path.
- ``warm-cache``: fills the cache with the ``--models`` named (default ``mlp-small``), each as
  ``<cache>/<name>/weights.bin`` (``--size-mb`` of deterministic bytes standing in for the
  weights a real job would download) and ``<name>/model.json`` (size and SHA-256). A model
  already there and intact is left alone; a damaged one is replaced. Each model is written to
  a temporary folder and renamed into place, so other jobs never see half a model. It reports
  in ``$ML_OUTPUT_DIR/summary.json``.

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
import stat
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


USAGE_DIR = ".usage"


def last_use(cache_dir: str, name: str) -> float:
    """The newest access or change time of anything in the entry ``name`` (links not followed;
    a folder's own access time is left out, as listing it sets it), or of its usage marker."""
    path = os.path.join(cache_dir, name)
    info = os.lstat(path)
    newest = info.st_mtime if stat.S_ISDIR(info.st_mode) else max(info.st_atime, info.st_mtime)
    if stat.S_ISDIR(info.st_mode):
        for folder, dirs, files in os.walk(path):
            for child in dirs + files:
                try:
                    child_info = os.lstat(os.path.join(folder, child))
                except OSError:
                    continue
                times = [child_info.st_mtime]
                if not stat.S_ISDIR(child_info.st_mode):
                    times.append(child_info.st_atime)
                newest = max(newest, *times)
    try:
        newest = max(newest, os.lstat(os.path.join(cache_dir, USAGE_DIR, name)).st_mtime)
    except OSError:
        pass
    return newest


def remove_entry(cache_dir: str, name: str, tally: Tally, dry_run: bool) -> None:
    """Delete the top-level entry ``name`` (a folder, file or link) and its usage marker."""
    path = os.path.join(cache_dir, name)
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            remove_tree_contents(path, tally, dry_run)
            if not dry_run:
                os.rmdir(path)
            tally.directories += 1
        else:
            size = os.lstat(path).st_size if os.path.isfile(path) and not os.path.islink(
                path) else 0
            if not dry_run:
                os.unlink(path)
            tally.files += 1
            tally.bytes += size
        if not dry_run:
            marker = os.path.join(cache_dir, USAGE_DIR, name)
            if os.path.lexists(marker):
                os.unlink(marker)
    except OSError as exc:
        tally.errors.append(f"{path}: {exc.strerror or exc}")


def select(cache_dir: str, models: list[str] | None, older_than_days: float | None,
           now: float) -> tuple[list[str], list[str]]:
    """The entries to remove and the models asked for that are not there."""
    if models is not None:
        present = [name for name in models if os.path.lexists(os.path.join(cache_dir, name))]
        return present, [name for name in models if name not in present]
    names = sorted(name for name in os.listdir(cache_dir) if not name.startswith("."))
    if older_than_days is None:
        return names, []
    cutoff = now - older_than_days * 86400
    chosen = []
    for name in names:
        try:
            if last_use(cache_dir, name) < cutoff:
                chosen.append(name)
        except OSError:
            continue  # removed meanwhile
    return chosen, []


def cleanup(cache_dir: str, dry_run: bool, models: list[str] | None = None,
            older_than_days: float | None = None) -> dict[str, Any]:
    tally = Tally()
    exists = os.path.isdir(cache_dir)
    removed: list[str] = []
    absent: list[str] = []
    if exists and models is None and older_than_days is None:
        remove_tree_contents(cache_dir, tally, dry_run)
    elif exists:
        removed, absent = select(cache_dir, models, older_than_days, time.time())
        for name in removed:
            remove_entry(cache_dir, name, tally, dry_run)
    elif os.path.lexists(cache_dir):
        raise UsageError(f"the cache directory {cache_dir} is not a directory")
    verb = "would free" if dry_run else "freed"
    scope = ("everything" if models is None and older_than_days is None
             else f"{len(removed)} entr{'y' if len(removed) == 1 else 'ies'}")
    if not exists:
        print(f"{cache_dir} does not exist: nothing to clean")
    else:
        print(f"{verb} {human(tally.bytes)} ({tally.bytes} bytes) in {tally.files} file(s) and "
              f"{tally.directories} folder(s) from {cache_dir} ({scope}); the directory itself "
              f"is kept")
    for name in absent:
        print(f"{name}: not in the cache")
    for error in tally.errors:
        print(f"could not remove {error}", file=sys.stderr)
    return {"cache_dir": cache_dir, "existed": exists, "dry_run": dry_run,
            "selection": {"models": models, "older_than_days": older_than_days},
            "removed": removed, "absent": absent,
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
    parser.add_argument("--models", nargs="+", default=None,
                        help="warm-cache: model names (default mlp-small); cleanup-cache: "
                             "remove only these entries")
    parser.add_argument("--older-than-days", type=float, default=None,
                        help="cleanup-cache: remove only the entries not used for this long")
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
    names = model_names(args.models)
    if operation == "cleanup-cache":
        if names is not None and args.older_than_days is not None:
            raise UsageError("--models and --older-than-days cannot be used together")
        if args.older_than_days is not None and not 0 < args.older_than_days <= 36500:
            raise UsageError("--older-than-days must be more than 0 and at most 36500")
        return "summary.json", cleanup(cache_dir, args.dry_run, names, args.older_than_days)
    if not 0 <= args.size_mb <= 65536:
        raise UsageError("--size-mb must be between 0 and 65536")
    return "summary.json", warm(cache_dir, names or ["mlp-small"], int(args.size_mb * CHUNK))


def model_names(option: list[str] | None) -> list[str] | None:
    """The names given to --models, distinct and checked; None when the option is absent."""
    if option is None:
        return None
    names: list[str] = []
    for entry in option:  # "a b" and "a,b" both work, as from a job's args list
        names += [name for name in entry.replace(",", " ").split() if name]
    bad = [name for name in names if not MODEL_NAME.fullmatch(name)]
    if bad or not names:
        raise UsageError(f"model names must match {MODEL_NAME.pattern}: {bad or names}")
    return list(dict.fromkeys(names))


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
