"""The Kubernetes API server stopped and restarted under a running hub.

These tests stop an API server, so they run on a test ground of their own (the session's is shared
by every other test). The hub is a real JupyterHub process with the plugin; the outages are real
(the kube-apiserver process is killed, etcd keeps the state) and short enough for KubeSpawner's pod
reflector, which halts the hub after about 50 s without the API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import yaml

from devstack.demo_hub import CLAIMS, prepare_namespace
from devstack.ground import TestGround
from devstack.hub import HubProcess
from devstack.kubeapi import KubeAPI
from devstack.manifests import install_crds
from devstack.testing import cluster_admin, eventually, started_ground
from devstack.toxiproxy import Proxy
from tests.hub_stack import browser_session, log_in, primehub_config, spawn_counts

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

OUTAGE = 5.0  # seconds without an API server, well inside KubeSpawner's reflector back-off
LATENCY = 4.0  # seconds the API server's answers take through Toxiproxy
CRD_API = "/apis/primehub.io/v1alpha1/namespaces"


@pytest.fixture(scope="module")
def private_ground() -> Iterator[TestGround]:
    with started_ground("faults-") as ground:
        yield ground


@pytest.fixture
async def private_kube(private_ground: TestGround) -> AsyncIterator[KubeAPI]:
    async with cluster_admin(private_ground) as api:
        yield api


@contextlib.asynccontextmanager
async def running_hub(
    ground: TestGround, kube: KubeAPI, realm, directory, kubeconfig, extra: str = ""
) -> AsyncIterator[HubProcess]:
    """The plugin's hub on ``ground`` (reached through ``kubeconfig``), alice logged in;
    ``extra``: more configuration."""
    namespace = f"faults-{secrets.token_hex(3)}"
    await install_crds(kube)
    await prepare_namespace(kube, namespace)
    hub = HubProcess(directory, environment={"KUBECONFIG": str(kubeconfig)})
    hub.namespace = namespace
    hub.config = primehub_config(hub, realm, namespace) + "\n" + extra
    hub.start()
    try:
        await log_in(hub, "alice")
        yield hub
    finally:
        hub.stop()
        if not ground.cluster.running():
            ground.cluster.start_apiserver()


@pytest.fixture
async def hub(private_ground, private_kube, realm, tmp_path) -> AsyncIterator[HubProcess]:
    async with running_hub(
        private_ground, private_kube, realm, tmp_path / "hub", private_ground.kubeconfig
    ) as hub:
        yield hub


@contextlib.asynccontextmanager
async def hub_through_a_proxy(
    ground: TestGround, kube: KubeAPI, realm, toxiproxy, directory, extra: str = ""
) -> AsyncIterator[tuple[HubProcess, Proxy]]:
    """The hub reaching the API server through Toxiproxy (TLS passes through, to 127.0.0.1)."""
    proxy = toxiproxy.proxy(urllib.parse.urlsplit(ground.cluster.server).netloc)
    config = yaml.safe_load(ground.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = directory / "kubeconfig"
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text(yaml.safe_dump(config))
    try:
        # Requests may take LATENCY and more before KubeSpawner gives up on one.
        extra = f"c.KubeSpawner.k8s_api_request_timeout = {3 * LATENCY}\n{extra}"
        async with running_hub(ground, kube, realm, directory / "hub", kubeconfig, extra) as hub:
            yield hub, proxy
    finally:
        proxy.delete()


@pytest.fixture
async def hub_behind_a_proxy(
    private_ground, private_kube, realm, toxiproxy, tmp_path
) -> AsyncIterator[tuple[HubProcess, Proxy]]:
    async with hub_through_a_proxy(
        private_ground, private_kube, realm, toxiproxy, tmp_path
    ) as pair:
        yield pair


@contextlib.asynccontextmanager
async def api_server_down(ground: TestGround, seconds: float = OUTAGE) -> AsyncIterator[None]:
    """Kill the API server (as a crash would), run the body, start it again ``seconds`` later."""
    ground.cluster.stop_apiserver(grace=0)
    started = time.monotonic()
    try:
        yield
    finally:
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
        ground.cluster.start_apiserver()  # not in a thread: it would die with it


async def names(kube: KubeAPI, namespace: str, kind: str) -> list[str]:
    items = (await kube.get(f"/api/v1/namespaces/{namespace}/{kind}"))["items"]
    return sorted(item["metadata"]["name"] for item in items)


async def server_ready(hub: HubProcess, server: str = "") -> bool:
    status, model = await asyncio.to_thread(hub.api, "GET", "users/alice")
    return status == 200 and (model["servers"].get(server) or {}).get("ready", False)


async def assert_one_clean_server(hub: HubProcess, kube: KubeAPI) -> None:
    """alice's server answers through the proxy; one pod, and no claim beyond the expected ones."""
    await eventually(lambda: server_ready(hub), timeout=60, interval=0.5, what="alice's server")
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{hub.url}/user/alice/")
    assert answer.headers["server"].startswith("SimpleHTTP"), answer  # the pod's http.server
    assert await names(kube, hub.namespace, "pods") == ["jupyter-alice"]
    assert await names(kube, hub.namespace, "persistentvolumeclaims") == sorted(
        [*CLAIMS, "claim-alice"]
    )


