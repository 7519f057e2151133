"""Finding the running dev stack: `<data_dir>/devstack.json`, written by `credagg dev` once
it is ready, names the API, its database, the chains and asset files and the log's key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backend.config import Settings, get_settings
from backend.demo.output import StepFailed
from backend.devstack import STACK_FILE, StackInfo
from chain_adapters.registry import ChainRegistry, load_chains


@dataclass(frozen=True)
class DemoContext:
    stack: StackInfo
    api: str
    settings: Settings  # the stack's database and files; secrets from this environment
    chains: ChainRegistry
    state_dir: Path  # what the demo keeps between runs: market addresses, provider keys

    @property
    def assets_file(self) -> Path:
        if self.stack.assets_file is None:
            raise StepFailed(
                "the dev stack has a CREDAGG_CREDIT_ASSETS_FILE of its own; the demo needs the "
                "one `credagg dev` manages (unset the variable and restart the stack)"
            )
        return Path(self.stack.assets_file)


def load_context(data_dir: Path, api: str | None) -> DemoContext:
    path = data_dir / STACK_FILE
    if not path.exists():
        raise StepFailed(
            f"no running dev stack found: {path} does not exist",
            "Start one in another terminal with `scripts/dev` (or `credagg dev`) and wait for "
            "'ready', or point --data-dir at its data directory.",
        )
    stack = StackInfo.read(path)
    settings = get_settings().model_copy(
        update={
            "data_dir": Path(stack.data_dir),
            "database_url": stack.database_url,
            "redis_url": stack.redis_url,
            "chains_file": Path(stack.chains_file),
        }
    )
    state_dir = Path(stack.data_dir) / "demo"
    state_dir.mkdir(parents=True, exist_ok=True)
    return DemoContext(
        stack=stack,
        api=(api or stack.api).rstrip("/"),
        settings=settings,
        chains=load_chains(Path(stack.chains_file)),
        state_dir=state_dir,
    )
