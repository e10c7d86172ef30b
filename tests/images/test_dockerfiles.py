#!/usr/bin/env python3
"""The Dockerfiles of images/, read without a Docker engine.

Each Dockerfile is parsed (stages, ENV, USER, WORKDIR, COPY, ENTRYPOINT, ...) and held
to the contracts the rest of the repository relies on:

- the job images (ml-python-slim, ml-python) run images/entrypoint/entrypoint.py under
  tini as a non-root user, with ML_OUTPUT_DIR the directory the gateway's Batch
  dispatcher names (jobs/dispatcher.c), MODEL_CACHE_DIR=/opt/models and the Hugging Face
  and PyTorch caches inside it, both writable by the job user; their Python packages
  come from the lock files (requirements.txt, hashed) and agree with requirements.in;
  the final stage installs no compiler; the entrypoint is copied last;
- the gateway image builds with the flags of `make`, runs as a non-root user on port
  8080 with a /healthz HEALTHCHECK that works, finds its migrations, holds no secret,
  and installs exactly the runtime libraries the gateway binary links (`ldd` and
  `dpkg -S` against the Dockerfile's apt list; MLGW_BIN, default build/ml-gateway);
- the .dockerignore files send what the builds copy and keep build/, var/ and .git out.

    MLGW_BIN=build/ml-gateway python3 tests/images/test_dockerfiles.py [-v]
"""
from __future__ import annotations

import dataclasses
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGES = os.path.join(ROOT, "images")
JOB_IMAGES = ("ml-python-slim", "ml-python")
ENTRYPOINT_SOURCE = "entrypoint/entrypoint.py"  # relative to the job images' context
BUILD_TOOLS = re.compile(r"^(build-essential|gcc|g\+\+|clang|make|cmake|pkg-config|"
                         r"python3(\.\d+)?-(dev|venv|pip)|.*-dev)(=.*)?$")
SECRET_NAMES = re.compile(r"(PASSWORD|SECRET|TOKEN|DATABASE_URL|ACCESS_KEY|PRIVATE_KEY|"
                          r"API_KEY)", re.IGNORECASE)
# An exact version tag (x.y.z or x.y, never latest) and the digest it had when pinned.
PINNED_BASE = re.compile(r"^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9.]+)*@sha256:[0-9a-f]{64}$")
# Sanitizer runtimes of the ASan+UBSan test build: not part of a release binary.
SANITIZER_PACKAGE = re.compile(r"^lib(asan|ubsan|lsan|tsan)\d+$")


# --- a small Dockerfile reader ---------------------------------------------------------------


@dataclasses.dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclasses.dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        if not found:
            raise AssertionError(f"stage {self.name or self.base}: no {keyword}")
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instr in self.all("ENV"):
            for word in shlex.split(instr.args):
                name, sep, value = word.partition("=")
                if not sep:
                    raise AssertionError(f"line {instr.line}: use ENV NAME=value")
                # $PATH and friends: expand what the stage set before.
                values[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)),
                                      value)
        return values


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Joins continuation lines, drops comments and blank lines; (first line number, text)."""
    out: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1].strip())
            continue
        current.append(stripped)
        out.append((start, " ".join(part for part in current if part)))
        current = []
    if current:
        raise AssertionError("the last instruction ends with a line continuation")
    return out


def parse(path: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) of a Dockerfile."""
    with open(path) as handle:
        lines = logical_lines(handle.read())
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in lines:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = args.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name, []))
        elif not stages:
            if keyword != "ARG":
                raise AssertionError(f"line {number}: {keyword} before FROM")
            name, _, value = args.partition("=")
            global_args[name] = value
        else:
            stages[-1].instructions.append(Instruction(keyword, args, number))
    return global_args, stages


def exec_form(instr: Instruction) -> list[str]:
    value = json.loads(instr.args)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AssertionError(f"line {instr.line}: {instr.keyword} is not in exec (JSON) form")
    return value


