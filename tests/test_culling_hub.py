"""Idle culling on the test ground: jupyterhub-idle-culler run by the hub, real Jupyter servers
in pods, each server stopped after its own idle timeout; kernels culled inside the server."""

from __future__ import annotations

import asyncio
import contextlib
import html
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.hub import oauth_login
from devstack.testing import eventually
from tests.hub_stack import log_in, pods
from tests.notebook_api import NotebookServer

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SINGLEUSER = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
HUB_TIMEOUT, GPU_TIMEOUT, KERNEL_TIMEOUT = 60, 10, 5
CULLER = f"""
from primehub_spawner import culling
culling.enable_idle_culler(c, timeout={HUB_TIMEOUT}, cull_every=2)
c.PrimeHubSpawner.idle_timeout = {HUB_TIMEOUT}
c.PrimeHubSpawner.kernel_idle_timeout = {KERNEL_TIMEOUT}
"""


async def launch(hub, user: str, server: str, instance_type: str) -> None:
    image = "pytorch" if instance_type.startswith("gpu") else "base-notebook"
    options = {"group": "ml-team", "instance_type": instance_type, "image": image}
    status, body = await asyncio.to_thread(
        hub.api, "POST", f"users/{user}/servers/{server}", {"user_options": options}
    )
    assert status in (201, 202), body


async def ready(hub, user: str, server: str) -> bool:
    _, model = await asyncio.to_thread(hub.api, "GET", f"users/{user}")
    return bool(model["servers"].get(server, {}).get("ready"))


async def stopped(hub, user: str, server: str) -> bool:
    return not await ready(hub, user, server)


async def keep_busy(notebook: NotebookServer, stop: asyncio.Event) -> None:
    """What a user at work does: a request to her server every two seconds."""
    while not stop.is_set():
        answer = await notebook.request("GET", "contents")
        assert answer.status_code == 200, answer.text
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2)


async def test_each_server_is_culled_after_its_own_idle_timeout(hub_factory, kube, namespace):
    await kube.patch(
        f"/apis/primehub.io/v1alpha1/namespaces/{namespace}/instancetypes/gpu-1",
        {"spec": {"idleTimeout": f"{GPU_TIMEOUT}s"}},
    )
    hub = hub_factory(cmd=SINGLEUSER, extra_config=CULLER)
    await log_in(hub, "alice", "bob")
    await launch(hub, "alice", "cpu", "cpu-2")  # the hub's timeout
    await launch(hub, "bob", "busy", "cpu-2")  # the hub's timeout, but in use
    for user, server in (("alice", "cpu"), ("bob", "busy")):
        await eventually(lambda u=user, s=server: ready(hub, u, s), timeout=90, interval=0.5)
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=30) as http:
        await oauth_login(http, hub.url, "bob")
        notebook = NotebookServer(http, hub.url, "bob", "busy")
        assert await notebook.open()
        busy = asyncio.ensure_future(keep_busy(notebook, stop))
        try:
            await launch(hub, "alice", "gpu", "gpu-1")  # the GPU type's shorter timeout
            await eventually(lambda: ready(hub, "alice", "gpu"), timeout=90, interval=0.5)
            gpu_ready = time.monotonic()
            kernel = await notebook.request("POST", "kernels", {"name": "python3"})
            assert kernel.status_code == 201, kernel.text

            async def kernel_culled() -> bool:
                return (await notebook.request("GET", "kernels")).json() == []

            await eventually(kernel_culled, timeout=KERNEL_TIMEOUT + 30, interval=1)

            await eventually(lambda: stopped(hub, "alice", "gpu"), timeout=60, interval=0.5)
            assert time.monotonic() - gpu_ready >= GPU_TIMEOUT
            assert await ready(hub, "alice", "cpu"), "the CPU server went before its timeout"

            await eventually(
                lambda: stopped(hub, "alice", "cpu"), timeout=HUB_TIMEOUT + 30, interval=0.5
            )
            assert await ready(hub, "bob", "busy"), "a server in use was culled"
            assert not busy.done(), busy
        finally:
            stop.set()
            await busy

    async def culled_pods_gone() -> set[str]:
        names = {p["metadata"]["name"] for p in await pods(kube, namespace)}
        return names if not names & {"jupyter-alice--gpu", "jupyter-alice--cpu"} else set()

    assert "jupyter-bob--busy" in await eventually(culled_pods_gone, timeout=30, interval=0.5)
    claims = await kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    assert "claim-alice" in {c["metadata"]["name"] for c in claims["items"]}  # her home stays

    # The GPU quota (1 in ML Team) is free again.
    await launch(hub, "alice", "gpu2", "gpu-1")

    async with httpx.AsyncClient(timeout=30) as http:
        await oauth_login(http, hub.url, "alice")
        home = html.unescape((await http.get(f"{hub.url}/hub/home")).text)
    assert (
        f"stopped after {GPU_TIMEOUT} s without activity (the idle timeout of instance type GPU 1)"
        in home
    )
    assert "stopped after 1 min without activity (the idle timeout of this hub)" in home
