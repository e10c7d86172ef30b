#!/usr/bin/env python3
"""Check recorded HTTP exchanges against the OpenAPI 3.1 contract.

Usage: check_contract.py OPENAPI_YAML LOG_JSONL [--require-coverage]

LOG_JSONL holds one JSON object per exchange, as the integration tests write them:
  {"method": "POST", "path": "/jobs?x=1", "status": 202,
   "content_type": "application/json; charset=utf-8", "body": "<raw body text>"}

For each exchange the request path (query stripped) is matched against the spec's
path templates, the operation is found by method (HEAD is checked as GET with an
empty body; OPTIONS is skipped), and the response by status (exact code, then a
`4XX`/`5XX` range, then `default`, as OpenAPI ranks them). The media type must be
one the response declares, and a JSON body must validate against that media
type's schema (JSON Schema 2020-12, formats asserted). Paths or methods the spec
does not have are accepted only as errors (status >= 400) whose body is a
`Problem`. Prints one `FAIL ...` line per problem and a summary line; with
--require-coverage, every operation of the spec must appear in the log.

Exit status: 0 all good, 1 a contract failure, 2 bad usage or an unreadable spec.
Standard library plus jsonschema (with referencing) and PyYAML only.
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterator

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:ml-gateway:openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_MEDIA_RE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
MAX_ERRORS_PER_EXCHANGE = 10
MAX_MESSAGE = 400


# --- loading -----------------------------------------------------------------


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that leaves timestamps as strings: JSON has no date type, and a
    `date-time` example or enum must stay a string to validate as one."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_spec(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        spec = yaml.load(f, Loader=_SpecLoader)  # noqa: S506 (a SafeLoader subclass)
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        raise ValueError(f"{path}: not an OpenAPI document (no paths)")
    return spec


def _pointer_unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer_escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class Spec:
    """The spec, its path templates, and compiled validators for its schemas."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.registry: Registry = Registry().with_resource(
            SPEC_URI, Resource(contents=doc, specification=DRAFT202012)
        )
        self.format_checker = _format_checker()
        self._validators: dict[str, Draft202012Validator] = {}
        self.templates: list[tuple[str, re.Pattern[str], int]] = []
        for template in doc["paths"]:
            template = str(template)
            # `{param}` is one non-empty segment, or part of one (`{id}.json`).
            pieces = re.split(r"(\{[^{}/]+\})", template)
            rx = "".join(r"[^/]+" if p.startswith("{") else re.escape(p) for p in pieces if p)
            params = sum(1 for p in pieces if p.startswith("{"))
            self.templates.append((template, re.compile(f"^{rx}$"), params))
        # Concrete paths win over templated ones (OpenAPI "Path Templating Matching").
        self.templates.sort(key=lambda t: t[2])

    def deref(self, obj: Any, pointer: str) -> tuple[Any, str]:
        """Follow OpenAPI (non-schema) `$ref`s such as `#/components/responses/X`.

        Returns the object and the JSON pointer where it really lives, so that the
        schemas below it can be validated in place (their own `$ref`s then resolve
        against the whole document)."""
        seen = set()
        while isinstance(obj, dict) and isinstance(obj.get("$ref"), str):
            ref = obj["$ref"]
            if not ref.startswith("#/") or ref in seen:
                raise ValueError(f"cannot resolve $ref {ref!r} (only local refs are supported)")
            seen.add(ref)
            target: Any = self.doc
            for token in ref[2:].split("/"):
                token = _pointer_unescape(token)
                if isinstance(target, list) and token.isdigit() and int(token) < len(target):
                    target = target[int(token)]
                elif isinstance(target, dict) and token in target:
                    target = target[token]
                else:
                    raise ValueError(f"$ref {ref!r} points nowhere")
            obj, pointer = target, ref[1:]
        return obj, pointer

    def match_path(self, path: str) -> str | None:
        for template, rx, _ in self.templates:
            if rx.match(path):
                return template
        return None

    def operations(self) -> Iterator[tuple[str, str]]:
        for template in self.doc["paths"]:
            item, _ = self.deref(self.doc["paths"][template], "")
            for method in HTTP_METHODS:
                if isinstance(item, dict) and isinstance(item.get(method), dict):
                    yield str(template), method.upper()

    def operation(self, template: str, method: str) -> tuple[dict[str, Any] | None, str]:
        """The operation object for (template, method) and its JSON pointer."""
        item, ptr = self.deref(self.doc["paths"][template], f"/paths/{_pointer_escape(template)}")
        op = item.get(method.lower()) if isinstance(item, dict) else None
        if not isinstance(op, dict):
            return None, ""
        return self.deref(op, f"{ptr}/{method.lower()}")

    def validator(self, pointer: str) -> Draft202012Validator:
        """A validator for the schema at JSON pointer `pointer` of the spec.

        The schema is reached through a `$ref` into the registered spec document,
        so the `$ref`s inside it (`#/components/schemas/...`) resolve against the
        whole spec."""
        v = self._validators.get(pointer)
        if v is None:
            v = Draft202012Validator(
                {"$ref": f"{SPEC_URI}#{pointer}"},
                registry=self.registry,
                format_checker=self.format_checker,
            )
            self._validators[pointer] = v
        return v

    def problem_media(self) -> dict[str, str | None]:
        """Media type -> schema pointer for errors on paths and methods the spec lacks."""
        resp = self.doc.get("components", {}).get("responses", {}).get("Problem")
        if isinstance(resp, dict) and isinstance(resp.get("content"), dict):
            out: dict[str, str | None] = {}
            for media, mt in resp["content"].items():
                if isinstance(mt, dict) and "schema" in mt:
                    out[media.lower()] = (
                        f"/components/responses/Problem/content/{_pointer_escape(media)}/schema"
                    )
            if out:
                return out
        if "Problem" in self.doc.get("components", {}).get("schemas", {}):
            return {"application/problem+json": "/components/schemas/Problem"}
        raise ValueError("the spec has no Problem response or schema")


