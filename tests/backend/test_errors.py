"""Every error response has one shape; bugs are logged with the request id and leak nothing."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from backend.app import create_app
from backend.config import Settings
from backend.exceptions import NotFound, Unprocessable, error_responses

from .conftest import JsonLogs, SettingsFactory


class LoanNotFound(NotFound):
    """No loan with this id is visible to the caller."""

    code = "loan_not_found"


class QuoteTooSmall(Unprocessable):
    """The requested amount is below every provider's minimum."""

    code = "quote_too_small"


class LoanRequest(BaseModel):
    amount: int = Field(gt=0)
    currency: str


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/test/loans/{loan_id}", responses=error_responses(LoanNotFound, validation=True))
    def get_loan(loan_id: int) -> dict[str, int]:
        raise LoanNotFound(
            f"Loan {loan_id} does not exist", hint="List your loans with GET /v1/loans."
        )

    @app.post("/test/loans", responses=error_responses(QuoteTooSmall, validation=True))
    def create_loan(body: LoanRequest) -> LoanRequest:
        return body

    @app.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("database password is hunter2")

    return app


def assert_error_shape(body: dict[str, object], code: str) -> None:
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["request_id"], str) and body["request_id"]


def test_unknown_route_is_a_404_error_body(client: TestClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    body = response.json()
    assert_error_shape(body, "not_found")
    assert "/no/such/thing" in body["detail"]
    assert body["hint"]


def test_domain_error_renders_code_detail_and_hint(client: TestClient) -> None:
    response = client.get("/test/loans/42")
    assert response.status_code == 404
    body = response.json()
    assert_error_shape(body, "loan_not_found")
    assert body["detail"] == "Loan 42 does not exist"
    assert body["hint"] == "List your loans with GET /v1/loans."


def test_validation_error_names_each_field(client: TestClient) -> None:
    response = client.post("/test/loans", json={"amount": -5, "secret_note": "s3cr3t"})
    assert response.status_code == 422
    body = response.json()
    assert_error_shape(body, "validation_error")
    fields = {problem["field"] for problem in body["errors"]}
    assert fields == {"body.amount", "body.currency"}
    assert "body.amount" in body["detail"] and "body.currency" in body["detail"]
    assert "s3cr3t" not in response.text  # inputs are not echoed back


def test_path_parameter_validation(client: TestClient) -> None:
    response = client.get("/test/loans/not-a-number")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.loan_id"


def test_method_not_allowed_says_what_is(client: TestClient) -> None:
    response = client.delete("/healthz")
    assert response.status_code == 405
    body = response.json()
    assert_error_shape(body, "method_not_allowed")
    assert "GET" in body["hint"]


def test_unhandled_exception_is_500_logged_with_request_id_and_leaks_nothing(
    client: TestClient, json_logs: JsonLogs
) -> None:
    response = client.get("/test/crash", headers={"X-Request-ID": "crash-req-1"})
    assert response.status_code == 500
    body = response.json()
    assert_error_shape(body, "internal_error")
    assert body["request_id"] == "crash-req-1"
    assert response.headers["X-Request-ID"] == "crash-req-1"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text

    [logged] = json_logs.find(logger="credagg.errors", level="ERROR")
    assert logged["request_id"] == "crash-req-1"
    assert logged["exc_type"] == "RuntimeError"
    assert "Traceback" in logged["exc"]


def test_request_running_past_the_timeout_gets_a_504(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(request_timeout=0.2))

    @app.get("/test/slow")
    async def slow() -> None:
        await asyncio.sleep(5)

    with TestClient(app) as client:
        response = client.get("/test/slow")
    assert response.status_code == 504
    assert_error_shape(response.json(), "request_timeout")


def test_error_responses_are_listed_in_openapi(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    get_loan = schema["paths"]["/test/loans/{loan_id}"]["get"]["responses"]
    assert "loan_not_found" in get_loan["404"]["description"]
    assert get_loan["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert get_loan["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    create = schema["paths"]["/test/loans"]["post"]["responses"]
    assert "quote_too_small" in create["422"]["description"]
    assert "validation_error" in create["422"]["description"]
