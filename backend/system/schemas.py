"""API shapes of the system domain."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Per-component report; each component has at least `ok` and, when not ok, `error`."""

    status: Literal["ready", "not_ready"]
    components: dict[str, dict[str, Any]] = Field(
        examples=[
            {
                "database": {"ok": True, "backend": "sqlite", "revision": "0003_anchors"},
                "broker": {"ok": True, "kind": "sqlite"},
                "chain:devnet-a": {"ok": False, "error": "no RPC endpoint answered: ..."},
            }
        ]
    )
