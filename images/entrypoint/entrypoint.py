#!/usr/bin/env python3
"""Job entrypoint shared by the job containers (ENTRYPOINT) and the local executor.

It fetches the job's script (``SCRIPT_KEY``) from ``$MLGW_INPUT_DIR`` or
``s3://$ML_INPUT_BUCKET``; on a retried attempt (``MLGW_ATTEMPT`` > 1) restores what an
earlier attempt published at the output URI into ``ML_OUTPUT_DIR`` (so that the script can
resume from its checkpoint); runs it as ``sys.executable script args...`` in its own
process group with its output streamed line by line, forwards SIGTERM/SIGINT to it
(SIGKILL after ``MLGW_TERM_GRACE`` seconds), then ALWAYS publishes ``ML_OUTPUT_DIR``
to the output URI with ``manifest.json`` written last, and exits with the script's
own exit code (128+signal when a signal killed it; 127 when the script could not
be fetched or an earlier attempt's outputs could not be restored; 1 when the script
succeeded but its outputs could not be published).

A step of a pipeline run also gets ``PARENT_OUTPUT_URIS`` (JSON: parent step → the output
URIs of its jobs): before the script starts, each parent's published outputs are fetched into
``ML_INPUT_DIR/<parent>/`` (``ML_INPUT_DIR/<parent>/<index>/`` when the parent had several
jobs, a fan-out), from ``file://`` or ``s3://`` alike; ``ML_INPUT_DIR`` is a directory of the
job's own unless set. ``AWS_BATCH_JOB_ARRAY_INDEX`` mirrors ``ARRAY_INDEX`` for scripts
written for Batch array jobs (Batch itself refuses that name in an environment override).

Under the local executor's sandbox the job's environment arrives on the descriptor
``$MLGW_ENV_FD`` instead (``load_env_fd``). Standard library only; boto3 is imported lazily,
and only for s3:// locations.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Mapping, MutableMapping, Sequence
from types import FrameType
from typing import IO, Any

MANIFEST_NAME = "manifest.json"
EXIT_FETCH_FAILED = 127
EXIT_PUBLISH_FAILED = 1
EXIT_RUN_FAILED = 1
DEFAULT_TERM_GRACE = 30.0
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
CHUNK = 1 << 20

_log_lock = threading.Lock()


def log(message: str) -> None:
    """Write one entrypoint log line to stderr (lost, not fatal, when nobody reads it)."""
    with _log_lock:
        try:
            sys.stderr.write(f"entrypoint: {message}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


class FetchError(Exception):
    """The script could not be fetched (or its key is unacceptable)."""


class PublishError(Exception):
    """The outputs could not be published."""


class RestoreError(Exception):
    """An earlier attempt's outputs could not be restored."""


@dataclasses.dataclass(frozen=True)
class Config:
    job_id: str | None
    attempt: int
    script_key: str
    input_bucket: str
    input_dir: str | None
    output_dir: str | None
    parents: str | None  # PARENT_OUTPUT_URIS
    step_input_dir: str | None  # ML_INPUT_DIR
    output_uri: str | None
    term_grace: float


def _positive_int(value: str | None, default: int) -> int:
    try:
        parsed = int(value) if value else default
    except ValueError:
        return default
    return parsed if parsed > 0 else default


def _non_negative_float(value: str | None, default: float) -> float:
    try:
        parsed = float(value) if value else default
    except ValueError:
        return default
    return parsed if parsed >= 0 else default


def default_output_uri(env: Mapping[str, str]) -> str | None:
    """``s3://$ML_OUTPUT_BUCKET/$OUTPUT_PREFIX/``, or None without a bucket."""
    bucket = env.get("ML_OUTPUT_BUCKET", "")
    if not bucket:
        return None
    prefix = env.get("OUTPUT_PREFIX", "").strip("/")
    return f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"


