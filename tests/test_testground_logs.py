"""Container logs through the real API server, which proxies ``pods/log`` to the local kubelet."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import new_client_from_config

from devstack.ground import TestGround
from devstack.testing import eventually
from tests.kubelet_pods import create, pod_body, read, run_to_end

pytestmark = pytest.mark.cluster


def message(error: ApiException) -> str:
    """The message of the API server's Status in an error."""
    return json.loads(error.body)["message"]


@pytest.fixture
async def core(test_ground: TestGround):
    """kubernetes_asyncio's CoreV1Api as cluster admin (what the product reads logs with)."""
    api_client = await new_client_from_config(config_file=str(test_ground.kubeconfig))
    async with api_client:
        yield client.CoreV1Api(api_client)


async def test_logs_of_an_ended_container_through_the_api_server(kube, namespace, core):
    body = pod_body("printer", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; exit 3")
    pod = await run_to_end(kube, namespace, body)
    assert pod["status"]["phase"] == "Failed"  # ended, still there: its log can be read
    tail = await core.read_namespaced_pod_log("printer", namespace, container="main", tail_lines=2)
    assert tail == "line 5\noops\n"
    whole = await core.read_namespaced_pod_log("printer", namespace)  # the only container
    assert whole == "".join(f"line {i}\n" for i in range(1, 6)) + "oops\n"
    assert await core.read_namespaced_pod_log("printer", namespace, limit_bytes=9) == "line 1\nli"
    assert await core.read_namespaced_pod_log("printer", namespace, tail_lines=0) == ""
    with pytest.raises(ApiException) as raised:  # it never restarted
        await core.read_namespaced_pod_log("printer", namespace, previous=True)
    assert raised.value.status == 400
    assert (
        message(raised.value) == 'previous terminated container "main" in pod "printer" not found'
    )


async def test_logs_of_a_running_container(kube, namespace, core):
    await create(kube, namespace, pod_body("talker", "echo hello; echo world; exec sleep 60"))

    async def greeted():
        pod = await read(kube, namespace, "talker")
        if pod["status"].get("phase") != "Running":
            return None
        return await core.read_namespaced_pod_log("talker", namespace, tail_lines=1) == "world\n"

    assert await eventually(greeted, what="the running container's last line")


async def test_unknown_container_and_container_that_never_started(kube, namespace, core):
    with pytest.raises(ApiException) as raised:
        await core.read_namespaced_pod_log("absent", namespace)
    assert raised.value.status == 404
    body = pod_body("waiting", "true")
    body["spec"]["containers"][0]["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "never", "key": "token"}}}
    ]
    await create(kube, namespace, body)
    with pytest.raises(ApiException) as raised:
        await core.read_namespaced_pod_log("waiting", namespace, container="nope")
    assert raised.value.status == 400  # the API server checks the name against the pod

    async def config_error():
        pod = await read(kube, namespace, "waiting")
        statuses = pod["status"].get("containerStatuses") or [{}]
        waiting = statuses[0].get("state", {}).get("waiting", {})
        return waiting.get("reason") == "CreateContainerConfigError"

    await eventually(config_error, what="CreateContainerConfigError")
    with pytest.raises(ApiException) as raised:  # the kubelet's answer, passed on
        await core.read_namespaced_pod_log("waiting", namespace, container="main")
    assert raised.value.status == 400
    assert message(raised.value) == (
        'container "main" in pod "waiting" is waiting to start: CreateContainerConfigError'
    )


async def test_reading_logs_needs_the_pods_log_permission(kube, namespace, test_ground):
    await run_to_end(kube, namespace, pod_body("secretive", "echo private"))
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    await kube.post(
        f"{rbac}/roles",
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    await kube.post(
        f"{rbac}/rolebindings",
        {
            "metadata": {"name": "developer-reads-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "User", "name": "developer"}],
        },
    )
    api_client = await new_client_from_config(
        config_file=str(test_ground.kubeconfig), context="developer"
    )
    async with api_client:
        developer = client.CoreV1Api(api_client)

        async def may_read_the_pod():
            try:
                return await developer.read_namespaced_pod("secretive", namespace)
            except ApiException as error:
                if error.status != 403:
                    raise
                return None

        await eventually(may_read_the_pod, what="the role binding in force")
        with pytest.raises(ApiException) as raised:
            await developer.read_namespaced_pod_log("secretive", namespace)
        assert raised.value.status == 403
        assert 'cannot get resource "pods/log"' in message(raised.value)
        await kube.patch(
            f"{rbac}/roles/pod-reader",
            {"rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get"]}]},
        )

        async def log_granted():
            try:
                return await developer.read_namespaced_pod_log("secretive", namespace)
            except ApiException as error:
                if error.status != 403:
                    raise
                return None

        assert await eventually(log_granted, what="pods/log granted") == "private\n"


async def test_the_kubelet_endpoint_wants_a_client_certificate(kube, test_ground):
    node = await kube.get("/api/v1/nodes/cpu-node")
    port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    assert port > 0
    assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]
    pki = test_ground.cluster.pki
    url = f"https://127.0.0.1:{port}/healthz"

    def get(with_certificate: bool) -> str:
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        if with_certificate:
            context.load_cert_chain(str(pki.kubelet_client_cert), str(pki.kubelet_client_key))
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return response.read().decode()

    assert await asyncio.to_thread(get, True) == "ok"
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        await asyncio.to_thread(get, False)
