#!/usr/bin/env python3
"""seeds.py — (re)builds the seed corpora of tests/fuzz/corpus/ from the inputs
the unit and integration tests already use.

Every C string literal of the named test files is read (adjacent literals
joined, as the compiler joins them, with simple '#define NAME "text"' macros
expanded), and each target keeps the ones that fit it: JSON bodies for the
validators, SNS messages, paths, INI texts, times, AWS error bodies, UTF-8
text and base64url. A few inputs are built here from the tests' own values
(cursors, status lines); they say so below.

Seed files are named seed-<sha1 of the content, 12 digits>, so running this
again adds nothing that is already there. Files found by fuzzing (crash-*,
leak-*, regress-*) are left alone.

    python3 tests/fuzz/seeds.py          # writes into tests/fuzz/corpus/
"""
import base64
import hashlib
import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
MAX_SEED = 4096  # libFuzzer's default -max_len


def literals(path):
    """Every run of adjacent string literals in a C file, decoded to bytes."""
    src = open(os.path.join(ROOT, path), encoding="utf-8", errors="surrogateescape").read()
    macros = {}
    for m in re.finditer(r'^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+((?:"(?:[^"\\\n]|\\.)*"[ \t]*)+)$',
                         src, re.M):
        macros[m.group(1)] = b"".join(decode(s) for s in re.findall(r'"((?:[^"\\\n]|\\.)*)"',
                                                                     m.group(2)))
    tokens = re.finditer(r'//[^\n]*|/\*.*?\*/|\'(?:[^\'\\\n]|\\.)*\'|"((?:[^"\\\n]|\\.)*)"|(\w+)|(\S)',
                         src, re.S)
    run = None
    for t in tokens:
        text = t.group(0)
        if text.startswith("//") or text.startswith("/*"):
            continue  # comments do not break a run
        if t.group(1) is not None:
            run = (run or b"") + decode(t.group(1))
        elif t.group(2) is not None and t.group(2) in macros and run is not None:
            run += macros[t.group(2)]
        elif t.group(2) is not None and t.group(2) in macros:
            run = macros[t.group(2)]
        else:
            if run is not None:
                yield run
            run = None
    if run is not None:
        yield run


def decode(body):
    """The bytes of a C string literal's body."""
    out = bytearray()
    raw = body.encode("utf-8", errors="surrogateescape")
    i = 0
    simple = {ord("n"): 10, ord("t"): 9, ord("r"): 13, ord("v"): 11, ord("f"): 12, ord("a"): 7,
              ord("b"): 8, ord("\\"): 92, ord('"'): 34, ord("'"): 39, ord("?"): 63}
    while i < len(raw):
        c = raw[i]
        if c != 92:
            out.append(c)
            i += 1
            continue
        e = raw[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e == ord("x"):
            j = i + 2
            while j < len(raw) and chr(raw[j]) in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(raw[i + 2:j], 16) & 0xFF)
            i = j
        elif chr(e) in "01234567":
            j = i + 1
            while j < len(raw) and j < i + 4 and chr(raw[j]) in "01234567":
                j += 1
            out.append(int(raw[i + 1:j], 8) & 0xFF)
            i = j
        else:
            out.append(e)
            i += 2
    return bytes(out)


def from_files(paths):
    for p in paths:
        yield from literals(p)