def load_config(env: Mapping[str, str]) -> Config:
    return Config(
        job_id=env.get("JOB_ID") or None,
        attempt=_positive_int(env.get("MLGW_ATTEMPT"), 1),
        script_key=env.get("SCRIPT_KEY", ""),
        input_bucket=env.get("ML_INPUT_BUCKET", ""),
        input_dir=env.get("MLGW_INPUT_DIR") or None,
        output_dir=env.get("ML_OUTPUT_DIR") or None,
        parents=env.get("PARENT_OUTPUT_URIS") or None,
        step_input_dir=env.get("ML_INPUT_DIR") or None,
        output_uri=env.get("MLGW_OUTPUT_URI") or default_output_uri(env),
        term_grace=_non_negative_float(env.get("MLGW_TERM_GRACE"), DEFAULT_TERM_GRACE),
    )


def load_env_fd(environ: MutableMapping[str, str]) -> None:
    """Replace ``environ`` with the job's environment read from ``$MLGW_ENV_FD``, if set.

    The local executor's sandbox starts the entrypoint with a nearly empty environment (no
    job variable ever reaches the privileged programs that set the sandbox up, nor an
    argument list others can read) and hands the job's own on this descriptor:
    ``NAME=value`` entries, each ending in a NUL byte.
    """
    fd_text = environ.get("MLGW_ENV_FD")
    if fd_text is None:
        return
    try:
        fd = int(fd_text)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
    except (ValueError, OSError) as exc:
        log(f"cannot read the job's environment from MLGW_ENV_FD={fd_text}: {exc}")
        return
    entries: dict[str, str] = {}
    for item in data.split(b"\0"):
        name, sep, value = item.partition(b"=")
        if sep and name:
            entries[os.fsdecode(name)] = os.fsdecode(value)
    environ.clear()
    environ.update(entries)


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


# --- fetching the script -----------------------------------------------------------------


def validate_key(key: str) -> str:
    """Refuse empty keys, absolute keys and keys with ``..`` segments."""
    if not key:
        raise FetchError("SCRIPT_KEY is not set")
    if "\x00" in key:
        raise FetchError(f"SCRIPT_KEY {key!r} contains a NUL byte")
    if key.startswith("/") or os.path.isabs(key):
        raise FetchError(f"SCRIPT_KEY {key!r} is absolute")
    segments = key.replace("\\", "/").split("/")
    if ".." in segments:
        raise FetchError(f"SCRIPT_KEY {key!r} has a '..' segment")
    if key.endswith("/") or segments[-1] in ("", "."):
        raise FetchError(f"SCRIPT_KEY {key!r} does not name a file")
    return key


def fetch_local(input_dir: str, key: str, dest: str) -> None:
    source = os.path.join(input_dir, key)
    root = os.path.realpath(input_dir)
    if os.path.commonpath([root, os.path.realpath(source)]) != root:
        raise FetchError(f"SCRIPT_KEY {key!r} leaves MLGW_INPUT_DIR")
    try:
        shutil.copyfile(source, dest)
    except OSError as exc:
        raise FetchError(f"cannot read {source}: {exc.strerror or exc}") from exc


def fetch_s3(bucket: str, key: str, dest: str) -> None:
    if not bucket:
        raise FetchError("ML_INPUT_BUCKET is not set (and MLGW_INPUT_DIR is not either)")
    try:
        import boto3  # lazily: only s3:// locations need it

        boto3.client("s3").download_file(bucket, key, dest)
    except Exception as exc:  # ImportError, botocore's ClientError, network errors, ...
        raise FetchError(f"cannot download s3://{bucket}/{key}: {exc}") from exc


def fetch_script(config: Config, work_dir: str) -> str:
    """Fetch the script into ``work_dir``; return its local path."""
    key = validate_key(config.script_key)
    dest = os.path.join(work_dir, os.path.basename(key))
    if config.input_dir:
        fetch_local(config.input_dir, key, dest)
    else:
        fetch_s3(config.input_bucket, key, dest)
    return dest


