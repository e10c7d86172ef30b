#!/usr/bin/env python3
"""Property-based contract test: Schemathesis against a gateway of its own.

Usage: run.py [--seed N|random] [--max-examples N] [--max-time S] [--phases LIST]
              [--report-dir DIR] [-- SCHEMATHESIS-RUN-OPTIONS]

Starts, and stops again:
  - a fresh database on the test PostgreSQL (the CTest fixture's cluster named by
    MLGW_TEST_PG_DIR, else a private one under the work directory, scripts/pg.sh);
  - moto in server mode (the fixture's, MLGW_TEST_MOTO_DIR, else its own,
    tests/harness/moto.sh), so that the gateway has AWS Batch queues, an SNS topic
    and CloudWatch Logs to answer from;
  - a certificate authority and an SNS signing certificate made here, the
    certificate served over loopback HTTP, so that /events/sns receives messages
    signed exactly as SNS signs them (tests/schemathesis/hooks.py signs them);
  - the gateway (MLGW_BIN, else build/ml-gateway), with nothing dispatching jobs,
    and one API key per scope (jobs:read, jobs:write, admin) plus the callback key.

Then runs `schemathesis run openapi.yaml` with every check and the phases asked for
(all four by default, stateful included) under tests/schemathesis/schemathesis.toml,
which says which key each operation uses. Exit status: Schemathesis's, or 1 when the
gateway died or its log holds a sanitizer report.
"""
from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import datetime
import http.server
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SANITIZER = re.compile(r"LeakSanitizer|AddressSanitizer|runtime error|ERROR: .*Sanitizer")
TOPIC = "arn:aws:sns:us-east-1:123456789012:ml-job-state"

_cleanups: list = []


def _cleanup() -> None:
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 (cleanup goes on)
            print(f"run.py: cleanup: {e}", file=sys.stderr)


atexit.register(_cleanup)


def log(msg: str) -> None:
    print(f"run.py: {msg}", file=sys.stderr, flush=True)


# --- PostgreSQL ----------------------------------------------------------------


def pg_base_url(work: Path) -> str:
    fixture = os.environ.get("MLGW_TEST_PG_DIR")
    if fixture and (Path(fixture) / "url").is_file():
        return (Path(fixture) / "url").read_text().strip()
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    pgdir = work / "pg"
    subprocess.run([str(ROOT / "scripts/pg.sh"), "start", str(pgdir)], check=True,
                   env={**os.environ, "MLGW_PG_FAST": "1"})
    _cleanups.append(lambda: subprocess.run([str(ROOT / "scripts/pg.sh"), "destroy", str(pgdir)],
                                            check=False))
    return (pgdir / "url").read_text().strip()


def psql(url: str, sql: str) -> None:
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                   check=True, stdout=subprocess.DEVNULL)


