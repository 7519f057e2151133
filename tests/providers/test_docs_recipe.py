"""The verification recipes in docs/webhooks.md work against what we actually send."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from backend.providers.webhooks.signing import signature_header

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
T = 1_800_000_000
BODY = b'{"id":"evt_1","data":{"amount":"100"}}'


def _snippet(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    return str(blocks[0])


HEADER = signature_header(["whsec_old", "whsec_new"], BODY, timestamp=T)
CASES = [
    (BODY, "whsec_new", T + 10, True),
    (BODY, "whsec_old", T - 10, True),
    (BODY + b" ", "whsec_new", T, False),
    (BODY, "whsec_other", T, False),
    (BODY, "whsec_new", T + 301, False),
]


@pytest.mark.parametrize(("body", "secret", "now", "ok"), CASES)
def test_python_recipe(body: bytes, secret: str, now: int, ok: bool) -> None:
    namespace: dict[str, object] = {}
    exec(_snippet("python"), namespace)  # noqa: S102 - the documented recipe itself
    verify = namespace["verify_signature"]
    error = namespace["WebhookVerificationError"]
    assert callable(verify) and isinstance(error, type)
    if ok:
        assert verify(body, HEADER, secret, now=now) == T
    else:
        with pytest.raises(error):
            verify(body, HEADER, secret, now=now)


def test_node_recipe() -> None:
    cases = [
        {"body": body.decode(), "secret": secret, "now": now, "ok": ok}
        for body, secret, now, ok in CASES
    ]
    script = _snippet("js") + (
        f"\nconst header = {json.dumps(HEADER)};\n"
        f"const cases = {json.dumps(cases)};\n"
        "console.log(JSON.stringify(cases.map((c) => {\n"
        "  try { verifySignature(Buffer.from(c.body), header, c.secret, 300, c.now); }\n"
        "  catch (e) { return false; }\n"
        "  return true;\n"
        "})));\n"
    )
    result = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [case["ok"] for case in cases]