# --- running it ---------------------------------------------------------------------------


class SignalForwarder:
    """Forwards SIGTERM/SIGINT to the child's process group; SIGKILL after the grace period."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.child: subprocess.Popen[bytes] | None = None
        self.received: int | None = None
        self.kill_at: float | None = None
        self.killed = False

    def install(self) -> None:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            # Once is enough: a second SIGTERM (the local executor's, after the
            # one its death signal sent) must not interrupt the script's
            # checkpoint; the SIGKILL deadline of the first one stands.
            log(f"received {signal.Signals(signum).name} again; the script already has it")
            return
        self.received = signum
        self.kill_at = time.monotonic() + self.grace
        if self.child is not None:
            log(f"received {signal.Signals(signum).name}; forwarding to the script "
                f"(SIGKILL in {self.grace:g} s if it is still running)")
            signal_group(self.child.pid, signum)

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        if self.received is not None:  # arrived between spawn and attach
            signal_group(child.pid, self.received)

    def enforce_deadline(self) -> None:
        if self.child is None or self.killed or self.kill_at is None:
            return
        if time.monotonic() >= self.kill_at:
            log(f"the script is still running {self.grace:g} s after the signal; sending SIGKILL")
            signal_group(self.child.pid, signal.SIGKILL)
            self.killed = True


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def pump(source: IO[bytes], sink: IO[bytes]) -> None:
    """Copy ``source`` to ``sink`` line by line, flushing each line.

    When the sink breaks (whoever read our output died: the local executor's
    gateway, say) the script's output is still drained and dropped, so the
    script never blocks on a full pipe and the job still ends and publishes.
    """
    broken = False
    try:
        for line in iter(lambda: source.readline(CHUNK), b""):
            if broken:
                continue
            with _log_lock:
                try:
                    sink.write(line)
                    sink.flush()
                except (OSError, ValueError):
                    broken = True
    except (OSError, ValueError):
        pass
    finally:
        source.close()


def child_env(env: Mapping[str, str], output_dir: str,
              input_dir: str | None = None) -> dict[str, str]:
    result = dict(env)
    result["ML_OUTPUT_DIR"] = output_dir
    if input_dir is not None:
        result["ML_INPUT_DIR"] = input_dir
    if "ARRAY_INDEX" in result and "AWS_BATCH_JOB_ARRAY_INDEX" not in result:
        result["AWS_BATCH_JOB_ARRAY_INDEX"] = result["ARRAY_INDEX"]
    result["PYTHONUNBUFFERED"] = "1"
    return result


def run_script(script: str, args: Sequence[str], env: Mapping[str, str], cwd: str,
               forwarder: SignalForwarder) -> int:
    """Run the script; return its exit code (128+signal when a signal killed it)."""
    child = subprocess.Popen([sys.executable, script, *args], cwd=cwd, env=dict(env),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, process_group=0)
    forwarder.attach(child)
    assert child.stdout is not None and child.stderr is not None
    pumps = [threading.Thread(target=pump, args=(child.stdout, sys.stdout.buffer), daemon=True),
             threading.Thread(target=pump, args=(child.stderr, sys.stderr.buffer), daemon=True)]
    for thread in pumps:
        thread.start()
    while True:
        try:
            code = child.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            forwarder.enforce_deadline()
    # Processes the script left behind must not outlive the job (nor hold our pipes).
    signal_group(child.pid, signal.SIGKILL)
    for thread in pumps:
        thread.join(timeout=5)
    return 128 - code if code < 0 else code


# --- publishing the outputs ------------------------------------------------------------------


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def list_outputs(output_dir: str) -> list[tuple[str, str]]:
    """(relative path with '/', absolute path) of every regular file, sorted."""
    found: list[tuple[str, str]] = []
    if not os.path.isdir(output_dir):
        return found
    for root, dirs, files in os.walk(output_dir):
        dirs.sort()
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, output_dir).replace(os.sep, "/")
            if rel == MANIFEST_NAME:
                log(f"skipping the script's own {MANIFEST_NAME}: the name is reserved")
            elif os.path.islink(path) or not os.path.isfile(path):
                log(f"skipping {rel}: not a regular file")
            else:
                found.append((rel, path))
    found.sort()
    return found


class Destination:
    """The output URI: where the outputs go, and where a retried attempt finds them again."""

    def put_file(self, rel: str, path: str) -> None:
        raise NotImplementedError

    def put_manifest(self, body: bytes) -> None:
        raise NotImplementedError

    def list_files(self) -> list[str]:
        """The relative paths ('/'-separated) of every file there; [] when there is none."""
        raise NotImplementedError

    def get_file(self, rel: str, path: str) -> None:
        raise NotImplementedError


class FileDestination(Destination):
    def __init__(self, root: str) -> None:
        self.root = root

    def _path(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))

    def put_file(self, rel: str, path: str) -> None:
        target = self._path(rel)
        if os.path.exists(target) and os.path.samefile(path, target):
            return  # ML_OUTPUT_DIR is the output directory itself
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(path, target)

    def put_manifest(self, body: bytes) -> None:
        os.makedirs(self.root, exist_ok=True)
        target = os.path.join(self.root, MANIFEST_NAME)
        temporary = f"{target}.tmp{os.getpid()}"
        with open(temporary, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)

    def list_files(self) -> list[str]:
        found: list[str] = []
        if not os.path.isdir(self.root):
            return found
        for root, _dirs, files in os.walk(self.root):
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path) and os.path.isfile(path):
                    found.append(os.path.relpath(path, self.root).replace(os.sep, "/"))
        return sorted(found)

    def get_file(self, rel: str, path: str) -> None:
        shutil.copyfile(self._path(rel), path)


class S3Destination(Destination):
    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3  # lazily: only s3:// locations need it

        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.client("s3")

    def put_file(self, rel: str, path: str) -> None:
        self.client.upload_file(path, self.bucket, self.prefix + rel)

    def put_manifest(self, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + MANIFEST_NAME, Body=body,
                               ContentType="application/json")

    def list_files(self) -> list[str]:
        found: list[str] = []
        request: dict[str, str] = {"Bucket": self.bucket, "Prefix": self.prefix}
        while True:
            page = self.client.list_objects_v2(**request)
            for entry in page.get("Contents", []):
                key = entry["Key"]
                if not key.endswith("/"):  # "folder" marker objects hold no file
                    found.append(key[len(self.prefix):])
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
            request["ContinuationToken"] = token
        return sorted(found)

    def get_file(self, rel: str, path: str) -> None:
        self.client.download_file(self.bucket, self.prefix + rel, path)


def open_destination(uri: str | None) -> Destination:
    if not uri:
        raise PublishError("no output location: MLGW_OUTPUT_URI and ML_OUTPUT_BUCKET are unset")
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise PublishError(f"output URI {uri!r} is not file:///absolute/dir/")
        return FileDestination(urllib.parse.unquote(parsed.path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise PublishError(f"output URI {uri!r} has no bucket")
        prefix = parsed.path.strip("/")
        return S3Destination(parsed.netloc, f"{prefix}/" if prefix else "")
    raise PublishError(f"output URI {uri!r}: only file:// and s3:// are supported")


def publish(output_dir: str, uri: str | None, manifest: dict[str, Any],
            unchanged: Mapping[str, str] | None = None) -> None:
    """Copy/upload every output file, then write the manifest last.

    ``unchanged`` maps the files restored from ``uri`` to their SHA-256: those whose content
    is still the same are already there and are listed in the manifest without a new copy.
    """
    unchanged = unchanged or {}
    try:
        destination = open_destination(uri)
        files = []
        skipped = 0
        for rel, path in list_outputs(output_dir):
            digest = sha256_file(path)
            files.append({"path": rel, "size": os.path.getsize(path), "sha256": digest})
            if unchanged.get(rel) == digest:
                skipped += 1
            else:
                destination.put_file(rel, path)
        body = json.dumps({**manifest, "files": files}, indent=2).encode() + b"\n"
        destination.put_manifest(body)
    except PublishError:
        raise
    except Exception as exc:  # OSError, ImportError, botocore errors, ...
        raise PublishError(f"{type(exc).__name__}: {exc}") from exc
    note = f" ({skipped} restored and unchanged, not copied again)" if skipped else ""
    log(f"published {len(files)} file(s) and {MANIFEST_NAME} to {uri}{note}")


# --- restoring an earlier attempt's outputs ----------------------------------------------------


def plain_relative(rel: str) -> bool:
    """True for a relative path of named segments: no '', '.', '..', NUL or leading '/'."""
    if not rel or "\x00" in rel or rel.startswith("/"):
        return False
    return all(segment not in ("", ".", "..") for segment in rel.split("/"))


def restore(output_dir: str, uri: str | None, restored: dict[str, str]) -> None:
    """Copy every file an earlier attempt published at ``uri`` (``manifest.json`` aside)
    into ``output_dir``, adding {relative path: SHA-256} of each to ``restored``.

    Nothing published yet is not an error. Files already in ``output_dir`` are kept: they
    are this machine's own, at least as new as the published copies. Raises RestoreError
    when the location cannot be listed or a file cannot be copied.
    """
    try:
        location = open_destination(uri)
        rels = location.list_files()
    except PublishError as exc:
        raise RestoreError(str(exc)) from exc
    except Exception as exc:  # OSError, ImportError, botocore errors, ...
        raise RestoreError(f"cannot list {uri}: {type(exc).__name__}: {exc}") from exc
    rels = [rel for rel in rels
            if rel != MANIFEST_NAME and not rel.startswith(f"{MANIFEST_NAME}.tmp")]
    if not rels:
        log(f"attempt > 1, but nothing was published at {uri} yet: starting afresh")
        return
    root = os.path.realpath(output_dir)
    kept = 0
    for rel in rels:
        target = os.path.join(output_dir, *rel.split("/"))
        if not plain_relative(rel) or os.path.commonpath(
                [root, os.path.realpath(os.path.dirname(target))]) != root:
            log(f"not restoring {rel!r}: not a plain path inside ML_OUTPUT_DIR")
            continue
        if os.path.lexists(target):
            kept += 1
            continue
        temporary = f"{target}.restore{os.getpid()}"
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            location.get_file(rel, temporary)
            os.replace(temporary, target)
        except Exception as exc:  # OSError, botocore errors, ...
            with contextlib.suppress(OSError):
                os.remove(temporary)
            message = f"cannot restore {rel} from {uri}: {type(exc).__name__}: {exc}"
            raise RestoreError(message) from exc
        restored[rel] = sha256_file(target)
    note = f"; kept {kept} file(s) already in ML_OUTPUT_DIR" if kept else ""
    log(f"restored {len(restored)} file(s) an earlier attempt published at {uri}{note}")


# --- the model cache ----------------------------------------------------------------------------

CACHE_USAGE_DIR = ".usage"  # <cache>/.usage/<entry>: touched for each entry a job used
CACHE_USAGE_REPORT = "cache_usage.json"  # a script's own report in ML_OUTPUT_DIR: {"used": [...]}
CACHE_WATCH_LIMIT = 20000  # paths looked at per walk of the cache


def cache_times(cache_dir: str | None) -> dict[str, float] | None:
    """Per top-level entry of the model cache (dot names aside), the newest access or change
    time of anything in it (a folder's own access time aside: listing it sets it); None when
    there is no cache. Only stats: reading nothing, it changes no access time."""
    if not cache_dir or not os.path.isdir(cache_dir):
        return None
    times: dict[str, float] = {}
    budget = CACHE_WATCH_LIMIT
    try:
        names = [name for name in os.listdir(cache_dir) if not name.startswith(".")]
    except OSError:
        return None
    for name in names:
        path = os.path.join(cache_dir, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        newest = info.st_mtime if os.path.isdir(path) else max(info.st_atime, info.st_mtime)
        for folder, dirs, files in os.walk(path):
            for child in dirs + files:
                budget -= 1
                if budget < 0:
                    break
                with contextlib.suppress(OSError):
                    child_info = os.lstat(os.path.join(folder, child))
                    newest = max(newest, child_info.st_mtime)
                    if child in files:
                        newest = max(newest, child_info.st_atime)
            if budget < 0:
                break
        times[name] = newest
    return times


def cache_usage(cache_dir: str, before: Mapping[str, float], output_dir: str) -> dict[str, Any]:
    """Which cache entries the job created or used (their times moved during the run, or the
    script listed them in ``cache_usage.json``), for the manifest; touches each one's usage
    marker so that the gateway sees the use where the file system keeps no access times."""
    after = cache_times(cache_dir) or {}
    created = sorted(name for name in after if name not in before)
    used = {name for name in after if name in before and after[name] > before[name]}
    with contextlib.suppress(OSError, ValueError):
        with open(os.path.join(output_dir, CACHE_USAGE_REPORT), encoding="utf-8") as handle:
            reported = json.load(handle).get("used", [])
        used.update(name for name in reported if isinstance(name, str) and name in after)
    used.difference_update(created)
    markers = os.path.join(cache_dir, CACHE_USAGE_DIR)
    for name in sorted(used) + created:
        try:
            os.makedirs(markers, exist_ok=True)
            marker = os.path.join(markers, name)
            with open(marker, "a", encoding="utf-8"):
                pass  # empty: its modification time is the record
            os.utime(marker)
        except OSError as exc:  # a read-only cache: the manifest still says it
            log(f"cannot record the use of cache entry {name!r}: {exc}")
            break
    return {"dir": cache_dir, "used": sorted(used), "created": created}


# --- data between the steps of a pipeline ------------------------------------------------------


class InputError(Exception):
    """The parents' outputs could not be fetched into ML_INPUT_DIR."""


def parse_parents(text: str) -> dict[str, list[str]]:
    """PARENT_OUTPUT_URIS as {step: [uri, ...]}; InputError when it is not that shape."""
    try:
        parents = json.loads(text)
    except ValueError as exc:
        raise InputError(f"PARENT_OUTPUT_URIS is not JSON: {exc}") from exc
    if not isinstance(parents, dict):
        raise InputError("PARENT_OUTPUT_URIS must be a JSON object of step → list of URIs")
    for step, uris in parents.items():
        if not plain_relative(step) or "/" in step:
            raise InputError(f"PARENT_OUTPUT_URIS names an unsafe step {step!r}")
        if not isinstance(uris, list) or not all(isinstance(u, str) and u for u in uris):
            raise InputError(f"PARENT_OUTPUT_URIS[{step!r}] must be a list of URIs")
    return parents


def fetch_one_input(uri: str, dest: str) -> int:
    """Copy every file published at uri (its manifest aside) into dest; returns the count."""
    try:
        source = open_destination(uri)
        rels = source.list_files()
    except PublishError as exc:
        raise InputError(str(exc)) from exc
    except Exception as exc:  # OSError, ImportError, botocore errors, ...
        raise InputError(f"cannot list {uri}: {type(exc).__name__}: {exc}") from exc
    root = os.path.realpath(dest)
    count = 0
    for rel in rels:
        if rel == MANIFEST_NAME or rel.startswith(f"{MANIFEST_NAME}.tmp"):
            continue
        target = os.path.join(dest, *rel.split("/"))
        if not plain_relative(rel) or os.path.commonpath(
                [root, os.path.realpath(os.path.dirname(target))]) != root:
            log(f"not fetching {rel!r} from {uri}: not a plain relative path")
            continue
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source.get_file(rel, target)
        except Exception as exc:  # OSError, botocore errors, ...
            raise InputError(f"cannot fetch {rel} from {uri}: {type(exc).__name__}: {exc}") from exc
        count += 1
    return count


def fetch_inputs(input_dir: str, parents_text: str) -> None:
    """Fill input_dir/<step>/ (or input_dir/<step>/<index>/ for a parent with several jobs)
    with what each parent job published. Raises InputError."""
    parents = parse_parents(parents_text)
    os.makedirs(input_dir, exist_ok=True)
    total = 0
    for step, uris in sorted(parents.items()):
        for index, uri in enumerate(uris):
            dest = os.path.join(input_dir, step, str(index)) if len(uris) > 1 else \
                os.path.join(input_dir, step)
            os.makedirs(dest, exist_ok=True)
            total += fetch_one_input(uri, dest)
    log(f"fetched {total} file(s) of {len(parents)} parent step(s) into {input_dir}")


# --- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.monotonic()
    load_env_fd(os.environ)
    config = load_config(os.environ)
    forwarder = SignalForwarder(config.term_grace)
    forwarder.install()
    work_dir = tempfile.mkdtemp(prefix="mlgw-job-")
    output_dir = os.path.abspath(config.output_dir or os.path.join(work_dir, "output"))
    error: str | None = None
    restored: dict[str, str] = {}
    cache_dir = os.environ.get("MODEL_CACHE_DIR")
    cache_before = cache_times(cache_dir)
    input_dir: str | None = None
    if config.parents is not None:
        input_dir = os.path.abspath(config.step_input_dir or os.path.join(work_dir, "input"))
    try:
        os.makedirs(output_dir, exist_ok=True)
        script = fetch_script(config, work_dir)
        if config.attempt > 1:
            restore(output_dir, config.output_uri, restored)
        if input_dir is not None and config.parents is not None:
            fetch_inputs(input_dir, config.parents)
    except (FetchError, RestoreError, InputError, OSError) as exc:
        error = str(exc)
        exit_code = EXIT_FETCH_FAILED
        log(f"cannot prepare the job: {error}")
    else:
        if forwarder.received is not None:
            error = f"{signal.Signals(forwarder.received).name} received before the script started"
            exit_code = 128 + forwarder.received
            log(error)
        else:
            log(f"running {config.script_key} (job {config.job_id}, attempt {config.attempt})")
            try:
                exit_code = run_script(script, argv[1:],
                                       child_env(os.environ, output_dir, input_dir), work_dir,
                                       forwarder)
                log(f"the script exited with code {exit_code}")
            except Exception as exc:  # the script could not be started or supervised
                error = f"cannot run the script: {type(exc).__name__}: {exc}"
                exit_code = EXIT_RUN_FAILED
                log(error)
    ended_at = datetime.datetime.now(datetime.timezone.utc)
    duration = round(time.monotonic() - started, 3)

    manifest: dict[str, Any] = {
        "job_id": config.job_id,
        "attempt": config.attempt,
        "exit_code": exit_code,
        "duration_seconds": duration,
        "started_at": rfc3339(started_at),
        "ended_at": rfc3339(ended_at),
    }
    if error is not None:
        manifest["error"] = error
    if cache_dir and cache_before is not None:
        manifest["cache"] = cache_usage(cache_dir, cache_before, output_dir)
    try:
        publish(output_dir, config.output_uri, manifest, restored)
    except PublishError as exc:
        log(f"cannot publish the outputs: {exc}")
        if exit_code == 0:
            exit_code = EXIT_PUBLISH_FAILED
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
        forwarder.restore()
    return exit_code


if __name__ == "__main__":
    status = main(sys.argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        os._exit(status)  # a broken stdout must not turn the script's code into 120
    sys.exit(status)
