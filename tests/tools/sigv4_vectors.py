#!/usr/bin/env python3
"""sigv4_vectors.py N SEED OUT.jsonl — random SigV4 requests signed by botocore.

Writes N JSON lines (OUT "-" is stdout), each a random request and what
botocore makes of it, for tests/unit/aws/test_sigv4_botocore.c to check
that aws/sigv4.c agrees. Requests have random methods; paths with reserved
characters, spaces, UTF-8, ".", ".." and "//" segments; queries with
repeated, unsorted and value-less keys, empty values and characters that
need encoding; extra headers in mixed case, repeated, with inner white
space; random bodies; a session token or none; and services batch, sns,
logs (SigV4Auth: the path is normalised and encoded again) and s3
(S3SigV4Auth: the path is signed as sent), each at a fixed random time.
Every s3 line also has a presigned URL from S3SigV4QueryAuth.

botocore signs the URL it is given, so the path and query written out are
read back from the prepared request: both signers see the same bytes. Queries
are written the way botocore serialises them (percent_encode, so every byte
outside the unreserved set is %XX in upper case): botocore signs a URL's
query as it stands, sorted, where SigV4 (and aws/sigv4.c) decode and
re-encode each key and value, and the two agree on that form.

Line fields: i, service, region, s3, method, path, query, headers ([name,
value] in order, as signed), body_hex, access_key, secret_key, token ("" for
none), amz_date, unix, authorization; for s3 also presign: {method,
scheme_host, host, path, query, expires, url}.
"""
from __future__ import annotations

import datetime
import json
import random
import sys
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import botocore.auth
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

SERVICES = ("batch", "sns", "logs", "s3")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1")
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")
# Headers botocore leaves unsigned, or sets itself: never generated.
RESERVED_HEADERS = set(botocore.auth.SIGNED_HEADERS_BLACKLIST) | {
    "authorization", "date", "x-amz-date", "x-amz-security-token",
    "x-amz-content-sha256", "content-md5", "host",
}
HEADER_NAMES = (
    "Content-Type", "X-Amz-Target", "X-Custom-Thing", "My-Header1", "x-mixed-CASE",
    "Accept", "X-Amz-Meta-Owner", "Content-Encoding", "Cache-Control", "X-Amz-Acl",
    "If-Match", "X-Request-Id",
)
# Raw characters for path segments and query keys and values.
PLAIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SPECIAL = " !\"#$%&'()*+,/:;<=>?@[\\]^`{|}~-._"
UNICODE = ("é", "ü", "ß", "ሴ", "日本", "€", "😀", "Ω")
# Sub-delimiters a client may leave raw in a path segment (RFC 3986 pchar).
PATH_SAFE_CHOICES = ("", "~", "!$&'()*+,;=:@", "$:@", "-._~")
HOSTS = (
    "https://{service}.{region}.amazonaws.com",
    "http://127.0.0.1:4566",
    "http://localhost:9000",
    "https://Mixed.Case.Example.COM:8443",
    "https://{service}.{region}.amazonaws.com:443",
)


def raw_text(rng: random.Random, max_len: int) -> str:
    n = rng.randint(1, max_len)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.6:
            out.append(rng.choice(PLAIN))
        elif r < 0.9:
            out.append(rng.choice(SPECIAL))
        else:
            out.append(rng.choice(UNICODE))
    return "".join(out)


def path_segment(rng: random.Random, s3: bool) -> str:
    r = rng.random()
    if r < 0.25:
        return rng.choice(("v1", "jobs", "submitjob", "topics", "bucket", "key.txt", "a", "B"))
    if r < 0.33:
        return "."
    if r < 0.41:
        return ".."
    if r < 0.49:
        return ""  # "//"
    if r < 0.55:
        # Raw space or UTF-8 left in the wire path, as the AWS suite does.
        return rng.choice(("example space", "ሴ", "caf\u00e9", "a b c"))
    raw = raw_text(rng, 12)
    if s3:
        # What botocore's serializer does with an S3 key: '/' and '~' stay.
        return quote(raw, safe=rng.choice(("/~", "~", "/")))
    return quote(raw, safe=rng.choice(PATH_SAFE_CHOICES))


def wire_path(rng: random.Random, s3: bool) -> str:
    segs = [path_segment(rng, s3) for _ in range(rng.randint(0, 6))]
    path = "/" + "/".join(segs)
    if rng.random() < 0.2 and not path.endswith("/"):
        path += "/"
    return path


def wire_query(rng: random.Random) -> str:
    keys = ["Action", "Version", "a", "b", "list-type", "prefix", "max-keys", "Param1"]
    keys += [raw_text(rng, 8) for _ in range(3)]
    pairs = []
    for _ in range(rng.randint(0, 8)):
        key = rng.choice(keys)
        r = rng.random()
        if r < 0.15:
            value = None  # "key" without '='
        elif r < 0.3:
            value = ""  # "key="
        else:
            value = raw_text(rng, 16)
        pairs.append((key, value))
        if rng.random() < 0.15:  # the same key again
            pairs.append((key, raw_text(rng, 4)))
    if rng.random() < 0.03:
        pairs.append(("", "empty-key"))
    rng.shuffle(pairs)
    out = []
    for key, value in pairs:
        k = percent_encode(key)
        out.append(k if value is None else f"{k}={percent_encode(value)}")
    return "&".join(out)


