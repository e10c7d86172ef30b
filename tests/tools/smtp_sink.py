#!/usr/bin/env python3
"""A real SMTP server on loopback for the mail tests (aiosmtpd).

Binds 127.0.0.1 on a free port (or --port), writes the port to --port-file once it is
listening (atomically: a reader never sees a partial number), and stores every
accepted message in --maildir as N.eml (the raw bytes of DATA, after the
server has removed dot-stuffing) beside N.json (envelope sender, recipients,
whether the session used TLS and who authenticated). The .json is written
first and the .eml renamed into place last, and both before the 250 reply to
DATA, so a client that got its 250 can read the message at once.

Options make it behave like the relays the gateway meets:
  --starttls CERT KEY   offer STARTTLS with this certificate chain and key
  --require-starttls    refuse everything but EHLO/STARTTLS/QUIT before TLS
  --implicit-tls CERT KEY
                        speak TLS from the first byte (smtps) instead
  --auth USER:PASS      require AUTH (PLAIN or LOGIN) with these credentials
                        (over TLS only when --starttls is given)
  --reject-rcpt ADDR    answer 550 to RCPT TO for this address
  --tempfail N          answer 451 at the end of DATA for the first N
                        transactions (nothing is stored for them)

It runs until killed (SIGTERM or SIGINT end it cleanly).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import warnings
from typing import Any, Callable

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class Sink:
    """aiosmtpd handler: refuses what it was told to refuse, stores the rest."""

    def __init__(self, maildir: str, reject_rcpt: str | None, tempfail: int) -> None:
        self.maildir = maildir
        self.reject_rcpt = reject_rcpt.lower() if reject_rcpt else None
        self.tempfail_left = tempfail
        self.count = 0

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.reject_rcpt is not None and address.lower() == self.reject_rcpt:
            return f"550 5.1.1 <{address}>: recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.tempfail_left > 0:
            self.tempfail_left -= 1
            return "451 4.3.0 temporary failure, try again later"
        self.count += 1
        base = os.path.join(self.maildir, f"{self.count:04d}")
        raw = envelope.original_content if envelope.original_content is not None else b""
        auth = session.auth_data
        transport = server.transport
        meta: dict[str, Any] = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": transport is not None and transport.get_extra_info("ssl_object") is not None,
            "authenticated_as": auth.login.decode("utf-8", "replace")
            if isinstance(auth, LoginPassword)
            else None,
        }
        _write_atomic(base + ".json", json.dumps(meta).encode("utf-8"))
        _write_atomic(base + ".eml", raw)
        return "250 OK: stored"


def _write_atomic(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _server_context(cert_key: list[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_key[0], cert_key[1])
    return ctx


def _authenticator(user: str, password: str) -> Callable[..., AuthResult]:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode("utf-8")
            and auth_data.password == password.encode("utf-8")
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0, help="bind this port (0: a free one)")
    p.add_argument("--maildir", required=True)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--reject-rcpt", metavar="ADDR")
    p.add_argument("--tempfail", type=int, default=0, metavar="N")
    a = p.parse_args(argv)
    if a.require_starttls and not a.starttls:
        p.error("--require-starttls needs --starttls CERT KEY")
    if a.implicit_tls and a.starttls:
        p.error("--implicit-tls and --starttls exclude each other")
    if a.auth is not None and ":" not in a.auth:
        p.error("--auth takes USER:PASS")

    # Without --starttls, --auth takes passwords in clear on purpose.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="smtp_sink %(levelname)s %(name)s: %(message)s",
    )
    os.makedirs(a.maildir, exist_ok=True)

    tls_context = _server_context(a.starttls) if a.starttls else None
    wrap_context = _server_context(a.implicit_tls) if a.implicit_tls else None

    smtp_kwargs: dict[str, Any] = {
        "hostname": "smtp-sink.test",
        "decode_data": False,
        "tls_context": tls_context,
        "require_starttls": a.require_starttls,
        # Real relays only take passwords over TLS; without --starttls the
        # sink has no STARTTLS to offer, so it takes them as they come (in
        # clear, or inside implicit TLS, which aiosmtpd does not count).
        "auth_require_tls": tls_context is not None,
    }
    if a.auth is not None:
        user, password = a.auth.split(":", 1)
        smtp_kwargs["auth_required"] = True
        smtp_kwargs["authenticator"] = _authenticator(user, password)

    handler = Sink(a.maildir, a.reject_rcpt, a.tempfail)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, loop=loop, **smtp_kwargs),
            host="127.0.0.1",
            port=a.port,
            ssl=wrap_context,
        )
    )
    port = server.sockets[0].getsockname()[1]
    _write_atomic(a.port_file, f"{port}\n".encode("ascii"))

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
