"""pytest fixtures for the test ground: ``pytest_plugins = ["devstack.testing"]``.

One test ground (API server + local kubelet) per test run; every test gets its own namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from .ground import TestGround
from .identity.process import IdentityServerProcess
from .kubeapi import ApiError, Credentials, KubeAPI
from .paths import cache_dir

T = TypeVar("T")


@contextlib.contextmanager
def started_ground(prefix: str = "run-") -> Iterator[TestGround]:
    """A test ground of its own, stopped and removed afterwards (kept when PRIMEHUB_KEEP_GROUND=1,
    logs under <state>/logs); fails when any of its processes outlives it."""
    # Outside /tmp on purpose: containers get a private /tmp, so state there would be hidden from
    # them for free and the test ground's own isolation would go untested.
    base = cache_dir() / "test-grounds"
    base.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    ground = TestGround(state_dir).start()
    try:
        yield ground
    finally:
        leftovers = ground.stop()
        if not os.environ.get("PRIMEHUB_KEEP_GROUND"):
            shutil.rmtree(state_dir, ignore_errors=True)
    assert not leftovers, f"processes outlived the test ground: {leftovers}"


@contextlib.asynccontextmanager
async def cluster_admin(ground: TestGround) -> AsyncIterator[KubeAPI]:
    """``ground``'s API server as cluster admin (raw JSON)."""
    async with KubeAPI(Credentials.from_kubeconfig(ground.kubeconfig)) as api:
        yield api


@pytest.fixture(scope="session")
def test_ground() -> Iterator[TestGround]:
    """The session's test ground, shared by every test; $KUBECONFIG points at it."""
    with started_ground() as ground:
        os.environ["KUBECONFIG"] = str(ground.kubeconfig)
        # kubernetes_asyncio reads $KUBECONFIG when it is imported, which may have happened already.
        from kubernetes_asyncio.config import kube_config

        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(ground.kubeconfig)
        yield ground


@pytest.fixture
async def kube(test_ground: TestGround) -> AsyncIterator[KubeAPI]:
    """The test ground's API server as cluster admin (raw JSON)."""
    async with cluster_admin(test_ground) as api:
        yield api


@pytest.fixture
async def namespace(kube: KubeAPI, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh namespace per test, deleted (and finalized by the local kubelet) afterwards."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"{base}-{secrets.token_hex(3)}"
    await kube.post("/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    try:
        await kube.delete(f"/api/v1/namespaces/{name}")
    except ApiError as error:
        if error.status != 404:
            raise


async def eventually(
    probe: Callable[[], Awaitable[T]], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Await ``probe()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or probe}; last value: {last!r}"
    )


DEMO_REALM = Path(__file__).with_name("data") / "realm.yaml"


@pytest.fixture
def identity_server_factory(tmp_path: Path) -> Iterator[Callable[..., IdentityServerProcess]]:
    """Start identity servers: ``factory(realm_file=DEMO_REALM, access_token_lifespan=…)``.

    Each is a real process on a free loopback port, stopped after the test."""
    started: list[IdentityServerProcess] = []

    def start(realm_file: Path = DEMO_REALM, **lifespans: int) -> IdentityServerProcess:
        log = tmp_path / f"identity-{len(started)}.log"
        server = IdentityServerProcess(realm_file=realm_file, log_path=log, lifespans=lifespans)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def identity_server(
    identity_server_factory: Callable[..., IdentityServerProcess],
) -> IdentityServerProcess:
    """The identity server with the demo realm (devstack/data/realm.yaml)."""
    return identity_server_factory()


@contextlib.asynccontextmanager
async def http_client(
    existing: httpx.AsyncClient | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """``existing`` as it is (its cookies carry a session), or a new client closed afterwards."""
    if existing is not None:
        yield existing
        return
    async with httpx.AsyncClient() as client:
        yield client
