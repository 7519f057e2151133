"""A lender's or a wallet's webhook endpoint for tests, and the `receiver` fixture.

`Receiver` is a small `http.server` on 127.0.0.1 in a thread that checks every request with the
copyable verifier (`backend.providers.webhooks.signing.verify_signature`), answers 400 to a bad
signature, and can be told to fail the next N requests (500) or to answer slowly. `serving`
runs one for as long as a `with` block; the fixture is one receiver at `/hooks`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from backend.providers.webhooks.signing import (
    SIGNATURE_HEADER,
    WebhookVerificationError,
    verify_signature,
)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified_timestamp: int | None
    error: str | None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A lender's webhook endpoint. Configure `secrets`, `fail_next`, `delay`, `clock`."""

    secrets: list[str] = field(default_factory=list)
    fail_next: int = 0
    delay: float = 0.0
    clock: Callable[[], int] | None = None  # unix seconds for the tolerance check
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, body: bytes, header: str) -> tuple[int | None, str | None]:
        now = self.clock() if self.clock else None
        errors: list[str] = []
        for secret in self.secrets:
            try:
                return verify_signature(body, header, secret, now=now), None
            except WebhookVerificationError as exc:
                errors.append(str(exc))
        return None, "; ".join(errors) or "no secret configured"

    def verified(self) -> list[Received]:
        return [r for r in self.received if r.error is None]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            timestamp, error = receiver.verify(body, self.headers.get(SIGNATURE_HEADER, ""))
            with receiver.lock:
                receiver.received.append(Received(dict(self.headers), body, timestamp, error))
                failing = error is None and receiver.fail_next > 0
                if failing:
                    receiver.fail_next -= 1
            if receiver.delay:
                time.sleep(receiver.delay)
            status = 400 if error else (500 if failing else 200)
            payload = json.dumps({"error": error} if error else {"ok": not failing}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def serving(receiver: Receiver, path: str = "/hooks") -> Iterator[Receiver]:
    """Serve `receiver` on a free port until the block ends; its `url` ends with `path`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving(Receiver()) as state:
        yield state