def random_case(rng: random.Random, name: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


def header_value(rng: random.Random) -> str:
    words = [rng.choice(("value", "a", "b", "\"x   y\"", "text/plain", "1,2", "v=1;q=0.5", "*"))
             for _ in range(rng.randint(1, 4))]
    out = ""
    for i, w in enumerate(words):
        if i > 0:
            out += rng.choice((" ", "  ", "   ", "\t", " \t "))
        out += w
    return rng.choice(("", " ", "  ", "\t")) + out + rng.choice(("", " ", "   ", "\t"))


def extra_headers(rng: random.Random) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for _ in range(rng.randint(0, 6)):
        name = rng.choice(HEADER_NAMES)
        assert name.lower() not in RESERVED_HEADERS
        out.append((random_case(rng, name), header_value(rng)))
        if rng.random() < 0.2:  # repeated, possibly in another case
            out.append((random_case(rng, name), header_value(rng)))
    if rng.random() < 0.05:
        out.append(("X-Empty", rng.choice(("", "   "))))
    return out


def credentials(rng: random.Random) -> Credentials:
    akid = "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    b64 = PLAIN + "+/"
    secret = "".join(rng.choice(b64) for _ in range(40))
    token = None
    if rng.random() < 0.5:
        token = "".join(rng.choice(b64) for _ in range(rng.randint(16, 400)))
        token += "=" * rng.randint(0, 2)
    return Credentials(akid, secret, token)


def at_fixed_time(ts: datetime.datetime) -> None:
    """Makes botocore's signers see ts as the current time."""
    def fixed(remove_tzinfo: bool = True) -> datetime.datetime:
        return ts if remove_tzinfo else ts.replace(tzinfo=datetime.timezone.utc)
    botocore.auth.get_current_datetime = fixed  # type: ignore[assignment]


def one(rng: random.Random, i: int) -> dict[str, Any]:
    service = rng.choice(SERVICES)
    s3 = service == "s3"
    region = rng.choice(REGIONS)
    method = rng.choice(METHODS)
    base = rng.choice(HOSTS).format(service=service, region=region)
    path = wire_path(rng, s3)
    query = wire_query(rng)
    url = base + path + ("?" + query if query else "")
    creds = credentials(rng)
    unix = rng.randint(1420070400, 2082758399)  # 2015 .. 2035
    ts = datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).replace(tzinfo=None)
    at_fixed_time(ts)
    body = rng.randbytes(rng.choice((0, 0, 1, 17, 1024, rng.randint(0, 4096))))

    req = AWSRequest(method=method, url=url, data=body)
    headers = extra_headers(rng)
    if rng.random() < 0.3:  # an explicit Host header instead of the URL's
        headers.insert(rng.randint(0, len(headers)),
                       (random_case(rng, "host"), botocore.auth._host_from_url(url)))
    for name, value in headers:
        req.headers[name] = value  # appends: repeated names are kept
    signer = (S3SigV4Auth if s3 else SigV4Auth)(creds, service, region)
    signer.add_auth(req)

    prepared = req.prepare()
    assert prepared.url == req.url, (prepared.url, req.url)
    parts = urlsplit(prepared.url)
    signed = [(n, v) for n, v in req.headers.items()
              if n.lower() != "authorization"
              and n.lower() not in botocore.auth.SIGNED_HEADERS_BLACKLIST]
    if not any(n.lower() == "host" for n, _ in signed):
        signed.append(("host", botocore.auth._host_from_url(req.url)))
    line: dict[str, Any] = {
        "i": i, "service": service, "region": region, "s3": s3, "method": method,
        "path": parts.path, "query": parts.query,
        "headers": [[n, v] for n, v in signed],
        "body_hex": body.hex(),
        "access_key": creds.access_key, "secret_key": creds.secret_key,
        "token": creds.token or "",
        "amz_date": ts.strftime("%Y%m%dT%H%M%SZ"), "unix": unix,
        "authorization": req.headers["Authorization"],
    }
    if s3:
        line["presign"] = presign(rng, method, url, creds, region, ts)
    return line


def presign(rng: random.Random, method: str, url: str, creds: Credentials, region: str,
            ts: datetime.datetime) -> dict[str, Any]:
    expires = rng.choice((1, 60, 900, 3600, 86400, 604800, rng.randint(1, 604800)))
    at_fixed_time(ts)
    req = AWSRequest(method=method, url=url)
    S3SigV4QueryAuth(creds, "s3", region, expires=expires).add_auth(req)
    signed_url = req.prepare().url
    parts = urlsplit(signed_url)
    # botocore rewrites the query: the caller's parameters (parsed, first
    # value of each key, re-encoded), then the X-Amz-* ones. The C side gets
    # the former back and must produce the whole URL.
    q = parts.query
    cut = 0 if q.startswith("X-Amz-Algorithm=") else q.index("&X-Amz-Algorithm=")
    return {
        "method": method,
        "scheme_host": f"{parts.scheme}://{parts.netloc}",
        "host": botocore.auth._host_from_url(signed_url),
        "path": parts.path,
        "query": q[:cut],
        "expires": expires,
        "url": signed_url,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: sigv4_vectors.py N SEED OUT.jsonl (OUT '-': stdout)", file=sys.stderr)
        return 2
    n, seed, out_path = int(argv[1]), int(argv[2]), argv[3]
    rng = random.Random(seed)
    out: TextIO
    out = sys.stdout if out_path == "-" else open(out_path, "w", encoding="utf-8")
    try:
        for i in range(n):
            out.write(json.dumps(one(rng, i), ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
