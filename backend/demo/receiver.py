"""The wallet's own webhook endpoint: a small HTTP server that keeps every event whose
`Credagg-Signature` verifies with the wallet's secret (the docs/webhooks.md recipe, written
here independently of the sending code, so a wrong signature would be caught)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 300


def signature_valid(secret: str, header: str, body: bytes, *, now: float) -> bool:
    """`t=<unix>,v1=<hex>[,v1=...]`: any v1 equal to HMAC-SHA256(secret, "<t>." + body)."""
    timestamp, candidates = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


@dataclass
class WalletInbox:
    """What arrived: verified events, and how many requests failed verification."""

    secret: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, body: bytes, header: str) -> bool:
        with self.lock:
            ok = self.secret is not None and signature_valid(
                self.secret, header, body, now=time.time()
            )
            if ok:
                self.events.append(json.loads(body))
            else:
                self.rejected += 1
            return ok

    def wait_for(self, event_type: str, *, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [e for e in self.events if e.get("type") == event_type]
            if found:
                return found[0]
            time.sleep(0.3)
        return None


class WalletReceiver:
    """Serves on 127.0.0.1 (any free port) in a daemon thread until `close()`."""

    def __init__(self) -> None:
        self.inbox = WalletInbox()
        inbox = self.inbox

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = inbox.take(body, self.headers.get("Credagg-Signature", ""))
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/wallet-hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
