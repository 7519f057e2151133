"""Request ids, JSON log lines and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.config import Settings
from backend.observability.context import get_request_id
from backend.observability.logs import JsonFormatter

from .conftest import JsonLogs


def test_request_id_is_propagated_and_logged(app: FastAPI, json_logs: JsonLogs) -> None:
    seen: dict[str, str | None] = {}

    @app.get("/test/work")
    def work() -> dict[str, str]:
        seen["inside"] = get_request_id()
        logging.getLogger("credagg.test").info("doing work", extra={"loan_id": 7})
        return {"ok": "yes"}

    with TestClient(app) as client:
        response = client.get("/test/work", headers={"X-Request-ID": "req-abc.123"})
    assert response.headers["X-Request-ID"] == "req-abc.123"
    assert seen["inside"] == "req-abc.123"

    [line] = [raw for raw in json_logs.lines() if '"credagg.test"' in raw]
    record = json.loads(line)  # one JSON object per line
    assert record["msg"] == "doing work"
    assert record["request_id"] == "req-abc.123"
    assert record["loan_id"] == 7
    assert record["level"] == "INFO"
    assert {"ts", "level", "logger", "msg", "request_id"} <= record.keys()

    [access] = json_logs.find(logger="credagg.access", path="/test/work")
    assert access["request_id"] == "req-abc.123"
    assert access["status"] == 200
    assert access["route"] == "/test/work"
    assert access["duration_ms"] >= 0


def test_request_id_is_minted_when_absent_or_unsafe(client: TestClient) -> None:
    minted = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", minted)
    unsafe = client.get("/healthz", headers={"X-Request-ID": 'a b"<script>'})
    assert unsafe.headers["X-Request-ID"] != 'a b"<script>'
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-ID"])
    assert get_request_id() is None  # nothing leaks out of the request


def test_secrets_are_redacted_from_log_lines() -> None:
    record = logging.makeLogRecord(
        {
            "name": "credagg.test",
            "levelname": "INFO",
            "msg": "connecting to postgresql://app:hunter2@db/credagg",
            "api_key": "ck_live_123",
            "payload": {"session_token": "tok", "amount": 5},
        }
    )
    line = JsonFormatter().format(record)
    assert "hunter2" not in line
    assert "ck_live_123" not in line
    assert "tok" not in json.loads(line)["payload"].values()
    assert json.loads(line)["payload"]["amount"] == 5


def test_metrics_count_requests_by_route_template_and_status(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/healthz")
    client.get("/definitely/not/here")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'credagg_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
    assert 'credagg_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in text
    assert "credagg_http_request_duration_seconds_bucket" in text
    assert "/definitely/not/here" not in text


def test_each_app_has_its_own_registry(settings: Settings) -> None:
    first, second = create_app(settings), create_app(settings)
    with TestClient(first) as a, TestClient(second) as b:
        a.get("/healthz")
        text = b.get("/metrics").text
    assert 'route="/healthz"' not in text


def test_path_parameters_are_not_metric_labels(app: FastAPI) -> None:
    @app.get("/test/loans/{loan_id}")
    def loan(loan_id: int) -> dict[str, int]:
        return {"loan_id": loan_id}

    with TestClient(app) as client:
        for loan_id in (1, 2, 3):
            client.get(f"/test/loans/{loan_id}")
        text = client.get("/metrics").text
    assert 'route="/test/loans/{loan_id}",status="200"} 3.0' in text
