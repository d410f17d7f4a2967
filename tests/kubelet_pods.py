"""Pods on the test ground for its tests: bodies, creation, waiting for phases, events."""

from __future__ import annotations

from typing import Any

from devstack.kubeapi import KubeAPI
from devstack.testing import eventually


def pod_body(
    name: str, script: str, *, volumes=(), mounts=(), restart="Never", **container: Any
) -> dict:
    spec: dict[str, Any] = {
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 5,
        "containers": [
            {
                "name": "main",
                "image": "busybox",
                "command": ["/bin/sh", "-c", script],
                "volumeMounts": list(mounts),
                **container,
            }
        ],
        "volumes": list(volumes),
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def create(kube: KubeAPI, namespace: str, body: dict) -> dict:
    return await kube.post(f"/api/v1/namespaces/{namespace}/pods", body)


async def read(kube: KubeAPI, namespace: str, name: str) -> dict | None:
    return await kube.get_or_none(f"/api/v1/namespaces/{namespace}/pods/{name}")


async def wait_phase(
    kube: KubeAPI, namespace: str, name: str, *phases: str, timeout: float = 30
) -> dict:
    async def probe():
        pod = await read(kube, namespace, name)
        return pod if pod and pod["status"].get("phase") in phases else None

    return await eventually(probe, timeout, what=f"pod {name} in {phases}")


async def run_to_end(kube: KubeAPI, namespace: str, body: dict) -> dict:
    """Create the pod and wait until it has Succeeded or Failed."""
    created = await create(kube, namespace, body)
    return await wait_phase(kube, namespace, created["metadata"]["name"], "Succeeded", "Failed")


async def events_for(kube: KubeAPI, namespace: str, name: str) -> list[dict]:
    """Events of one object in creation order (timestamps have one-second resolution; etcd revisions
    order events that were never updated)."""
    listing = await kube.get(
        f"/api/v1/namespaces/{namespace}/events", fieldSelector=f"involvedObject.name={name}"
    )
    return sorted(listing["items"], key=lambda e: int(e["metadata"]["resourceVersion"]))


def exit_code(pod: dict, container: str = "main") -> int:
    status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == container)
    return status["state"]["terminated"]["exitCode"]