def copies(stage: Stage) -> list[tuple[list[str], str, str | None]]:
    """(sources, destination, --from stage) of every COPY."""
    found = []
    for instr in stage.all("COPY"):
        words = shlex.split(instr.args)
        source_stage = None
        while words[0].startswith("--"):
            flag = words.pop(0)
            if flag.startswith("--from="):
                source_stage = flag.split("=", 1)[1]
        found.append((words[:-1], words[-1], source_stage))
    return found


def apt_packages(stage: Stage) -> list[str]:
    """The packages of every `apt-get install` in the stage, with their =version pins."""
    packages: list[str] = []
    for instr in stage.all("RUN"):
        for command in re.split(r"&&|;", instr.args):
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                packages += [w for w in words[2:] if not w.startswith("-")]
    return packages


def unpinned(package: str) -> str:
    return package.split("=", 1)[0]


# --- .dockerignore, as Docker reads it ----------------------------------------------------------


def dockerignore_patterns(context: str) -> list[tuple[bool, re.Pattern[str]]]:
    patterns = []
    with open(os.path.join(context, ".dockerignore")) as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = os.path.normpath(line[1:] if negated else line).lstrip("/")
            regex = ""
            i = 0
            while i < len(pattern):
                if pattern.startswith("**/", i):
                    regex += "(.*/)?"
                    i += 3
                elif pattern.startswith("**", i):
                    regex += ".*"
                    i += 2
                elif pattern[i] == "*":
                    regex += "[^/]*"
                    i += 1
                elif pattern[i] == "?":
                    regex += "[^/]"
                    i += 1
                else:
                    regex += re.escape(pattern[i])
                    i += 1
            patterns.append((negated, re.compile(f"^{regex}$")))
    return patterns


def sent_to_builder(context: str, rel: str) -> bool:
    """Whether the file ``rel`` of the build context is sent (not excluded)."""
    parts = rel.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for negated, regex in dockerignore_patterns(context):
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return not excluded


def git_files(under: str) -> list[str]:
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "--", under], check=True,
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


# --- the tests ---------------------------------------------------------------------------------


def dispatcher_output_dir() -> str:
    with open(os.path.join(ROOT, "jobs", "dispatcher.c")) as handle:
        match = re.search(r'jobs_environment\([^;]*"([^"]+)"\)', handle.read())
    if not match:
        raise AssertionError("jobs/dispatcher.c: cannot find the ML_OUTPUT_DIR it sets")
    return match.group(1)