def counted(hub: HubProcess) -> dict[str, float]:
    return {outcome: count for outcome, count in spawn_counts(hub).items() if count}


@pytest.mark.reliability("faults")
async def test_a_launch_while_the_api_server_is_down_is_a_clear_503(
    hub, private_ground, private_kube
):
    async with api_server_down(private_ground), browser_session(hub, "alice") as http:
        page = await http.get(f"{hub.url}/hub/spawn")
        status, body = await asyncio.to_thread(
            hub.api, "POST", "users/alice/server", {"user_options": {}}
        )
    assert page.status_code == 503 and "The Kubernetes API is unavailable" in page.text
    assert status == 503, body
    assert body["message"].startswith("The Kubernetes API is unavailable, so checking the launch")
    assert counted(hub) == {"failure/kubernetes_unavailable": 1}
    # Once the API server is back, the same hub launches (its pod watch is started over).
    status, body = await asyncio.to_thread(
        hub.api, "POST", "users/alice/server", {"user_options": {}}
    )
    assert status in (201, 202), body
    await assert_one_clean_server(hub, private_kube)


@pytest.mark.reliability("faults")
async def test_an_outage_in_the_middle_of_a_spawn_is_ridden_out(hub, private_ground, private_kube):
    spawn = asyncio.ensure_future(
        asyncio.to_thread(hub.api, "POST", "users/alice/server", {"user_options": {}})
    )
    await eventually(
        lambda: names(private_kube, hub.namespace, "pods"), interval=0.02, what="the pod"
    )
    async with api_server_down(private_ground):  # the pod exists; the hub waits for it to run
        pass
    status, body = await spawn
    assert status in (201, 202), body
    await assert_one_clean_server(hub, private_kube)
    assert counted(hub) == {"success/": 1}
    assert "Error when watching resources, retrying" in hub.full_log()  # the outage reached the hub


@pytest.mark.reliability("faults")
async def test_the_api_server_dropping_the_pods_create_request_is_ridden_out(
    hub_behind_a_proxy, private_kube
):
    """The API server stores the pod, and the connection breaks before its answer reaches the hub
    (an API server dying mid-request): the spawn completes with one pod."""
    hub, proxy = hub_behind_a_proxy
    proxy.latency(LATENCY)  # every answer reaches the hub this late: time to cut the connection
    spawn = asyncio.ensure_future(
        asyncio.to_thread(hub.api, "POST", "users/alice/server", {"user_options": {}})
    )
    await eventually(  # after several slow calls (claims read and created)
        lambda: names(private_kube, hub.namespace, "pods"),
        timeout=90,
        interval=0.02,
        what="the pod",
    )
    proxy.disable()  # the pod is stored; the answer to its create is still on the way
    await asyncio.sleep(2)
    proxy.replace()  # back, without the latency
    status, body = await spawn
    assert status in (201, 202), body
    assert "the Kubernetes API failed while creating the pod" in hub.full_log()
    await assert_one_clean_server(hub, private_kube)
    assert counted(hub) == {"success/": 1}


