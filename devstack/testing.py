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
from .keycloak import KeycloakProcess
from .kubeapi import ApiError, Credentials, KubeAPI
from .paths import cache_dir
from .realms import Realm, RealmFactory
from .toxiproxy import Proxy, ToxiproxyProcess

T = TypeVar("T")


def new_state_dir(prefix: str) -> Path:
    """A new directory for one test-ground process's state, under the cache's test-grounds/."""
    base = cache_dir() / "test-grounds"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


@contextlib.contextmanager
def started_ground(prefix: str = "run-") -> Iterator[TestGround]:
    """A test ground of its own, stopped and removed afterwards (kept when PRIMEHUB_KEEP_GROUND=1,
    logs under <state>/logs); fails when any of its processes outlives it."""
    # Outside /tmp on purpose: containers get a private /tmp, so state there would be hidden from
    # them for free and the test ground's own isolation would go untested.
    state_dir = new_state_dir(prefix)
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


@contextlib.contextmanager
def started_keycloak(prefix: str = "keycloak-", **options: Any) -> Iterator[KeycloakProcess]:
    """A Keycloak of its own (``options``: KeycloakProcess fields such as ``realms``), stopped and
    removed afterwards (kept when PRIMEHUB_KEEP_GROUND=1)."""
    state_dir = new_state_dir(prefix)
    keycloak = KeycloakProcess(state_dir / "home", state_dir / "keycloak.log", **options)
    try:
        yield keycloak.start()
    finally:
        keycloak.stop()
        if not os.environ.get("PRIMEHUB_KEEP_GROUND"):
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def keycloak() -> Iterator[KeycloakProcess]:
    """The session's real Keycloak; tests get realms of their own on it (``realm_factory``)."""
    with started_keycloak() as server:
        yield server


@pytest.fixture
def realm_factory(keycloak: KeycloakProcess) -> Iterator[RealmFactory]:
    """Creates realms on the session's Keycloak (the demo realm or a variant), deleted after the
    test: ``realm_factory.create(realm_dict, accessTokenLifespan=…)``."""
    factory = RealmFactory(keycloak)
    yield factory
    factory.delete_all()


@pytest.fixture
def realm(realm_factory: RealmFactory) -> Realm:
    """A fresh copy of the demo realm, its client accepting any hub on loopback."""
    return realm_factory.create()


@pytest.fixture(scope="session")
def toxiproxy() -> Iterator[ToxiproxyProcess]:
    """The session's Toxiproxy."""
    state_dir = new_state_dir("toxiproxy-")
    server = ToxiproxyProcess(state_dir / "toxiproxy.log").start()
    yield server
    server.stop()
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def keycloak_proxy(toxiproxy: ToxiproxyProcess, keycloak: KeycloakProcess) -> Iterator[Proxy]:
    """A Toxiproxy proxy in front of the session's Keycloak, removed after the test."""
    proxy = toxiproxy.proxy(f"127.0.0.1:{keycloak.port}")
    yield proxy
    proxy.delete()


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