def requirement_pins(path: str) -> dict[str, str]:
    pins = {}
    with open(path) as handle:
        for line in handle:
            match = re.match(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", line)
            if match:
                pins[re.sub(r"[-_.]+", "-", match.group(1).lower())] = match.group(2)
    return pins


class JobImages(unittest.TestCase):
    def test_contract(self) -> None:
        output_dir = dispatcher_output_dir()
        for image in JOB_IMAGES:
            with self.subTest(image=image):
                _, stages = parse(os.path.join(IMAGES, image, "Dockerfile"))
                final = stages[-1]
                env = final.env()
                # The entrypoint: copied from images/entrypoint, run by the venv's Python
                # under tini, with no CMD of its own (the job's command is its arguments).
                entry_copies = [(src, dest) for src, dest, frm in copies(final)
                                if src == [ENTRYPOINT_SOURCE]]
                self.assertEqual(len(entry_copies), 1, "the entrypoint is copied once")
                destination = entry_copies[0][1]
                self.assertTrue(os.path.isfile(os.path.join(IMAGES, ENTRYPOINT_SOURCE)))
                entrypoint = exec_form(final.last("ENTRYPOINT"))
                self.assertEqual(entrypoint[:2], ["/usr/bin/tini", "--"])
                self.assertEqual(entrypoint[2], "/opt/venv/bin/python")
                self.assertEqual(entrypoint[3:], [destination])
                self.assertEqual(final.all("CMD"), [])
                self.assertIn("tini", [unpinned(p) for p in apt_packages(final)])
                self.assertIn("/opt/venv/bin", env["PATH"].split(":")[0])
                # The environment contract.
                self.assertEqual(env["ML_OUTPUT_DIR"], output_dir)
                self.assertEqual(env["MODEL_CACHE_DIR"], "/opt/models")
                for cache in ("HF_HOME", "TORCH_HOME"):
                    self.assertTrue(env[cache].startswith(env["MODEL_CACHE_DIR"] + "/"), cache)
                self.assertEqual(env.get("PYTHONUNBUFFERED"), "1")
                self.assertEqual(final.last("WORKDIR").args, os.path.dirname(output_dir))
                # A non-root user that owns the output directory and the cache.
                user = final.last("USER").args
                uid = user.split(":")[0]
                self.assertTrue(uid.isdigit() and int(uid) > 0, f"USER {user} is not a non-root uid")
                made = " ".join(i.args for i in final.all("RUN"))
                created = [p for args in re.findall(r"mkdir -p ([^&;]+)", made) for p in args.split()]
                owned = [p for owner, args in re.findall(r"chown -R (\S+) ([^&;]+)", made)
                         if owner == user for p in args.split()]
                for path in (output_dir, env["MODEL_CACHE_DIR"]):
                    self.assertIn(path, created)
                    self.assertTrue(any(path == o or path.startswith(o.rstrip("/") + "/")
                                        for o in owned), f"{path} is not owned by {user}")
                self.assertEqual(final.last("STOPSIGNAL").args, "SIGTERM")
                self.assertNoSecrets(final)

    def assertNoSecrets(self, stage: Stage) -> None:
        for instr in stage.all("ENV") + stage.all("ARG"):
            for word in shlex.split(instr.args):
                self.assertNotRegex(word.split("=", 1)[0], SECRET_NAMES, f"line {instr.line}")

    def test_layers_and_build_tools(self) -> None:
        for image in JOB_IMAGES:
            with self.subTest(image=image):
                global_args, stages = parse(os.path.join(IMAGES, image, "Dockerfile"))
                self.assertGreaterEqual(len(stages), 2, "packages are built in a stage of their own")
                final = stages[-1]
                # The final stage installs no compiler, no -dev package and no pip package:
                # the virtual environment is copied whole from the build stage.
                for package in apt_packages(final):
                    self.assertNotRegex(package, BUILD_TOOLS)
                runs = " ".join(i.args for i in final.all("RUN"))
                self.assertNotRegex(runs, r"\bpip\b")
                venv = [frm for _, dest, frm in copies(final) if dest == "/opt/venv"]
                self.assertEqual(venv, [stages[0].name])
                # The entrypoint is the last thing copied, after every RUN: a change to it
                # rebuilds no heavy layer.
                layered = [i for i in final.instructions if i.keyword in ("RUN", "COPY")]
                self.assertIn(ENTRYPOINT_SOURCE, layered[-1].args)
                # Base images pinned by exact tag and digest, the same in every stage.
                for stage in stages:
                    self.assertRegex(stage.base, PINNED_BASE)
                self.assertEqual({s.base for s in stages}, {stages[0].base})

    def test_bases(self) -> None:
        _, slim = parse(os.path.join(IMAGES, "ml-python-slim", "Dockerfile"))
        self.assertRegex(slim[0].base, r"^python:3\.11\.\d+-slim-bookworm")
        _, gpu = parse(os.path.join(IMAGES, "ml-python", "Dockerfile"))
        self.assertRegex(gpu[0].base, r"^nvidia/cuda:12\.2\.\d+-cudnn8?-runtime-ubuntu22\.04")
        self.assertIn("python3.11", [unpinned(p) for p in apt_packages(gpu[-1])])
        self.assertIn("ffmpeg", [unpinned(p) for p in apt_packages(slim[-1])])

    def test_locked_requirements(self) -> None:
        for image in JOB_IMAGES:
            with self.subTest(image=image):
                _, stages = parse(os.path.join(IMAGES, image, "Dockerfile"))
                build = stages[0]
                lock_rel = f"{image}/requirements.txt"
                self.assertIn(([lock_rel], "/tmp/requirements.txt", None), copies(build))
                runs = " ".join(i.args for i in build.all("RUN"))
                self.assertIn("--require-hashes -r /tmp/requirements.txt", runs)
                self.assertIn("pip check", runs)
                wanted = requirement_pins(os.path.join(IMAGES, image, "requirements.in"))
                locked = requirement_pins(os.path.join(IMAGES, lock_rel))
                with open(os.path.join(IMAGES, lock_rel)) as handle:
                    blocks = re.split(r"\n(?=[A-Za-z0-9])", handle.read().split("\n", 2)[2])
                for block in blocks:
                    if block.strip():
                        self.assertIn("--hash=sha256:", block, block.splitlines()[0])
                if image == "ml-python-slim":
                    # torch and torchaudio come from the CPU index, at TORCH_VERSION.
                    torch = build.last("ARG").args
                    self.assertEqual(torch, f"TORCH_VERSION={wanted['torch']}")
                    self.assertEqual(wanted["torchaudio"], wanted["torch"])
                    for name in ("torch", "torchaudio"):
                        self.assertNotIn(name, locked)
                        wanted.pop(name)
                    self.assertIn("torch==${TORCH_VERSION}+cpu", runs)
                    self.assertIn("https://download.pytorch.org/whl/cpu", runs)
                    self.assertEqual([n for n in locked if n.startswith(("nvidia-", "triton"))], [])
                else:
                    self.assertRegex(locked["tensorflow"], r"^2\.15\.")
                    self.assertRegex(locked["torch"], r"^2\.1\.")
                    self.assertRegex(locked["numpy"], r"^1\.")
                for name, version in wanted.items():
                    self.assertEqual(locked.get(name), version, name)
                self.assertIn("boto3", locked)

    def test_dockerignore(self) -> None:
        for image in JOB_IMAGES:
            _, stages = parse(os.path.join(IMAGES, image, "Dockerfile"))
            for stage in stages:
                for sources, _, frm in copies(stage):
                    for source in sources if frm is None else []:
                        self.assertTrue(os.path.exists(os.path.join(IMAGES, source)), source)
                        self.assertTrue(sent_to_builder(IMAGES, source), source)
        for rel in ("README.md", "build-and-push.sh", "ml-python/requirements.in"):
            self.assertFalse(sent_to_builder(IMAGES, rel), rel)


class GatewayImage(unittest.TestCase):
    dockerfile = os.path.join(IMAGES, "gateway", "Dockerfile")

    def setUp(self) -> None:
        self.global_args, self.stages = parse(self.dockerfile)
        self.build, self.final = self.stages[0], self.stages[-1]

    def test_runtime(self) -> None:
        final, env = self.final, self.final.env()
        user = final.last("USER").args
        self.assertTrue(user.split(":")[0].isdigit() and int(user.split(":")[0]) > 0, user)
        self.assertEqual(final.last("EXPOSE").args, "8080")
        self.assertEqual(env["MLGW_LISTEN"], "0.0.0.0:8080")
        self.assertEqual(final.last("STOPSIGNAL").args, "SIGTERM")
        entrypoint = exec_form(final.last("ENTRYPOINT"))
        binary = [dest for src, dest, frm in copies(final)
                  if frm == self.build.name and src == ["/src/build/ml-gateway"]]
        self.assertEqual(binary, [entrypoint[-1]])
        self.assertEqual(entrypoint[:2], ["/usr/bin/tini", "--"])
        self.assertEqual(exec_form(final.last("CMD")), ["serve"])
        # Migrations where MLGW_MIGRATIONS_DIR (or the working directory's
        # migrations/, the binary's default) says.
        migrations = [dest for src, dest, frm in copies(final) if src == ["migrations/"]]
        self.assertEqual(len(migrations), 1)
        self.assertEqual(migrations[0].rstrip("/"), env["MLGW_MIGRATIONS_DIR"])
        self.assertEqual(os.path.join(final.last("WORKDIR").args, "migrations"),
                         env["MLGW_MIGRATIONS_DIR"])
        for stage in self.stages:
            JobImages.assertNoSecrets(self, stage)  # type: ignore[arg-type]
            self.assertRegex(stage.base, PINNED_BASE)
            self.assertRegex(stage.base, r"^debian:12\.\d+-slim@")
        for package in apt_packages(final):
            self.assertNotRegex(package, BUILD_TOOLS)
            self.assertIn("=", package, f"{package} is not pinned")

    def test_build_flags_match_make(self) -> None:
        with open(os.path.join(ROOT, "Makefile")) as handle:
            makefile = handle.read()
        recipe = re.search(r"^build: .*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
        flags = [w for w in recipe.split() if w.startswith("-D") and "$" not in w]
        self.assertIn("-DCMAKE_BUILD_TYPE=Release", flags)
        runs = " ".join(i.args for i in self.build.all("RUN"))
        configure = re.search(r"cmake -S \. -B build ([^&]*)", runs).group(1).split()
        self.assertEqual(sorted(flags), sorted(configure))
        for sources, _, frm in copies(self.build):
            for source in sources:
                self.assertTrue(os.path.exists(os.path.join(ROOT, source)), source)
        # Every source folder CMakeLists.txt builds a floor from is copied.
        with open(os.path.join(ROOT, "CMakeLists.txt")) as handle:
            floors = re.findall(r"^mlgw_floor\(\w+ (\w+)", handle.read(), re.MULTILINE)
        copied = {src.rstrip("/") for sources, _, _ in copies(self.build) for src in sources}
        self.assertEqual(set(floors) - copied, set())

    def stage_build_context(self, dest: str) -> None:
        """Lays out in ``dest`` what the build stage's COPYs put in its working directory,
        from the tracked files that .dockerignore lets into the context."""
        for sources, target, frm in copies(self.build):
            self.assertIsNone(frm)
            for source in sources:
                for rel in git_files(source):
                    if not sent_to_builder(ROOT, rel):
                        continue
                    if source.endswith("/"):
                        out = os.path.join(dest, target, os.path.relpath(rel, source))
                    elif target.endswith("/"):
                        out = os.path.join(dest, target, os.path.basename(rel))
                    else:
                        out = os.path.join(dest, target)
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    shutil.copy2(os.path.join(ROOT, rel), out)

    def test_build_stage_configures_from_the_context(self) -> None:
        """CMake configures from exactly what the build context sends (the compile itself
        is `make`'s, with the same flags)."""
        self.assertEqual(self.build.last("WORKDIR").args, "/src")
        runs = " ".join(i.args for i in self.build.all("RUN"))
        configure = re.search(r"(cmake -S \. -B build [^&]*)", runs).group(1).split()
        with tempfile.TemporaryDirectory(prefix="mlgw-gateway-context-") as src:
            self.stage_build_context(src)
            result = subprocess.run(configure, cwd=src, capture_output=True, text=True,
                                    timeout=120)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            floors = subprocess.run(["scripts/check-floors.sh", "."], cwd=src,
                                    capture_output=True, text=True, timeout=60)
            self.assertEqual(floors.returncode, 0, floors.stdout + floors.stderr)

    def test_dockerignore(self) -> None:
        for rel in ("build/ml-gateway", "build/asan/CMakeCache.txt", "var/pg/postgresql.conf",
                    ".git/HEAD", "var/local/output/x", "common/build/x.o", "README.md",
                    "tests/CMakeLists.txt", "images/README.md"):
            self.assertFalse(sent_to_builder(ROOT, rel), rel)
        for stage in self.stages:
            for sources, _, frm in copies(stage):
                if frm is not None:
                    continue
                for source in sources:
                    files = git_files(source)
                    self.assertTrue(files, source)
                    for rel in files:
                        self.assertTrue(sent_to_builder(ROOT, rel), rel)

    def test_healthcheck_probes_healthz(self) -> None:
        instr = self.final.last("HEALTHCHECK")
        _, _, command = instr.args.partition(" CMD ")
        probe = json.loads(command)
        self.assertEqual(probe[:2], ["/bin/sh", "-c"])
        self.assertIn("/healthz", probe[2])
        tool = probe[2].split()[0]
        self.assertIn(tool, [unpinned(p) for p in apt_packages(self.final)])
        if shutil.which(tool) is None:
            self.fail(f"{tool} is needed to run the probe here")
        # Run the probe, with the image's MLGW_LISTEN port moved to a free one, against
        # a server that answers /healthz 200 and then 503.
        status = {"code": 200}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                code = status["code"] if self.path == "/healthz" else 404
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "ok"}')

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        port = server.server_address[1]
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update({**self.final.env(), "MLGW_LISTEN": f"0.0.0.0:{port}"})
        ok = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=20)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        status["code"] = 503
        down = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=20)
        self.assertNotEqual(down.returncode, 0)
        with socket.socket() as sock:  # a port nobody serves
            sock.bind(("127.0.0.1", 0))
            free = sock.getsockname()[1]
        env["MLGW_LISTEN"] = f"0.0.0.0:{free}"
        closed = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=20)
        self.assertNotEqual(closed.returncode, 0)


