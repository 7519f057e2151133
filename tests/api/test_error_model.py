"""Regressions found by the OpenAPI fuzz run (test_openapi_fuzz.py), each pinned by example.

1. A JSON body the parser cannot even decode (bytes that are not UTF-8, nesting deeper than the
   decoder allows) got FastAPI's bare 400 "There was an error parsing the body", a status no
   operation documents, with no hint; a body that decodes but is not JSON got a 422. Both are
   now the same documented 422 `validation_error` naming the body.
2. A body of ~100000 nested brackets crashed the whole process (segfault): py_ecc raises the
   recursion limit to 100000 on import, so the C JSON decoder overflows the stack before it
   raises RecursionError. `JsonNestingGuard` answers bodies nested deeper than MAX_JSON_DEPTH
   with a 422 before anything parses them, the idempotency fingerprint included.
3. FastAPI documents its own 422 body (`HTTPValidationError`, `detail` as a list) on routes that
   do not declare a 422 themselves, while the handler answers with `ErrorBody`. The document now
   describes what is sent.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.exceptions import MAX_JSON_DEPTH, ErrorBody, json_nesting_exceeds
from tests.api.conftest import new_wallet_session

BODY_ROUTES = [
    ("POST", "/v1/auth/siwe"),
    ("POST", "/v1/provider/api-keys"),
    ("PATCH", "/v1/provider/profile"),
    ("PUT", "/v1/provider/webhook"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\x0c\xfeXGm'", "not UTF-8"),
        (b'{"message": ', "JSON decode error"),
    ],
    ids=["not-utf8", "truncated"],
)
def test_an_unparsable_body_is_a_documented_422_naming_the_body(
    client: TestClient, method: str, path: str, body: bytes, reason: str
) -> None:
    response = client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    error = ErrorBody.model_validate(response.json())
    assert error.error == "validation_error"
    assert reason in error.detail
    assert error.errors is not None
    assert [problem.field.split(".")[0] for problem in error.errors] == ["body"]
    documented = client.app.openapi()["paths"][path][method.lower()]["responses"]  # type: ignore[attr-defined]
    assert "422" in documented


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_the_recursion_limit_that_made_deep_json_fatal_is_still_raised() -> None:
    # If this ever fails, the guard is still right but no longer the only thing between a
    # request and a crash; keep it either way.
    assert sys.getrecursionlimit() >= 100_000


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("idempotency_key", [None, "deep-body-1"])
def test_a_body_nested_past_the_limit_is_a_422_not_a_crash(
    client: TestClient, method: str, path: str, idempotency_key: str | None
) -> None:
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {new_wallet_session(client)}",
    }
    if idempotency_key:
        headers["Idempotency-Key"] = f"{idempotency_key}-{method}-{path}"
    response = client.request(method, path, content=nested(100_000), headers=headers)
    assert response.status_code == 422, response.text
    error = ErrorBody.model_validate(response.json())
    assert error.error == "validation_error"
    assert error.errors is not None
    assert [(p.field, p.type) for p in error.errors] == [("body", "json_too_deep")]
    assert str(MAX_JSON_DEPTH) in error.detail


def test_a_body_at_the_limit_reaches_the_route(client: TestClient) -> None:
    response = client.post(
        "/v1/auth/siwe",
        content=nested(MAX_JSON_DEPTH),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = ErrorBody.model_validate(response.json())
    assert error.errors is not None
    assert all(p.type != "json_too_deep" for p in error.errors)


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), children, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(document=json_documents, limit=st.integers(min_value=0, max_value=8))
def test_nesting_is_measured_exactly_on_valid_json(document: Any, limit: int) -> None:
    """Law: for any JSON document, brackets inside strings included, the guard's verdict is
    exactly "its depth exceeds the limit"."""
    body = json.dumps(document).encode()
    assert json_nesting_exceeds(body, limit) == (depth_of(document) > limit)


def test_every_documented_422_is_the_error_body(app: FastAPI) -> None:
    document = app.openapi()
    documented = {
        (method.upper(), path): operation["responses"]["422"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "422" in operation["responses"]
    }
    # Routes with path or query parameters and no 422 of their own are the ones FastAPI used to
    # document with its default body; they must be among the rewritten ones.
    assert ("GET", "/v1/provider/quotes") in documented
    assert ("DELETE", "/v1/provider/api-keys/{key_id}") in documented
    for operation, response in documented.items():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, operation
        assert "validation_error" in response["description"], operation
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"ErrorBody", "FieldProblem"} <= schemas.keys()


def test_the_document_is_built_once(app: FastAPI) -> None:
    assert app.openapi() is app.openapi()


def test_a_deep_body_to_a_route_without_one_is_a_documented_422(client: TestClient) -> None:
    token = new_wallet_session(client)
    response = client.post(
        "/v1/auth/logout",
        content=nested(100_000),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422, response.text
    documented = client.app.openapi()["paths"]["/v1/auth/logout"]["post"]["responses"]  # type: ignore[attr-defined]
    assert documented["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    # The guard refused it before the route ran: the session is still good.
    assert (
        client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
