"""The demo's HTTP client: every call names the status it expects, and anything else stops the
demo with the API's error body (code, detail, hint, request id) instead of a traceback."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from backend.demo.output import StepFailed


class Api:
    def __init__(self, base: str, *, timeout: float = 30.0) -> None:
        self.base = base
        self.client = httpx.Client(base_url=base, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        expect: tuple[int, ...] = (200,),
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        try:
            response = self.client.request(
                method, path, headers=headers, json=json_body, params=params
            )
        except httpx.HTTPError as exc:
            raise StepFailed(f"{method} {self.base}{path}: {exc}") from None
        if response.status_code not in expect:
            raise StepFailed(
                f"{method} {path} answered {response.status_code} (expected "
                f"{' or '.join(map(str, expect))})",
                _body(response),
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("expect", (200, 201))
        return self.call("POST", path, json_body=body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.call("PUT", path, json_body=body, **kwargs)


def _body(response: httpx.Response) -> str:
    try:
        return json.dumps(response.json(), indent=2)
    except ValueError:
        return response.text[:2000]