def path_candidates(path: str) -> list[str]:
    """``path`` as dpkg may have recorded it: as given, resolved, with and without /usr."""
    found = [path, os.path.realpath(path)]
    for candidate in list(found):
        if candidate.startswith("/usr/lib/"):
            found.append(candidate[len("/usr"):])
        elif candidate.startswith("/lib/"):
            found.append("/usr" + candidate)
    return found


def owning_packages(paths: list[str]) -> dict[str, str]:
    """{path: the Debian package that installed it} (one `dpkg -S` for all)."""
    candidates = sorted({c for path in paths for c in path_candidates(path)})
    out = subprocess.run(["dpkg", "-S", *candidates], capture_output=True, text=True).stdout
    owner: dict[str, str] = {}
    for line in out.splitlines():
        packages, _, owned = line.partition(": ")
        owner[owned.strip()] = packages.split(",")[0].split(":")[0].strip()
    result = {}
    for path in paths:
        found = [owner[c] for c in path_candidates(path) if c in owner]
        if not found:
            raise AssertionError(f"no Debian package owns {path}")
        result[path] = found[0]
    return result


class GatewayLibraries(unittest.TestCase):
    """The gateway image installs exactly the libraries the binary links."""

    def test_apt_list_matches_ldd(self) -> None:
        binary = os.environ.get("MLGW_BIN") or os.path.join(ROOT, "build", "ml-gateway")
        self.assertTrue(os.access(binary, os.X_OK), f"{binary}: build it first (make)")
        for tool in ("ldd", "readelf", "dpkg", "apt-cache"):
            self.assertIsNotNone(shutil.which(tool), f"{tool} is needed (Debian)")
        ldd = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
        resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.MULTILINE))
        owner = owning_packages(list(resolved.values()))

        def owning_package(path: str) -> str:
            return owner[path]

        dynamic = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True,
                                 text=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", dynamic)
        direct = {owning_package(resolved[lib]) for lib in needed if lib in resolved}
        direct = {p for p in direct if not SANITIZER_PACKAGE.match(p)}
        # libc6 and libgcc-s1 are in every Debian image.
        direct -= {"libc6", "libgcc-s1"}

        _, stages = parse(GatewayImage.dockerfile)
        listed = [unpinned(p) for p in apt_packages(stages[-1])]
        libraries = {p for p in listed if p.startswith("lib")}
        self.assertEqual(sorted(libraries), sorted(direct),
                         "the runtime apt list and the libraries the binary links differ")

        # Every library loaded, directly or not, comes with those packages. The walk starts
        # from the binary's own libraries, the sanitizer runtimes (and what only they load)
        # left out.
        loaded: set[str] = set()
        pending = [lib for lib in needed if lib in resolved
                   and not SANITIZER_PACKAGE.match(owning_package(resolved[lib]))]
        while pending:
            lib = pending.pop()
            if lib in loaded:
                continue
            loaded.add(lib)
            out = subprocess.run(["readelf", "-d", resolved[lib]], check=True,
                                 capture_output=True, text=True).stdout
            pending += [n for n in re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", out)
                        if n in resolved]
        closure_out = subprocess.run(
            ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
             "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *listed],
            check=True, capture_output=True, text=True).stdout
        closure = {line.strip() for line in closure_out.splitlines() if not line.startswith(" ")}
        for lib in sorted(loaded):
            package = owning_package(resolved[lib])
            self.assertIn(package, closure, f"{lib} ({package}) would be missing in the image")


if __name__ == "__main__":
    unittest.main()
