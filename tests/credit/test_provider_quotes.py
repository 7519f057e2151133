"""Lenders that answer the webhook 202 and post their quote or decline later
(`POST /v1/provider/quotes`), with real lender processes (`scripts/example_lender.py
--answer-later`) posting to a real credagg server (uvicorn on a local port).

The borrower's calls go through a TestClient on the same app object; the lenders' posts come in
over TCP to uvicorn, concurrently with the borrower's request that waits for them.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.config import Settings
from tests.auth.conftest import bearer, create_provider, sign_in
from tests.backend.conftest import wait_for
from tests.credit.conftest import LenderProcess
from tests.credit.test_credit_requests import REQUEST, outcomes


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve `app` over TCP on a free local port (the lifespan is the TestClient's)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started, timeout=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def add_late_lender(
    client: TestClient,
    config: Settings,
    start_lender: Callable[..., LenderProcess],
    base_url: str,
    tmp_path: Any,
    *args: str,
) -> tuple[int, str, LenderProcess]:
    """A provider whose lender answers 202 and posts with its own key: (id, key, process)."""
    pid, key = create_provider(config)
    key_file = tmp_path / f"key-{pid}"
    key_file.write_text(key)
    lender = start_lender(
        "--answer-later", "--credagg-url", base_url, "--api-key-file", str(key_file), *args
    )
    answer = client.put("/v1/provider/webhook", json={"url": lender.url}, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    lender.secret_file.write_text(answer.json()["secret"])
    return pid, key, lender


def posted(lender: LenderProcess) -> list[int]:
    stats: dict[str, Any] = lender.stats()
    return list(stats["posted"])


def test_posted_quote_is_ranked_posted_decline_listed_late_and_second_answers_refused(
    credit_settings: Settings,
    market: Any,
    start_lender: Callable[..., LenderProcess],
    tmp_path: Any,
) -> None:
    app = create_app(credit_settings)
    with TestClient(app) as client, serving(app) as base_url:
        quoting_id, quoting_key, quoting = add_late_lender(
            client, credit_settings, start_lender, base_url, tmp_path, "--apr", "0.0800"
        )
        declining_id, _, declining = add_late_lender(
            client, credit_settings, start_lender, base_url, tmp_path, "--decline", "too risky"
        )
        late_id, _, late = add_late_lender(
            client, credit_settings, start_lender, base_url, tmp_path, "--delay", "4"
        )
        token = sign_in(client, market.borrower)
        answer = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token))
        assert answer.status_code == 201, answer.text
        body = answer.json()

        # the posted quote is normalised and ranked like an inline one
        quotes = {q["provider_id"]: q for q in body["quotes"]}
        assert quotes[quoting_id]["quote"]["nominal_apr"] == "0.08"
        assert quotes[quoting_id]["rank"] is not None
        assert posted(quoting) == [201]
        # the posted decline is listed with its reason; the one that never posted timed out
        assert outcomes(body)[declining_id] == "declined"
        reasons = {row["provider_id"]: row["reason"] for row in body["not_quoted"]}
        assert reasons[declining_id] == "too risky"
        assert posted(declining) == [201]
        assert outcomes(body)[late_id] == "timed_out"

        # the lender that posts after the deadline is told so
        assert wait_for(lambda: posted(late) != [], timeout=30)
        assert posted(late) == [409]

        # a second answer to the same request is refused
        again = client.post(
            "/v1/provider/quotes",
            json={"credit_request_id": body["id"], "decline": {"reason": "changed my mind"}},
            headers=bearer(quoting_key),
        )
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "already_answered"

        # another provider (never sent this request) cannot answer it: 404, as for any unknown id
        _, other_key = create_provider(credit_settings)
        for request_id in (body["id"], "not-a-request"):
            foreign = client.post(
                "/v1/provider/quotes",
                json={"credit_request_id": request_id, "decline": {"reason": "x"}},
                headers=bearer(other_key),
            )
            assert foreign.status_code == 404, foreign.text
            assert foreign.json()["error"] == "credit_request_not_found"


def test_post_after_the_deadline_names_it(
    credit_settings: Settings,
    market: Any,
    start_lender: Callable[..., LenderProcess],
    tmp_path: Any,
) -> None:
    app = create_app(credit_settings)
    with TestClient(app) as client, serving(app) as base_url:
        lender_id, key, _lender = add_late_lender(
            client, credit_settings, start_lender, base_url, tmp_path, "--delay", "60"
        )
        token = sign_in(client, market.borrower)
        body = client.post("/v1/credit-requests", json=REQUEST, headers=bearer(token)).json()
        assert outcomes(body)[lender_id] == "timed_out"
        late = client.post(
            "/v1/provider/quotes",
            json={
                "credit_request_id": body["id"],
                "quote": {"apr": "0.05", "origination_fee": 0, "address": "0x" + "22" * 20},
            },
            headers=bearer(key),
        )
        assert late.status_code == 409, late.text
        assert late.json()["error"] == "deadline_passed"
        assert late.json()["hint"]


def test_answers_are_validated_like_inline_ones(
    credit_settings: Settings, start_lender: Callable[..., LenderProcess]
) -> None:
    with TestClient(create_app(credit_settings)) as client:
        _, key = create_provider(credit_settings)
        bad_bodies: list[dict[str, Any]] = [
            {"credit_request_id": "r"},  # neither quote nor decline
            {
                "credit_request_id": "r",
                "quote": {"apr": "0.1", "address": "0x" + "22" * 20},
                "decline": {"reason": "both"},
            },
            {"credit_request_id": "r", "quote": {"apr": "11", "address": "0x" + "22" * 20}},
            {"credit_request_id": "r", "quote": {"apr": "0.1", "address": "nope"}},
            {"credit_request_id": "r", "quote": {"apr": "0.1"}},
            {"credit_request_id": "r", "decline": {"reason": ""}},
        ]
        for bad in bad_bodies:
            answer = client.post("/v1/provider/quotes", json=bad, headers=bearer(key))
            assert answer.status_code == 422, (bad, answer.text)
        anonymous = client.post(
            "/v1/provider/quotes", json={"credit_request_id": "r", "decline": {"reason": "x"}}
        )
        assert anonymous.status_code == 401
