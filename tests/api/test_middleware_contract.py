"""What middleware does to every route is in the OpenAPI document, and the document matches what
the middleware really answers: `Idempotency-Key` on every POST (400/409/422 codes listed) and a
429 with `Retry-After` on every rate-limited path."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.exceptions import ErrorBody
from backend.ratelimit.middleware import EXEMPT_PATHS

IDEMPOTENCY_CODES = ("invalid_idempotency_key", "idempotency_in_progress", "idempotency_key_reused")


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    paths = app.openapi()["paths"]
    return [(path, method, op) for path, ops in paths.items() for method, op in ops.items()]


def test_every_post_documents_the_idempotency_key_and_its_errors(app: FastAPI) -> None:
    posts = [(path, op) for path, method, op in _operations(app) if method == "post"]
    assert len(posts) >= 10
    for path, op in posts:
        [header] = [p for p in op["parameters"] if p["name"] == "Idempotency-Key"]
        assert header["in"] == "header" and header["required"] is False, path
        codes = " ".join(op["responses"][status]["description"] for status in ("400", "409", "422"))
        for code in (
            "invalid_idempotency_key",
            "idempotency_in_progress",
            "idempotency_key_reused",
        ):
            assert f"`{code}`" in codes, (path, code)


def test_every_limited_path_documents_429_with_retry_after(app: FastAPI) -> None:
    for path, method, op in _operations(app):
        if path in EXEMPT_PATHS:
            assert "429" not in op["responses"], path
            continue
        limited = op["responses"]["429"]
        assert "`rate_limited`" in limited["description"], (path, method)
        assert "Retry-After" in limited["headers"], (path, method)
        schema = limited["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)


def test_a_bad_idempotency_key_gets_the_documented_400(client: TestClient) -> None:
    path = "/v1/auth/siwe"
    answer = client.post(
        path, json={"message": "x", "signature": "0x00"}, headers={"Idempotency-Key": "k" * 256}
    )
    assert answer.status_code == 400, answer.text
    error = ErrorBody.model_validate(answer.json())
    documented = client.app.openapi()["paths"][path]["post"]["responses"]["400"]  # type: ignore[attr-defined]
    assert f"`{error.error}`" in documented["description"]
    assert error.hint
