"""A credit request that finds its worker's full lane taken is answered `Connection: close`,
so its client reconnects and the next accept can land on a less busy worker process.

Real HTTP end to end: the app under uvicorn on a local port, a real lender process that takes
1 s to quote, three borrowers posting at the same moment over their own keep-alive clients,
one full-lane place. Whoever takes the free place keeps its connection; the two that find it
taken are told to close, and uvicorn really does close them: their borrowers' next request
opens a new connection (httpx's public `trace` extension), the other's reuses its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
from eth_account import Account
from fastapi.testclient import TestClient

from backend.app import create_app
from tests.auth.conftest import bearer, sign_in
from tests.credit.conftest import LenderProcess
from tests.credit.test_credit_requests import REQUEST, add_lender
from tests.credit.test_overload import _settings
from tests.credit.test_provider_quotes import serving

USDC_REQUEST = {**REQUEST, "amount": str(5_000 * 10**6)}


def test_requests_that_find_the_full_lane_taken_are_told_to_reconnect(
    tmp_path: Path,
    backend_database_url: str,
    start_lender: Callable[..., LenderProcess],
) -> None:
    config = _settings(
        tmp_path, backend_database_url, credit_max_in_flight=1, credit_fanout_deadline=5.0
    )
    app = create_app(config)
    with TestClient(app) as client:
        tokens = [sign_in(client, Account.create()) for _ in range(3)]
        add_lender(client, config, start_lender("--delay", "1.0"))
        with serving(app) as base:
            start = threading.Barrier(3)
            # (answer, whether the borrower's next request had to open a new connection),
            # one tuple per borrower so the pairs cannot interleave across threads
            seen: list[tuple[httpx.Response, bool]] = []

            def borrow(token: str) -> None:
                with httpx.Client(base_url=base, timeout=30) as borrower:
                    borrower.get("/healthz")  # the keep-alive connection, opened beforehand
                    start.wait()
                    answer = borrower.post(
                        "/v1/credit-requests", json=USDC_REQUEST, headers=bearer(token)
                    )
                    connects: list[str] = []

                    def trace(event: str, _info: object) -> None:
                        if event.startswith("connection.connect_tcp.started"):
                            connects.append(event)

                    borrower.get("/healthz", extensions={"trace": trace})
                    seen.append((answer, bool(connects)))

            threads = [threading.Thread(target=borrow, args=(t,)) for t in tokens]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)

    answers = [answer for answer, _ in seen]
    assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
    closing = [a.headers.get("connection", "").lower() == "close" for a in answers]
    assert sorted(closing) == [False, True, True]  # one took the free place, two found it taken
    reconnected = [again for _, again in seen]
    assert reconnected == closing  # the server closed exactly those connections
