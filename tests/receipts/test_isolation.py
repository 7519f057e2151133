"""The offline verifier will import these modules alone: they must not pull in the database,
the API, the settings or anything else beyond the standard library, rfc8785 and cryptography."""

from __future__ import annotations

import json
import subprocess
import sys

MODULES = ["canonical", "commitment", "merkle", "signing"]
# What the allowed dependencies load by themselves (cryptography registers e.g. `_openssl`).
ALLOWED = (
    "import rfc8785, cryptography.exceptions, cryptography.hazmat.primitives.serialization, "
    "cryptography.hazmat.primitives.asymmetric.ed25519"
)


def loaded_after(statement: str) -> set[str]:
    script = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return set(json.loads(run.stdout))


def test_receipts_core_imports_only_the_standard_library_rfc8785_and_cryptography() -> None:
    loaded = loaded_after("; ".join(f"import backend.receipts.{name}" for name in MODULES))
    ours = {"backend", "backend.receipts"} | {f"backend.receipts.{name}" for name in MODULES}
    assert {name for name in loaded if name.split(".")[0] == "backend"} == ours
    extra = loaded - ours - loaded_after(ALLOWED)
    foreign = {name for name in extra if name.split(".")[0] not in sys.stdlib_module_names}
    assert not foreign, f"receipts core pulled in {sorted(foreign)}"
