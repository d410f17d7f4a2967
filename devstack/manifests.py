"""Installing the project's CRDs and applying YAML manifests on the test ground (raw API calls)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from .kubeapi import ApiError, KubeAPI

ROOT = Path(__file__).resolve().parent.parent
CRD_DIR = ROOT / "share" / "crds"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
PLURALS = {"InstanceType": "instancetypes", "Image": "images", "Dataset": "datasets"}


async def install_crds(api: KubeAPI, directory: Path = CRD_DIR, timeout: float = 10) -> list[str]:
    """Create (or replace) every CRD in ``directory`` and wait until each is Established."""
    names = []
    for path in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        name = crd["metadata"]["name"]
        try:
            await api.post(CRD_PATH, crd)
        except ApiError as error:
            if error.status != 409:
                raise
            current = await api.get(f"{CRD_PATH}/{name}")
            crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            await api.request("PUT", f"{CRD_PATH}/{name}", crd)
        names.append(name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for name in names:
        while True:
            status = (await api.get(f"{CRD_PATH}/{name}")).get("status") or {}
            conditions = status.get("conditions") or []  # null right after a replace
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                break
            if loop.time() > deadline:
                raise TimeoutError(f"CRD {name} not established after {timeout}s")
            await asyncio.sleep(0.05)
    return names


def custom_object_path(obj: dict[str, Any], namespace: str) -> str:
    group_version = obj["apiVersion"]
    return f"/apis/{group_version}/namespaces/{namespace}/{PLURALS[obj['kind']]}"


async def apply_file(api: KubeAPI, path: Path, namespace: str) -> list[dict[str, Any]]:
    """Create every primehub.io object of a multi-document YAML file in ``namespace``."""
    created = []
    for obj in yaml.safe_load_all(path.read_text()):
        if obj:
            created.append(await api.post(custom_object_path(obj, namespace), obj))
    return created