def json_object(b):
    try:
        v = json.loads(b.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return v if isinstance(v, dict) else None


def job_request():
    for b in from_files(["tests/unit/routes/test_job_request.c", "tests/integration/test_jobs.c",
                         "tests/integration/test_tenancy.c", "tests/integration/test_local.c",
                         "tests/integration/test_lifecycle.c"]):
        v = json_object(b)
        if v is not None and ("script_key" in v or "trigger_type" in v or "data" in v):
            yield b


def batch_event():
    for b in from_files(["tests/unit/routes/test_batch_event.c", "tests/integration/test_events.c",
                         "tests/unit/aws/test_sns_verify.c"]):
        v = json_object(b)
        if v is not None and ("detail" in v or "detail-type" in v):
            yield b


def sns_message():
    for b in from_files(["tests/unit/aws/test_sns_verify.c", "tests/integration/test_events_sns.c"]):
        if b"%" in b:
            continue  # printf formats: filled in at run time
        v = json_object(b)
        if v is not None and "Type" in v:
            yield b
        elif b.lstrip().startswith(b"{") and b"Type" in b:
            yield b  # the malformed bodies the parser must refuse


def router():
    methods = {"/jobs": [b"GET", b"POST"], "/events": [b"POST"]}
    for b in from_files(["tests/unit/server/test_router.c", "tests/integration/test_http.c",
                         "tests/integration/test_jobs.c", "tests/integration/test_tenancy.c",
                         "tests/integration/test_logs.c", "tests/integration/test_events.c"]):
        if b.startswith(b"/") and b" " not in b and len(b) < 512:
            first = next((v for k, v in methods.items() if b.startswith(k.encode())), [b"GET"])
            for m in first:
                yield m + b" " + b
    for m in [b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"PUT", b"BREW"]:
        yield m + b" /jobs/0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d7e"
    # Cursors as the routes issue them (tags and payloads of test_params.c and
    # routes/jobs.c, routes/logs.c), and the refused "j1:\0a" of test_params.c.
    for tag, payload in [(b"j1:", b"0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d7e"), (b"l1:", b"1234:-1"),
                         (b"c1:", b"f/38734298347293847/s"), (b"j1:", b"abc")]:
        c = base64.urlsafe_b64encode(tag + payload).rstrip(b"=")
        yield b"GET /jobs?limit=2&cursor=" + c + b"&created_after=2026-11-28T22:00:00Z"
        yield b"GET /jobs/0190f4c2-6b3e-7a8e-9c1d-2f3a4b5c6d7e/logs?cursor=" + c
    yield b"GET /jobs?cursor=ajE6AGE&team=ml-research&created_before=2026-11-28 17:00:00-05:00"


def credentials():
    for b in from_files(["tests/unit/aws/test_credentials.c"]):
        if b"[" in b and b"=" in b and b"\n" in b:
            yield b


def rfc3339():
    for b in from_files(["tests/unit/common/test_parse.c", "tests/unit/common/test_time.c",
                         "tests/unit/jobs/test_joblog.c", "tests/unit/aws/test_credentials.c"]):
        if re.match(rb"^\d{2}", b) and len(b) < 64:
            yield b
    for b in from_files(["tests/unit/common/test_parse.c"]):
        if len(b) < 40 and b"%" not in b and (re.search(rb"\d", b) or b in (b"", b"not a time")):
            yield b  # the malformed times too


def aws_error():
    files = ["tests/integration/test_aws_transport.c", "tests/integration/test_logs.c",
             "tests/integration/test_dispatch.c", "tests/integration/test_aws.c"]
    for b in from_files(files):
        body = b.lstrip()
        if body.startswith(b"{") and (b"__type" in b or b"message" in b or b"Message" in b):
            status = b"500" if b"Server" in b else b"503" if b"Unavailable" in b else b"400"
            yield status + b"\n" + b
        elif body.startswith(b"<") and b"<Code>" in b:
            yield b"404\n" + b
        elif re.match(rb"^\w+:http://", b):
            yield b"400 " + b + b"\n{}"  # the x-amzn-ErrorType header of test_aws_transport.c
    yield b"429\n{\"message\": \"Too Many\"}"  # statuses of test_aws_transport.c
    yield b"503\ndown"


def utf8():
    for b in from_files(["tests/unit/common/test_gw.c", "tests/unit/jobs/test_joblog.c",
                         "tests/unit/jobs/test_mail.c", "tests/unit/aws/test_sns_verify.c"]):
        if any(c >= 0x80 for c in b) or b"\0" in b:
            yield b


def base64url():
    alphabet = re.compile(rb"^[A-Za-z0-9_-]+$")
    for b in from_files(["tests/unit/common/test_gw_ids.c", "tests/unit/routes/test_params.c"]):
        if len(b) < 256 and (alphabet.match(b) or b.startswith(b"not base64")):
            yield b


TARGETS = {
    "job_request": job_request,
    "batch_event": batch_event,
    "sns_message": sns_message,
    "router": router,
    "credentials": credentials,
    "rfc3339": rfc3339,
    "aws_error": aws_error,
    "utf8": utf8,
    "base64url": base64url,
}


def main():
    for name, gen in TARGETS.items():
        d = os.path.join(CORPUS, name)
        os.makedirs(d, exist_ok=True)
        seen = set()
        for b in gen():
            if len(b) > MAX_SEED or b in seen:
                continue
            seen.add(b)
            path = os.path.join(d, "seed-" + hashlib.sha1(b).hexdigest()[:12])
            with open(path, "wb") as f:
                f.write(b)
        print(f"{name}: {len(seen)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
