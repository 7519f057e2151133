#!/usr/bin/env python3
"""A small, real HTTP lender for credagg's quote requests (tests, demo, a lender's template).

It verifies credagg's webhook signature exactly as the providers' documentation says, with the
standard library only (no credagg import, so it is an independent implementation):

    header  Credagg-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]
    check   any v1 == hex(HMAC-SHA256(secret, "<t>." + raw body)), compared in constant time,
            and |now - t| <= 300 s

and answers `credit_request.quote_requested` inline with a quote at its configured APR, or a
decline. Options make it misbehave on purpose: `--delay` (answer late), `--fail` (HTTP 500),
`--decline REASON`. `GET /stats` tells how many quote requests arrived (and how many had a
valid signature), which is how tests check that a request was, or was not, sent.

`--answer-later` answers the webhook 202 Accepted at once and then (after `--delay`) posts the
quote or decline to credagg's `POST /v1/provider/quotes` with the provider API key read from
`--api-key-file`; `/stats` then also lists the HTTP status of each of those posts.

    python scripts/example_lender.py --port 0 --secret-file /tmp/secret --apr 0.11
    -> prints "listening on <port>" once ready.

The secret is read from `--secret-file` at every request (credagg shows it once when the
webhook is set; write it there), so the lender can start before its secret exists.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOLERANCE_SECONDS = 300


def verify(secret: str, header: str, body: bytes, *, now: float) -> bool:
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


class Lender:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.received = 0
        self.verified = 0
        self.posted: list[int] = []

    def secret(self) -> str | None:
        path = Path(self.args.secret_file)
        return path.read_text().strip() if path.exists() else None

    def answer(self, header: str, body: bytes) -> tuple[int, dict[str, Any]]:
        secret = self.secret()
        ok = secret is not None and verify(secret, header, body, now=time.time())
        with self.lock:
            self.received += 1
            self.verified += int(ok)
        if not ok:
            return 401, {"error": "bad signature"}
        if self.args.answer_later:
            event = json.loads(body)
            if event.get("type") == "credit_request.quote_requested":
                threading.Thread(target=self.post_later, args=(event,), daemon=True).start()
            return 202, {"accepted": True}
        if self.args.delay:
            time.sleep(self.args.delay)
        if self.args.fail:
            return 500, {"error": "lender is failing on purpose"}
        event = json.loads(body)
        if event.get("type") != "credit_request.quote_requested":
            return 200, {"ok": True}
        return 200, self.decide(event)

    def decide(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.args.decline:
            return {"decision": "decline", "reason": self.args.decline}
        amount = int(event["data"]["amount"])
        fee = amount * self.args.fee_bps // 10_000
        return {
            "decision": "quote",
            "apr": self.args.apr,
            "origination_fee": fee,
            "address": self.args.address,
        }

    def post_later(self, event: dict[str, Any]) -> None:
        """Post the answer to credagg, authenticated with the provider's API key."""
        if self.args.delay:
            time.sleep(self.args.delay)
        answer = self.decide(event)
        decision = answer.pop("decision")
        payload = {"credit_request_id": event["data"]["request_id"], decision: answer}
        key = Path(self.args.api_key_file).read_text().strip()
        request = urllib.request.Request(
            self.args.credagg_url.rstrip("/") + "/v1/provider/quotes",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        with self.lock:
            self.posted.append(status)


def make_handler(lender: Lender) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/stats":
                with lender.lock:
                    self._send(
                        200,
                        {
                            "received": lender.received,
                            "verified": lender.verified,
                            "posted": list(lender.posted),
                        },
                    )
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = lender.answer(self.headers.get("Credagg-Signature", ""), body)
            # credagg may have given up waiting (its timeout): then there is no one to answer.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send(status, payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--apr", default="0.10", help='yearly fraction string, e.g. "0.10"')
    parser.add_argument("--fee-bps", type=int, default=0, help="origination fee, bps of amount")
    parser.add_argument("--address", default="0x" + "11" * 20, help="lender's on-chain address")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering")
    parser.add_argument("--fail", action="store_true", help="answer HTTP 500")
    parser.add_argument("--decline", default=None, help="decline with this reason")
    parser.add_argument(
        "--answer-later", action="store_true", help="answer 202, then POST /v1/provider/quotes"
    )
    parser.add_argument("--credagg-url", default="http://127.0.0.1:8000", help="credagg base URL")
    parser.add_argument("--api-key-file", default=None, help="file holding the provider API key")
    args = parser.parse_args(argv)
    if args.answer_later and not args.api_key_file:
        parser.error("--answer-later needs --api-key-file")
    server = ThreadingHTTPServer((args.host, args.port), make_handler(Lender(args)))
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
