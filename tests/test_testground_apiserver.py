"""The test ground's API server is the real kube-apiserver: validation, RBAC and version as Kubernetes does them."""

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import new_client_from_config

from devstack.ground import TestGround

pytestmark = pytest.mark.cluster


@pytest.fixture
async def core(test_ground: TestGround):
    api_client = await new_client_from_config(config_file=str(test_ground.kubeconfig))
    async with api_client:
        yield client.CoreV1Api(api_client)


async def test_version_is_the_real_v1_20_2(test_ground: TestGround):
    api_client = await new_client_from_config(config_file=str(test_ground.kubeconfig))
    async with api_client:
        version = await client.VersionApi(api_client).get_code()
    assert version.git_version == "v1.20.2"
    assert version.go_version.startswith("go1.19")


def _pod(name: str, volume_name: str = "home", container: str = "notebook") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": container,
                    "image": "jupyter/base-notebook",
                    "command": ["true"],
                    "volumeMounts": [{"name": volume_name, "mountPath": "/home/jovyan"}],
                }
            ],
            "volumes": [{"name": volume_name, "emptyDir": {}}],
        },
    }


@pytest.mark.parametrize(
    ("pod", "fragment"),
    [
        (_pod("upper-volume", volume_name="Home"), "a lowercase RFC 1123 label must consist of"),
        (_pod("long-volume", volume_name="v" * 64), "must be no more than 63 characters"),
        (_pod("long-container", container="c" * 64), "must be no more than 63 characters"),
        (_pod("Bad_Name"), "a lowercase RFC 1123 subdomain must consist of"),
        (_pod("x" * 254), "must be no more than 253 characters"),
    ],
    ids=[
        "uppercase-volume-name",
        "64-char-volume-name",
        "64-char-container-name",
        "invalid-pod-name",
        "254-char-pod-name",
    ],
)
async def test_invalid_pods_are_rejected_422(core, namespace, pod, fragment):
    with pytest.raises(ApiException) as raised:
        await core.create_namespaced_pod(namespace, pod)
    assert raised.value.status == 422
    assert fragment in raised.value.body


async def test_pod_names_are_subdomains_so_64_characters_are_accepted(core, namespace):
    created = await core.create_namespaced_pod(namespace, _pod("x" * 64))
    assert len(created.metadata.name) == 64


async def test_rbac_denies_a_token_without_rights(test_ground: TestGround, namespace):
    api_client = await new_client_from_config(
        config_file=str(test_ground.kubeconfig), context="developer"
    )
    async with api_client:
        with pytest.raises(ApiException) as raised:
            await client.CoreV1Api(api_client).list_namespaced_pod(namespace)
    assert raised.value.status == 403


async def test_kubeconfig_works_for_kubectl(test_ground: TestGround):
    import asyncio
    import shutil

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    process = await asyncio.create_subprocess_exec(
        kubectl,
        "--kubeconfig",
        str(test_ground.kubeconfig),
        "get",
        "nodes",
        "-o",
        "name",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert set(out.decode().split()) == {"node/cpu-node", "node/gpu-node"}
