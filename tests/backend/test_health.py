"""Liveness and readiness against real components: the database, the broker, Anvil devnets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.config import Settings
from backend.migrate import alembic_config
from chain_adapters.devnet import Devnet, DevnetSpec, start_devnet
from chain_adapters.exceptions import ChainConfigError
from chain_adapters.registry import ChainConfig, dump_chains

from .conftest import SettingsFactory, wait_for

CHAIN_ID = 31_391


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Devnet]:
    """A devnet of our own: these tests stop it, so it cannot be the session's shared one."""
    started = start_devnet(DevnetSpec("ready-a", CHAIN_ID), log_dir=tmp_path)
    try:
        yield started
    finally:
        started.stop()


def chains_file(tmp_path: Path, *chains: ChainConfig) -> Path:
    path = tmp_path / "chains.toml"
    path.write_text(dump_chains(chains), encoding="utf-8")
    return path


def chain(name: str, chain_id: int, *urls: str) -> ChainConfig:
    return ChainConfig(
        name=name, chain_id=chain_id, rpc_urls=urls, devnet=True, timelock_delay=2, block_time=1.0
    )


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung RPC node)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
                accepted.append(connection)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v3/some-api-key"
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


def test_healthz_needs_nothing(make_settings: SettingsFactory) -> None:
    # A database URL that cannot work: liveness must not care.
    settings = make_settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_broker(client: TestClient, settings: Settings) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ready"
    database = body["components"]["database"]
    assert database["ok"] is True
    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
    assert database["revision"] == head
    assert database["backend"] == ("sqlite" if settings.is_sqlite else "postgresql")
    broker = body["components"]["broker"]
    assert broker == {"ok": True, "kind": "redis" if settings.redis_url else "sqlite"}


def test_readyz_follows_a_devnet_going_down_and_coming_back(
    make_settings: SettingsFactory, devnet: Devnet, tmp_path: Path
) -> None:
    settings = make_settings(
        chains_file=chains_file(tmp_path, chain("devnet-a", CHAIN_ID, devnet.rpc_url))
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["components"]["chain:devnet-a"] == {
            "ok": True,
            "chain_id": CHAIN_ID,
            "endpoints_up": 1,
            "endpoints": 1,
        }

        devnet.stop()
        down = client.get("/readyz")
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "not_ready"
        assert body["components"]["database"]["ok"] is True
        component = body["components"]["chain:devnet-a"]
        assert component["ok"] is False
        assert "no RPC endpoint answered" in component["error"]
        assert f"127.0.0.1:{devnet.port}" in component["error"]

        devnet.restart()
        assert wait_for(lambda: client.get("/readyz").status_code == 200, timeout=10)
        assert client.get("/readyz").json()["components"]["chain:devnet-a"]["ok"] is True


def test_readyz_rejects_a_chain_id_mismatch_naming_both_ids(
    make_settings: SettingsFactory, devnet: Devnet, tmp_path: Path
) -> None:
    settings = make_settings(
        chains_file=chains_file(
            tmp_path,
            chain("right", CHAIN_ID, devnet.rpc_url),
            chain("wrong", 4242, devnet.rpc_url + "/"),
        )
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    components = response.json()["components"]
    assert components["chain:right"]["ok"] is True
    wrong = components["chain:wrong"]
    assert wrong["ok"] is False
    assert str(CHAIN_ID) in wrong["error"] and "4242" in wrong["error"]
    assert "reports chain id 31391 but the chains file expects 4242" in wrong["error"]


def test_readyz_has_a_hard_deadline_and_hides_url_paths(
    make_settings: SettingsFactory, silent_endpoint: str, tmp_path: Path
) -> None:
    settings = make_settings(
        chains_file=chains_file(tmp_path, chain("hung", 1234, silent_endpoint)),
        readiness_timeout=0.5,
        chain_probe_timeout=5.0,  # longer than the deadline: the deadline must win
    )
    with TestClient(create_app(settings)) as client:
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    component = response.json()["components"]["chain:hung"]
    assert component["ok"] is False
    assert "no answer within 0.5 s" in component["error"]
    assert elapsed < 2.0
    assert "some-api-key" not in response.text
    assert response.json()["components"]["database"]["ok"] is True


def test_readyz_is_not_ready_on_an_unmigrated_database(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    database = response.json()["components"]["database"]
    assert database["ok"] is False
    assert "run the migrations" in database["error"]


def test_readyz_reports_an_unreachable_broker(make_settings: SettingsFactory) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    broker = response.json()["components"]["broker"]
    assert broker["ok"] is False
    assert broker["error"]


def test_invalid_chains_file_fails_at_startup(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    bad = tmp_path / "chains.toml"
    bad.write_text('[[chain]]\nname = "x"\nchain_id = 0\nrpc_urls = ["ftp://nope"]\n')
    with pytest.raises(ChainConfigError, match="chain_id"):
        create_app(make_settings(chains_file=bad))