_DATE_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _format_checker() -> FormatChecker:
    """jsonschema's format checker, with an RFC 3339 `date-time` check that needs no
    optional package (jsonschema skips `date-time` without rfc3339-validator)."""
    fc = FormatChecker()

    @fc.checks("date-time", raises=ValueError)
    def _date_time(instance: object) -> bool:
        if not isinstance(instance, str):
            return True
        m = _DATE_TIME_RE.match(instance)
        if m is None:
            return False
        y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
        datetime.datetime(y, mo, d, h, mi, min(s, 59))  # raises on 2025-02-30 and such
        offset = m.group(8)
        if offset not in ("Z", "z") and (int(offset[1:3]) > 23 or int(offset[4:6]) > 59):
            return False
        return s <= 60

    return fc


# --- checking ----------------------------------------------------------------


@dataclass
class Report:
    checked: int = 0
    failed: int = 0
    skipped: int = 0
    lines: list[str] = field(default_factory=list)
    covered: set[tuple[str, str]] = field(default_factory=set)


def _short(msg: str) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= MAX_MESSAGE else msg[: MAX_MESSAGE - 1] + "…"


def _describe(err: ValidationError) -> str:
    leaf = best_match(err.context) if err.context else None
    if leaf is not None:
        return f"{_short(leaf.message)} at {leaf.json_path} (in {err.validator} at {err.json_path})"
    return f"{_short(err.message)} at {err.json_path}"


def _select_response(responses: dict[Any, Any], status: int) -> tuple[str | None, Any]:
    by_key = {str(k).upper(): (str(k), v) for k, v in responses.items()}
    for key in (str(status), f"{status // 100}XX", "DEFAULT"):
        if key in by_key:
            return by_key[key]
    return None, None


def _media_matches(declared: str, actual: str) -> bool:
    d_type, _, d_sub = declared.partition("/")
    a_type, _, a_sub = actual.partition("/")
    return (d_type in ("*", a_type)) and (d_sub in ("*", a_sub))