def create_database(base: str) -> str:
    name = f"mlgw_st_{os.getpid()}_{secrets.token_hex(4)}"
    psql(base, f"CREATE DATABASE {name}")
    _cleanups.append(lambda: psql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


# --- moto ----------------------------------------------------------------------


def moto(work: Path) -> tuple[str, dict]:
    d = os.environ.get("MLGW_TEST_MOTO_DIR")
    if not (d and (Path(d) / "url").is_file()):
        d = str(work / "moto")
        venv = str(Path(sys.executable).parent.parent)
        subprocess.run([str(ROOT / "tests/harness/moto.sh"), "start", d, venv], check=True)
        _cleanups.append(lambda: subprocess.run([str(ROOT / "tests/harness/moto.sh"), "stop", d],
                                                check=False))
    url = (Path(d) / "url").read_text().strip()
    return url, json.loads((Path(d) / "resources.json").read_text())


# --- the SNS signing certificate ------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certs(work: Path) -> None:
    """ca.pem, and sns.pem with its key sns.key, valid for two days."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (x509.CertificateBuilder().subject_name(_name("schemathesis-sns-ca"))
          .issuer_name(_name("schemathesis-sns-ca")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (x509.CertificateBuilder().subject_name(_name("sns.amazonaws.com"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("sns.amazonaws.com")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (work / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (work / "sns.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (work / "sns.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def serve_cert(work: Path) -> str:
    """Serves sns.pem over loopback HTTP; returns its SigningCertURL."""
    pem = (work / "sns.pem").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server interface)
            if self.path.endswith(".pem"):
                self.send_response(200)
                self.send_header("Content-Type", "application/x-pem-file")
                self.send_header("Content-Length", str(len(pem)))
                self.end_headers()
                self.wfile.write(pem)
            else:
                self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _cleanups.append(srv.shutdown)
    return f"http://127.0.0.1:{srv.server_address[1]}/SimpleNotificationService-test.pem"


# --- the gateway ------------------------------------------------------------------


def gateway_bin() -> str:
    b = os.environ.get("MLGW_BIN") or str(ROOT / "build/ml-gateway")
    if not os.access(b, os.X_OK):
        sys.exit(f"run.py: no gateway binary at {b} (make, or set MLGW_BIN)")
    return b


def start_gateway(work: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, Path]:
    logpath = work / "gateway.log"
    logf = open(logpath, "wb")  # noqa: SIM115 (the child writes to it until stopped)
    proc = subprocess.Popen([gateway_bin()], env=env, stdout=logf, stderr=subprocess.STDOUT,
                            cwd=ROOT)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        logf.close()

    _cleanups.append(stop)
    for _ in range(600):  # 30 s: sanitizer builds start slowly
        m = re.search(r'"msg":"listening","port":(\d+)', logpath.read_text(errors="replace"))
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}", logpath
        if proc.poll() is not None:
            sys.exit(f"run.py: the gateway exited ({proc.returncode}):\n{logpath.read_text()}")
        time.sleep(0.05)
    sys.exit("run.py: the gateway did not listen within 30 s")


def create_key(env: dict[str, str], name: str, scopes: str) -> str:
    out = subprocess.run([gateway_bin(), "keys", "create", "--name", name, "--scopes", scopes,
                          "--team", "schemathesis"], env=env, check=True, capture_output=True,
                         text=True, cwd=ROOT).stdout.strip()
    if not out.startswith("mlgw_"):
        sys.exit(f"run.py: keys create printed {out!r}")
    return out


# --- main ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", default="20261202", help="an integer, or 'random'")
    ap.add_argument("--max-examples", type=int, default=20)
    ap.add_argument("--max-time", type=int, default=None, help="seconds, for the whole run")
    ap.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    ap.add_argument("--report-dir", default=None, help="keep the gateway log and a JUnit report here")
    ap.add_argument("st_args", nargs=argparse.REMAINDER,
                    help="after --, more `schemathesis run` options (--include-operation-id X)")
    args = ap.parse_args(argv)
    seed = random.SystemRandom().randrange(1, 2**31) if args.seed == "random" else int(args.seed)
    log(f"seed {seed} (rerun with --seed {seed})")

    work = Path(tempfile.mkdtemp(prefix="mlgw-schemathesis-"))
    _cleanups.append(lambda: shutil.rmtree(work, ignore_errors=True))
    db_url = create_database(pg_base_url(work))
    moto_url, res = moto(work)
    make_certs(work)
    cert_url = serve_cert(work)

    callback = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLGW_", "AWS_"))}
    env.update({
        "DATABASE_URL": db_url,
        "MLGW_LISTEN": "127.0.0.1:0",
        "MLGW_MIGRATIONS_DIR": str(ROOT / "migrations"),
        "MLGW_LOCAL_ROOT": str(work / "local"),
        # Jobs are stored, not run: nothing dispatches or notifies.
        "MLGW_DISPATCH_WORKERS": "0",
        "MLGW_NOTIFY_WORKERS": "0",
        "MLGW_AUTH_CACHE_SECONDS": "0",
        "MLGW_RATE_LIMIT": "100000",
        "MLGW_RATE_BURST": "100000",
        "MLGW_AUTH_FAILURES_PER_MINUTE": "100000",
        "MLGW_CALLBACK_SECRET": callback,
        # The largest resources the settings allow: the schema's maxima.
        "MLGW_MAX_VCPUS": "4096",
        "MLGW_MAX_MEMORY": "16777216",
        "MLGW_MAX_GPUS": "64",
        # Every dispatch target configured, so that no valid request meets a
        # configuration refusal.
        "MLGW_GPU_JOB_QUEUE": res["gpu_queue"],
        "MLGW_CPU_JOB_QUEUE": res["cpu_queue"],
        "MLGW_GPU_JOB_DEFINITION": res["job_definition"],
        "MLGW_CPU_JOB_DEFINITION": res["job_definition"],
        "MLGW_TRIGGER_TOPIC_ARN": res["topic_arn"],
        "MLGW_BATCH_LOG_GROUP": res["log_group"],
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_REGION": res["region"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "MLGW_AWS_TIMEOUT_MS": "5000",
        "MLGW_SNS_TOPIC_ARNS": TOPIC,
        "MLGW_SNS_CERT_CA_FILE": str(work / "ca.pem"),
        "MLGW_SNS_CERT_HOST_SUFFIX": "127.0.0.1",
    })
    proc, base, logpath = start_gateway(work, env)
    log(f"gateway at {base}, log {logpath}")

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        keys = list(pool.map(lambda a: create_key(env, *a), [
            ("st-read", "jobs:read"), ("st-write", "jobs:write"), ("st-admin", "admin")]))
    st_env = dict(os.environ)
    st_env.update({
        "MLGW_ST_KEY_READ": keys[0],
        "MLGW_ST_KEY_WRITE": keys[1],
        "MLGW_ST_KEY_ADMIN": keys[2],
        "MLGW_ST_CALLBACK_KEY": callback,
        "MLGW_ST_SNS_KEY": str(work / "sns.key"),
        "MLGW_ST_SNS_CERT_URL": cert_url,
        "MLGW_ST_SNS_TOPIC": TOPIC,
        "SCHEMATHESIS_HOOKS": "hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    })
    cmd = [str(Path(sys.executable).parent / "schemathesis"),
           "--config-file", str(HERE / "schemathesis.toml"),
           "run", str(ROOT / "openapi.yaml"), "--url", base,
           "--checks", "all", "--phases", args.phases, "--seed", str(seed),
           "--max-examples", str(args.max_examples), "--workers", "1"]
    if args.max_time:
        cmd += ["--max-time", str(args.max_time)]
    if args.report_dir:
        Path(args.report_dir).mkdir(parents=True, exist_ok=True)
        cmd += ["--report", "junit", "--report-dir", args.report_dir]
    cmd += [a for a in args.st_args if a != "--"]
    log(" ".join(cmd))
    rc = subprocess.run(cmd, env=st_env, cwd=ROOT, check=False).returncode

    alive = proc.poll() is None
    gwlog = logpath.read_text(errors="replace")
    if args.report_dir:
        shutil.copy(logpath, Path(args.report_dir) / "gateway.log")
    if not alive:
        log(f"the gateway died during the run ({proc.returncode}); its log ends:\n{gwlog[-4000:]}")
        rc = rc or 1
    if SANITIZER.search(gwlog):
        m = SANITIZER.search(gwlog)
        log(f"sanitizer report in the gateway's log:\n{gwlog[max(0, m.start() - 200):][:4000]}")
        rc = rc or 1
    if rc != 0:
        errors = [line for line in gwlog.splitlines() if '"level":"error"' in line]
        if errors:
            log("the gateway's errors (its log is removed with the run):\n" + "\n".join(errors[-20:]))
    log(f"seed {seed}: {'passed' if rc == 0 else 'FAILED'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
