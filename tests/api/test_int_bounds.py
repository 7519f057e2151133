"""Regression found by the OpenAPI fuzz run on PostgreSQL: integers past BIGINT were a 500.

An id, leaf index or tree size above 2**63 - 1 names no row, but PostgreSQL refuses to compare
it with a BIGINT column (psycopg `DataError`: integer out of range), and the route answered
500. SQLite compared happily, so only the PostgreSQL run saw it. Such input is now a 422
naming the parameter, on both databases.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.config import Settings
from backend.exceptions import ErrorBody
from tests.api.conftest import mint_token

TOO_BIG = 2**63
RECEIPT = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("kind", "path", "field"),
    [
        ("auditor", f"/v1/receipts?after={TOO_BIG}", "query.after"),
        ("auditor", f"/v1/receipts/{RECEIPT}/proof?size={TOO_BIG}", "query.size"),
        ("anonymous", f"/v1/log/checkpoint?size={TOO_BIG}", "query.size"),
        ("anonymous", f"/v1/log/checkpoint?from={TOO_BIG}", "query.from"),
        ("anonymous", f"/v1/log/consistency?from=1&to={TOO_BIG}", "query.to"),
        ("provider", f"/v1/provider/webhook/deliveries?before={TOO_BIG}", "query.before"),
        ("provider", f"/v1/provider/webhook/deliveries/{TOO_BIG}", "path.delivery_id"),
    ],
)
def test_an_integer_past_bigint_is_a_422_naming_it(
    client: TestClient, settings: Settings, kind: str, path: str, field: str
) -> None:
    token = mint_token(kind, client, settings)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 422, response.text
    error = ErrorBody.model_validate(response.json())
    assert error.errors is not None
    assert [p.field for p in error.errors] == [field]


def test_redelivering_a_delivery_past_bigint_is_a_422(
    client: TestClient, settings: Settings
) -> None:
    token = mint_token("provider", client, settings)
    response = client.post(
        f"/v1/provider/webhook/deliveries/{TOO_BIG}/redeliver",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422, response.text
    documented = client.app.openapi()["paths"][  # type: ignore[attr-defined]
        "/v1/provider/webhook/deliveries/{delivery_id}/redeliver"
    ]["post"]["responses"]
    assert "validation_error" in documented["422"]["description"]


@pytest.mark.parametrize(
    "path",
    [f"/v1/log/checkpoint?size={TOO_BIG - 1}", f"/v1/log/consistency?from=1&to={TOO_BIG - 1}"],
)
def test_the_largest_bigint_is_still_accepted_as_input(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code < 500, response.text
    assert response.status_code != 422 or "validation_error" not in response.text, response.text
