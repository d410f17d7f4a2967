"""The parts of kube-controller-manager the test ground needs: a PV binder and namespace deletion."""

from __future__ import annotations

import asyncio
import logging
import shutil
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from ..kubeapi import MERGE_PATCH, ApiError, KubeAPI
from .volumes import PROVISIONED_ROOT, PROVISIONER, VolumeLayout

log = logging.getLogger("devstack.kubelet.controllers")


def _storage(obj: dict[str, Any], where: str) -> Decimal:
    resources = obj["spec"].get(where) or {}
    if where == "resources":
        resources = resources.get("requests") or {}
    return parse_quantity(resources.get("storage", "0"))


def volume_fits(volume: dict[str, Any], claim: dict[str, Any]) -> bool:
    """An Available PV that satisfies the claim's class, access modes, size and label selector."""
    spec, wanted = volume["spec"], claim["spec"]
    if spec.get("claimRef") or (volume.get("status") or {}).get("phase") not in (None, "Available"):
        return False
    if (spec.get("storageClassName") or "") != (wanted.get("storageClassName") or ""):
        return False
    if not set(wanted.get("accessModes") or ()) <= set(spec.get("accessModes") or ()):
        return False
    if _storage(volume, "capacity") < _storage(claim, "resources"):
        return False
    labels = volume["metadata"].get("labels") or {}
    selector = (wanted.get("selector") or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


class VolumeBinder:
    """Binds each claim to a matching PV, or provisions a host-directory PV for it."""

    def __init__(self, api: KubeAPI, layout: VolumeLayout) -> None:
        self.api = api
        self.layout = layout
        self._lock = asyncio.Lock()

    async def claim_changed(self, kind: str, claim: dict[str, Any]) -> None:
        async with self._lock:
            try:
                if kind == "DELETED":
                    await self._release(claim)
                elif (claim.get("status") or {}).get("phase") != "Bound" and not claim[
                    "metadata"
                ].get("deletionTimestamp"):
                    await self._bind(claim)
            except ApiError as error:
                log.warning("claim %s: %s", claim["metadata"]["name"], error)

    async def _bind(self, claim: dict[str, Any]) -> None:
        meta = claim["metadata"]
        volume_name = claim["spec"].get("volumeName")
        if volume_name:
            volume = await self.api.get_or_none(f"/api/v1/persistentvolumes/{volume_name}")
            if volume is None:
                return  # stays Pending until an admin creates it, as with a real PV controller
        else:
            volumes = (await self.api.get("/api/v1/persistentvolumes"))["items"]
            candidates = sorted(
                (v for v in volumes if volume_fits(v, claim)), key=lambda v: _storage(v, "capacity")
            )
            volume = candidates[0] if candidates else await self._provision(claim)
        claim_ref = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        }
        await self.api.patch(
            f"/api/v1/persistentvolumes/{volume['metadata']['name']}",
            {"spec": {"claimRef": claim_ref}},
        )
        await self.api.patch(
            f"/api/v1/persistentvolumes/{volume['metadata']['name']}/status",
            {"status": {"phase": "Bound"}},
        )
        base = f"/api/v1/namespaces/{meta['namespace']}/persistentvolumeclaims/{meta['name']}"
        await self.api.patch(
            base,
            {
                "metadata": {
                    "annotations": {
                        "pv.kubernetes.io/bind-completed": "yes",
                        "pv.kubernetes.io/bound-by-controller": "yes",
                    }
                },
                "spec": {"volumeName": volume["metadata"]["name"]},
            },
            MERGE_PATCH,
        )
        await self.api.patch(
            f"{base}/status",
            {
                "status": {
                    "phase": "Bound",
                    "accessModes": volume["spec"].get("accessModes")
                    or claim["spec"].get("accessModes"),
                    "capacity": volume["spec"].get("capacity") or {},
                }
            },
        )

    async def _provision(self, claim: dict[str, Any]) -> dict[str, Any]:
        name = f"pvc-{claim['metadata']['uid']}"
        requested = (claim["spec"].get("resources") or {}).get("requests", {}).get("storage", "1Gi")
        body = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": name,
                "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
            },
            "spec": {
                "capacity": {"storage": requested},
                "accessModes": claim["spec"].get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": claim["spec"].get("storageClassName") or "",
                "hostPath": {"path": f"{PROVISIONED_ROOT}/{name}", "type": "DirectoryOrCreate"},
            },
        }
        try:
            return await self.api.post("/api/v1/persistentvolumes", body)
        except ApiError as error:
            if error.status != 409:
                raise
            return await self.api.get(f"/api/v1/persistentvolumes/{name}")

    async def _release(self, claim: dict[str, Any]) -> None:
        for volume in (await self.api.get("/api/v1/persistentvolumes"))["items"]:
            ref = volume["spec"].get("claimRef") or {}
            if ref.get("uid") != claim["metadata"]["uid"]:
                continue
            name = volume["metadata"]["name"]
            annotations = volume["metadata"].get("annotations") or {}
            if (
                volume["spec"].get("persistentVolumeReclaimPolicy") == "Delete"
                and annotations.get("pv.kubernetes.io/provisioned-by") == PROVISIONER
            ):
                await self.api.delete(f"/api/v1/persistentvolumes/{name}")
                shutil.rmtree(
                    self.layout.host_path(volume["spec"]["hostPath"]["path"]), ignore_errors=True
                )
            else:
                await self.api.patch(
                    f"/api/v1/persistentvolumes/{name}/status", {"status": {"phase": "Released"}}
                )


NAMESPACED_CORE = (
    "pods",
    "persistentvolumeclaims",
    "secrets",
    "configmaps",
    "services",
    "serviceaccounts",
    "endpoints",
    "events",
    "limitranges",
    "resourcequotas",
)


class NamespaceFinalizer:
    """Empties a terminating namespace (pods end through their kubelet) and then finalizes it."""

    def __init__(self, api: KubeAPI) -> None:
        self.api = api
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def namespace_changed(self, kind: str, namespace: dict[str, Any]) -> None:
        name = namespace["metadata"]["name"]
        if kind == "DELETED" or (namespace.get("status") or {}).get("phase") != "Terminating":
            return
        if name in self._busy:
            return
        self._busy.add(name)
        task = asyncio.create_task(self._finalize(name), name=f"finalize namespace {name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finalize(self, name: str) -> None:
        try:
            for attempt in range(600):
                remaining = await self._delete_contents(name)
                if not remaining:
                    break
                await asyncio.sleep(0.5 if attempt < 20 else 2.0)
            namespace = await self.api.get_or_none(f"/api/v1/namespaces/{name}")
            if namespace is not None:
                namespace["spec"]["finalizers"] = []
                await self.api.request("PUT", f"/api/v1/namespaces/{name}/finalize", namespace)
        except ApiError as error:
            log.warning("namespace %s not finalized: %s", name, error)
        finally:
            self._busy.discard(name)

    async def _delete_contents(self, name: str) -> int:
        remaining = 0
        paths = [f"/api/v1/namespaces/{name}/{plural}" for plural in NAMESPACED_CORE]
        definitions = await self.api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        for crd in definitions["items"]:
            if crd["spec"]["scope"] == "Namespaced":
                group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
                for version in crd["spec"]["versions"]:
                    if version.get("served"):
                        paths.append(f"/apis/{group}/{version['name']}/namespaces/{name}/{plural}")
                        break
        for path in paths:
            try:
                items = (await self.api.get(path))["items"]
            except ApiError:
                continue
            if items:
                remaining += len(items)
                await self.api.delete(path)
        return remaining
