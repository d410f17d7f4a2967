"""KubeSpawner 7, unmodified, drives a server's whole life on the test ground."""

from __future__ import annotations

import asyncio
import sys
import urllib.request
from unittest import mock

import pytest
from jupyterhub.objects import Hub, Server
from traitlets.config import Config

from devstack.kubeapi import KubeAPI
from devstack.testing import eventually

pytestmark = pytest.mark.cluster


class FakeUser(mock.Mock):
    """The parts of jupyterhub.user.User a spawner reads, without a hub database."""

    name = "alice"
    server = Server()

    @property
    def escaped_name(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
async def kubespawner_class(test_ground):
    from kubespawner import KubeSpawner

    yield KubeSpawner
    await KubeSpawner._stop_all_reflectors()


async def test_kubespawner_start_poll_stop_round_trip(kubespawner_class, kube: KubeAPI, namespace):
    config = Config()
    config.KubeSpawner.namespace = namespace
    config.KubeSpawner.start_timeout = 30
    config.KubeSpawner.cmd = [sys.executable, "-m", "http.server", "8888"]
    config.KubeSpawner.storage_pvc_ensure = True
    config.KubeSpawner.pvc_name_template = "claim-{username}"
    config.KubeSpawner.storage_capacity = "1Gi"
    config.KubeSpawner.volumes = [
        {"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}}
    ]
    config.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    config.KubeSpawner.node_selector = {"component": "singleuser-server"}

    spawner = kubespawner_class(
        hub=Hub(),
        user=FakeUser(),
        config=config,
        api_token="token",
        oauth_client_id="jupyterhub-user-alice",
    )
    starting = asyncio.ensure_future(spawner.start())
    messages = [event["message"] async for event in spawner.progress()]
    url = await starting
    pod = await kube.get(f"/api/v1/namespaces/{namespace}/pods/{spawner.pod_name}")
    assert url == f"http://{pod['status']['podIP']}:8888"
    assert pod["spec"]["nodeName"] == "cpu-node"
    assert await spawner.poll() is None

    def fetch() -> int:
        return urllib.request.urlopen(url, timeout=2).status

    async def serving():
        try:
            return await asyncio.to_thread(fetch)
        except OSError:
            return None

    assert await eventually(serving, what="the server answering") == 200
    claim = await kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/claim-alice")
    assert claim["status"]["phase"] == "Bound"
    # KubeSpawner's progress stream (the hub's spawn page) shows the events of the scheduler and kubelet.
    assert any(
        f"Successfully assigned {namespace}/{spawner.pod_name} to cpu-node" in m for m in messages
    )
    assert any("Started container notebook" in m for m in messages), messages

    await spawner.stop()
    assert await kube.get_or_none(f"/api/v1/namespaces/{namespace}/pods/{spawner.pod_name}") is None
    assert await spawner.poll() == 1