def _check_body(
    spec: Spec,
    media_pointers: dict[str, str | None],
    content_type: str,
    body: str,
) -> list[str]:
    """Problems with (content type, body) given the declared media types."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return [f"no Content-Type; expected one of {sorted(media_pointers)}"]
    pointer = None
    for declared, ptr in media_pointers.items():
        if declared == media:
            pointer = ptr
            break
    else:
        wild = [ptr for declared, ptr in media_pointers.items() if _media_matches(declared, media)]
        if not wild:
            return [f"content type {media!r} not declared; expected one of {sorted(media_pointers)}"]
        pointer = wild[0]
    if JSON_MEDIA_RE.match(media):
        try:
            instance = json.loads(body)
        except ValueError as e:
            return [f"{media} body is not JSON: {e}: {_short(body[:80])!r}"]
    elif media.startswith("text/"):
        instance = body
    else:
        return []  # binary or otherwise opaque: the media type is all we can check
    if pointer is None:
        return []
    errors = sorted(spec.validator(pointer).iter_errors(instance), key=lambda e: list(e.path))
    out = [_describe(e) for e in errors[:MAX_ERRORS_PER_EXCHANGE]]
    if len(errors) > MAX_ERRORS_PER_EXCHANGE:
        out.append(f"… and {len(errors) - MAX_ERRORS_PER_EXCHANGE} more schema errors")
    return out


def check_exchange(spec: Spec, rec: dict[str, Any], report: Report) -> list[str]:
    """Problems with one recorded exchange (empty: it conforms)."""
    method = str(rec["method"]).upper()
    status = rec["status"]
    content_type = rec.get("content_type") or ""
    body = rec.get("body") or ""
    path = str(rec["path"]).split("?", 1)[0].split("#", 1)[0]
    bodiless = method == "HEAD" or status in (204, 304)

    template = spec.match_path(path)
    op, op_ptr = (None, "")
    if template is not None:
        op, op_ptr = spec.operation(template, "GET" if method == "HEAD" else method)
    if op is None:
        where = "path" if template is None else f"method {method} on {template}"
        if status < 400:
            return [f"{where} not in the spec, yet status {status}"]
        if bodiless:
            return [] if body == "" else [f"{len(body)}-byte body on a {method} {status} answer"]
        return _check_body(spec, spec.problem_media(), content_type, body)

    if method != "HEAD":
        report.covered.add((template, method))
    responses = op.get("responses") or {}
    key, response = _select_response(responses, status)
    if key is None:
        declared = ", ".join(str(k) for k in responses)
        return [f"status {status} not declared for {method} {template} (declared: {declared})"]
    response, resp_ptr = spec.deref(response, f"{op_ptr}/responses/{_pointer_escape(key)}")

    if bodiless:
        return [] if body == "" else [f"{len(body)}-byte body on a {method} {status} answer"]
    content = response.get("content") if isinstance(response, dict) else None
    if not content:
        if body == "":
            return []
        return [f"response {key} of {method} {template} declares no content, yet the body "
                f"has {len(body)} bytes"]
    media_pointers: dict[str, str | None] = {}
    for media, mt in content.items():
        mt, mt_ptr = spec.deref(mt, f"{resp_ptr}/content/{_pointer_escape(str(media))}")
        has_schema = isinstance(mt, dict) and "schema" in mt
        media_pointers[str(media).lower()] = f"{mt_ptr}/schema" if has_schema else None
    return _check_body(spec, media_pointers, content_type, body)


def _read_records(path: str, report: Report) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                report.failed += 1
                report.lines.append(f"FAIL {path}:{lineno}: not a JSON object: {e}")
                continue
            problems = []
            if not isinstance(rec, dict):
                problems.append("not a JSON object")
            else:
                if not isinstance(rec.get("method"), str) or not rec["method"]:
                    problems.append("no method")
                if not isinstance(rec.get("path"), str) or not rec["path"].startswith("/"):
                    problems.append("no path")
                if not isinstance(rec.get("status"), int) or isinstance(rec.get("status"), bool):
                    problems.append("no integer status")
                for k in ("content_type", "body"):
                    if rec.get(k) is not None and not isinstance(rec.get(k), str):
                        problems.append(f"{k} is not a string")
            if problems:
                report.failed += 1
                report.lines.append(f"FAIL {path}:{lineno}: bad record: {', '.join(problems)}")
                continue
            yield lineno, rec


def run(spec_path: str, log_path: str, require_coverage: bool) -> tuple[int, list[str]]:
    spec = Spec(load_spec(spec_path))
    report = Report()
    seen_any = False
    try:
        for lineno, rec in _read_records(log_path, report):
            seen_any = True
            method = rec["method"].upper()
            if method == "OPTIONS":
                report.skipped += 1
                continue
            report.checked += 1
            problems = check_exchange(spec, rec, report)
            if problems:
                report.failed += 1
                for p in problems:
                    report.lines.append(f"FAIL {method} {rec['path']} {rec['status']}: {p} "
                                        f"[line {lineno}]")
    except FileNotFoundError:
        report.lines.append(f"FAIL no exchanges recorded: {log_path} does not exist")
        report.failed += 1
    except OSError as e:
        report.lines.append(f"FAIL {log_path}: {e}")
        report.failed += 1
    if not seen_any and report.failed == 0:
        report.lines.append(f"FAIL no exchanges recorded: {log_path} is empty")
        report.failed += 1

    uncovered: list[tuple[str, str]] = []
    if require_coverage:
        uncovered = [op for op in spec.operations()
                     if op not in report.covered and op[1] not in ("OPTIONS", "HEAD")]
        for template, method in uncovered:
            report.lines.append(f"FAIL not covered: {method} {template} has no recorded exchange")

    summary = f"contract: {report.checked} checked, {report.failed} failed"
    if report.skipped:
        summary += f", {report.skipped} skipped (OPTIONS)"
    if require_coverage:
        total = sum(1 for op in spec.operations() if op[1] not in ("OPTIONS", "HEAD"))
        summary += f"; coverage: {total - len(uncovered)}/{total} operations"
    report.lines.append(summary)
    return (1 if report.failed or uncovered else 0), report.lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Check recorded HTTP exchanges (JSON lines) against an OpenAPI 3.1 spec.")
    ap.add_argument("openapi", metavar="OPENAPI_YAML")
    ap.add_argument("log", metavar="LOG_JSONL")
    ap.add_argument("--require-coverage", action="store_true",
                    help="fail when an operation of the spec has no recorded exchange")
    args = ap.parse_args(argv)
    try:
        rc, lines = run(args.openapi, args.log, args.require_coverage)
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"check_contract: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return rc


if __name__ == "__main__":
    sys.exit(main())