@pytest.mark.reliability("faults")
async def test_the_api_server_gone_before_the_pod_is_created_is_a_clean_503(
    private_ground, private_kube, realm, toxiproxy, tmp_path
):
    """The API server becomes unreachable while the spawn creates the home claim and the pod, and
    stays away longer than KubeSpawner tries again: a 503 naming the Kubernetes API (not a 500),
    counted as such, no pod; the same hub launches once it is back."""
    extra = "\n".join(
        [
            "c.KubeSpawner.k8s_api_request_retry_timeout = 8",
            "c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 120}",  # the POST gets the outcome
        ]
    )
    async with hub_through_a_proxy(
        private_ground, private_kube, realm, toxiproxy, tmp_path, extra
    ) as (hub, proxy):
        proxy.latency(LATENCY)

        async def launch() -> httpx.Response:  # slower than HubProcess.api's 30 s
            async with httpx.AsyncClient(timeout=150) as http:
                return await http.post(
                    f"{hub.url}/hub/api/users/alice/server",
                    json={"user_options": {}},
                    headers={"Authorization": f"token {hub.api_token}"},
                )

        spawn = asyncio.ensure_future(launch())

        async def claim_stored():
            return "claim-alice" in await names(
                private_kube, hub.namespace, "persistentvolumeclaims"
            )

        await eventually(claim_stored, timeout=90, interval=0.02, what="the home claim")
        proxy.disable()  # before the pod's create request: it never reaches the API server
        response = await spawn
        proxy.replace()
        status, body = response.status_code, response.json()
        assert status == 503, body
        assert body["message"].startswith("The Kubernetes API is unavailable, so creating the")
        assert await names(private_kube, hub.namespace, "pods") == []
        assert counted(hub) == {"failure/kubernetes_unavailable": 1}
        status, body = await asyncio.to_thread(
            hub.api, "POST", "users/alice/server", {"user_options": {}}
        )
        assert status in (201, 202), body
        await assert_one_clean_server(hub, private_kube)


@pytest.mark.reliability("faults")
async def test_the_hubs_watches_resume_after_the_api_server_restarts(
    hub, private_ground, private_kube
):
    status, body = await asyncio.to_thread(
        hub.api, "POST", "users/alice/server", {"user_options": {}}
    )
    assert status in (201, 202), body
    await eventually(lambda: server_ready(hub), timeout=60, interval=0.5, what="alice's server")
    async with api_server_down(private_ground):
        pass
    # The catalog's watch sees a change made after the restart ...
    await private_kube.patch(
        f"{CRD_API}/{hub.namespace}/instancetypes/cpu-1",
        {"spec": {"displayName": "CPU 1, renamed after the restart"}},
    )

    async def form_shows_the_new_name() -> bool:
        async with browser_session(hub, "alice") as http:
            page = await http.get(f"{hub.url}/hub/spawn/alice/second")
        return "CPU 1, renamed after the restart" in page.text

    await eventually(form_shows_the_new_name, timeout=30, interval=1, what="the renamed type")
    # ... and the pod watch sees the pod go: stopping completes, and a new launch works.
    status, _ = await asyncio.to_thread(hub.api, "DELETE", "users/alice/server")
    assert status in (202, 204)
    await eventually(lambda: _stopped(hub), timeout=30, interval=0.5, what="the server to stop")
    assert await names(private_kube, hub.namespace, "pods") == []
    status, body = await asyncio.to_thread(
        hub.api, "POST", "users/alice/server", {"user_options": {}}
    )
    assert status in (201, 202), body
    await assert_one_clean_server(hub, private_kube)
    assert "gave up" not in hub.full_log()


async def _stopped(hub: HubProcess) -> bool:
    status, model = await asyncio.to_thread(hub.api, "GET", "users/alice")
    return status == 200 and "" not in model["servers"]
