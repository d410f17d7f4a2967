"""A started pod is noticed running when the watch reports it, not at KubeSpawner's next poll."""

from __future__ import annotations

import asyncio
import sys
import urllib.parse
from typing import Any

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from devstack.kubeapi import KubeAPI
from primehub_spawner.readiness import (
    PodWatchingSpawner,
    ServerNotListening,
    WakingPodReflector,
    accepts_connections,
    until_running,
)
from primehub_spawner.reflector import SteadyEventReflector
from tests.kubelet_pods import create, pod_body, wait_phase
from tests.test_testground_kubespawner import FakeUser

pytestmark = pytest.mark.cluster
LABELS = {"component": "readiness-test"}


@pytest.fixture
async def reflector(test_ground, namespace):
    from kubespawner.clients import load_config

    load_config()
    reflector = WakingPodReflector(namespace=namespace, labels=LABELS)
    await reflector.start()
    yield reflector
    await reflector.stop()


def _labelled(body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"]["labels"] = dict(LABELS)
    return body


def _running(pod: dict[str, Any] | None) -> bool:
    return bool(pod) and pod["status"].get("phase") == "Running"


async def test_the_wait_ends_when_the_watch_reports_the_pod_running(reflector, kube, namespace):
    key = f"{namespace}/waits"
    waiting = asyncio.ensure_future(until_running(lambda: reflector, key, _running))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # nothing there yet: it waits, it does not give up
    await create(kube, namespace, _labelled(pod_body("waits", "sleep 60")))
    async with asyncio.timeout(30):
        assert await waiting is True
    assert _running(reflector.pods[key])
    assert not reflector._waiters  # every waiter let go


@pytest.mark.parametrize("how", ["deleted", "failed"])
async def test_the_wait_ends_when_the_pod_will_not_run(reflector, kube, namespace, how):
    """A pod deleted or ended before it ran ends the wait (KubeSpawner's own wait then reports
    it as before) instead of keeping it until the start timeout."""
    body = _labelled(pod_body("ends", "sleep 60"))
    if how == "deleted":
        body["spec"]["nodeSelector"] = {"no-such-node": "true"}  # stays Pending
    else:
        body["spec"]["initContainers"] = [
            {"name": "fails", "image": "busybox", "command": ["false"]}
        ]
    await create(kube, namespace, body)
    key = f"{namespace}/ends"
    waiting = asyncio.ensure_future(until_running(lambda: reflector, key, _running))
    if how == "deleted":
        await asyncio.sleep(0.5)
        assert not waiting.done()
        await kube.delete(f"/api/v1/namespaces/{namespace}/pods/ends")
    else:
        await wait_phase(kube, namespace, "ends", "Failed")
    async with asyncio.timeout(30):
        assert await waiting is False
    assert not reflector._waiters


async def test_a_reflector_replaced_while_waiting_is_followed(reflector, kube, namespace):
    """KubeSpawner replaces a pod reflector that failed; the wait reads the current one again
    (within a second) rather than waiting on a stopped one until the start timeout."""
    first = WakingPodReflector(namespace=namespace, labels=LABELS)
    await first.start()
    current = [first]
    key = f"{namespace}/moves"
    waiting = asyncio.ensure_future(until_running(lambda: current[0], key, _running))
    await asyncio.sleep(0.2)
    await first.stop()
    current[0] = reflector
    await create(kube, namespace, _labelled(pod_body("moves", "sleep 60")))
    async with asyncio.timeout(30):
        assert await waiting is True
    assert not first._waiters and not reflector._waiters


async def test_errors_of_the_running_check_end_the_wait(reflector, kube, namespace):
    """ServerLifecycle's check raises when a container ends while starting: that fails the start
    at once, through the wait."""
    await create(kube, namespace, _labelled(pod_body("raises", "sleep 60")))

    def check(pod: dict[str, Any] | None) -> bool:
        if pod is not None:
            raise LookupError("ended")
        return False

    async with asyncio.timeout(30):
        with pytest.raises(LookupError):
            await until_running(lambda: reflector, f"{namespace}/raises", check)
    assert not reflector._waiters


@pytest.fixture
async def spawner_classes(test_ground):
    from kubespawner import KubeSpawner

    yield
    await KubeSpawner._stop_all_reflectors()


@pytest.mark.parametrize(
    ("spawner_class", "prompt", "running_at_first_look"),
    [
        ("KubeSpawner", None, False),
        ("PodWatchingSpawner", None, True),
        ("PodWatchingSpawner", "false", False),  # $PRIMEHUB_PROMPT_READINESS: KubeSpawner's wait
    ],
)
async def test_kubespawners_wait_finds_the_pod_running_at_its_first_look(
    spawner_classes,
    kube: KubeAPI,
    namespace,
    monkeypatch,
    spawner_class,
    prompt,
    running_at_first_look,
):
    """KubeSpawner polls for its pod with a random back-off (up to 0.2 s, 0.4 s … 5 s); after
    PodWatchingSpawner's wait its first look finds the pod running. Plain KubeSpawner's first
    look, right after the creation, cannot: this is the delay the wait removes."""
    import kubespawner.spawner

    looks: list[bool] = []
    backoff = kubespawner.spawner.exponential_backoff

    async def recording_backoff(pass_func: Any, fail_message: str, *args: Any, **kwargs: Any):
        if "did not start" not in fail_message:
            return await backoff(pass_func, fail_message, *args, **kwargs)

        def look() -> Any:
            running = pass_func()
            looks.append(bool(running))
            return running

        return await backoff(look, fail_message, *args, **kwargs)

    monkeypatch.setattr(kubespawner.spawner, "exponential_backoff", recording_backoff)
    if prompt is not None:
        monkeypatch.setenv("PRIMEHUB_PROMPT_READINESS", prompt)
    spawner = _spawner(spawner_class, namespace, [sys.executable, "-m", "http.server", "8888"])
    await spawner.start()
    try:
        watching = spawner_class == "PodWatchingSpawner"
        assert isinstance(spawner.pod_reflector, WakingPodReflector) is watching
        steady = isinstance(spawner.event_reflector, SteadyEventReflector)
        assert steady is watching
        assert spawner.event_reflector.timeout_seconds == (300 if steady else 10)
        assert spawner.pod_reflector.timeout_seconds == 10  # a spawn waits on the pods' watch
        assert looks[0] is running_at_first_look
        assert looks[-1] is True
    finally:
        await spawner.stop(now=True)


def _spawner(class_name: str, namespace: str, cmd: list[str], http_timeout: int = 30) -> Any:
    from kubespawner import KubeSpawner

    config = Config()
    config.KubeSpawner.namespace = namespace
    config.KubeSpawner.start_timeout = 30
    config.KubeSpawner.http_timeout = http_timeout
    config.KubeSpawner.cmd = cmd
    config.KubeSpawner.node_selector = {"component": "singleuser-server"}
    cls = {"KubeSpawner": KubeSpawner, "PodWatchingSpawner": PodWatchingSpawner}[class_name]
    return cls(
        hub=Hub(),
        user=FakeUser(),
        config=config,
        api_token="token",
        oauth_client_id="jupyterhub-user-alice",
    )


@pytest.mark.parametrize(
    ("spawner_class", "listening_at_return"),
    [("KubeSpawner", False), ("PodWatchingSpawner", True)],
)
async def test_start_returns_once_the_server_takes_connections(
    spawner_classes, namespace, spawner_class, listening_at_return
):
    """JupyterHub's own check (a random back-off up to 0.2 s, 0.4 s …) then answers at its first
    try. Plain KubeSpawner returns when the pod runs, before a slow server listens."""
    server = f"sleep 1; exec {sys.executable} -m http.server 8888"
    spawner = _spawner(spawner_class, namespace, ["/bin/sh", "-c", server])
    url = urllib.parse.urlsplit(await spawner.start())
    try:
        assert await accepts_connections(url.hostname, url.port, 0.1) is listening_at_return
    finally:
        await spawner.stop(now=True)


async def test_a_server_that_never_listens_fails_after_http_timeout(spawner_classes, namespace):
    spawner = _spawner("PodWatchingSpawner", namespace, ["sleep", "60"], http_timeout=2)
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(ServerNotListening) as failure:
            await spawner.start()
    finally:
        await spawner.stop(now=True)
    assert 2 <= asyncio.get_running_loop().time() - started < 10
    assert failure.value.reason == "server_not_listening"
    assert ":8888 within 2 seconds" in failure.value.message
    assert failure.value.status_code == 500
