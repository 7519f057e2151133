"""Property-based fuzzing of the whole OpenAPI document with Schemathesis (issue 5).

Every operation the app declares is called with generated path, query, header and body values
(valid and invalid ones) by four callers: nobody, a wallet session, a provider key and an auditor
key, so the authorised code paths run too, not only the 401s. The laws checked on every response:

- no 5xx (`not_a_server_error`): user input never crashes the API;
- every 4xx/5xx body is an `ErrorBody` (error, detail, hint?, request_id?, errors?);
- the status code, content type and body are the ones the operation declares
  (`status_code_conformance`, `content_type_conformance`, `response_schema_conformance`).

The run is bounded (`MAX_EXAMPLES` fuzzed cases per operation per caller, plus Schemathesis'
examples and coverage phases) and derandomized, so CI sees the same inputs every time; the
terminal summary shows the status mix each caller got.

Two choices forced by the tools: the schema is loaded at import from a throwaway app (the lazy
`schemathesis.pytest.from_fixture` loader writes `Function._nodeid`, which pytest 9.2 no longer
has), and requests go through the test's own `TestClient` on the test's app and database
(`case.as_transport_kwargs` + `case.validate_response`), not Schemathesis' ASGI transport.
"""

from __future__ import annotations

import json
import tempfile
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from pydantic import ValidationError
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from backend.app import create_app
from backend.config import Settings
from backend.exceptions import ErrorBody
from tests.api.conftest import CALLER_KINDS, FUZZ_STATUSES, Caller, mint_token

MAX_EXAMPLES = 15


def error_body_in_model(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every 4xx/5xx answer is a JSON `ErrorBody` with a non-empty code and detail."""
    if response.status_code < 400:
        return None
    try:
        body = ErrorBody.model_validate(json.loads(response.content))
    except (ValueError, ValidationError) as exc:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code} with a body outside the "
            f"error model: {response.content[:500]!r} ({exc})"
        ) from None
    assert body.error and body.detail, f"empty error code or detail: {body!r}"
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_body_in_model,
]


@pytest.fixture(params=CALLER_KINDS)
def caller(request: pytest.FixtureRequest, client: TestClient, settings: Settings) -> Caller:
    kind: str = request.param
    return Caller(kind=kind, mint=lambda: mint_token(kind, client, settings))


def _openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document; routes do not depend on settings, so any test app will do."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            _env_file=None, environment="test", data_dir=data_dir, database_url="sqlite://"
        )
        return create_app(settings).openapi()


def _load_schema() -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_dict(_openapi_document())
    loaded.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")
    return loaded


schema = _load_schema()


def httpx_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis' requests-style arguments in the form httpx (the TestClient) wants.

    Raw bytes go in `content` and cookies in a `Cookie` header: httpx deprecates both as
    `data=` and per-request `cookies=`.
    """
    arguments = dict(kwargs)
    cookies = arguments.pop("cookies", None) or {}
    if cookies:
        headers = dict(arguments.get("headers") or {})
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        arguments["headers"] = headers
    data = arguments.get("data")
    if isinstance(data, bytes | str):
        arguments["content"] = arguments.pop("data")
    return arguments


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # Each example is a real request on a real database, on a machine shared with other work:
    # "too slow", "filtered too much" and function-scoped fixtures (the caller and the app are
    # deliberately shared by one operation's examples) are expected here, not symptoms.
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_openapi_fuzz(case: schemathesis.Case, caller: Caller, client: TestClient) -> None:
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=caller.headers())
    response = client.request(**httpx_arguments(kwargs))
    FUZZ_STATUSES[caller.kind, f"{response.status_code // 100}xx"] += 1
    case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
    if case.method.upper() != "GET" and response.status_code < 300:
        caller.renew_if_revoked(client)
