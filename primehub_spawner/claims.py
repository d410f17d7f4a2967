"""Volume claims a launch needs: which exist, what to leave out, and the home claim's own name.

A launch mounts claims that others create (group volumes, pv datasets, PHFS): a missing one is left
out with a warning rather than a pod that never starts. The home claim is the server's own: its
name comes from ``pvc_name_template`` (``claim-{user_server}``: ``claim-<user>`` for the default
server, ``claim-<user>--<server>`` for a named one, KubeSpawner's collision-free slugs) and the
spawner creates it again at a start where it has gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from .volumes import PodVolumes

HOME_CLAIM_TEMPLATE = "claim-{user_server}"


async def missing_claims(api: Any, namespace: str, names: Iterable[str]) -> set[str]:
    """The claims among ``names`` that do not exist in ``namespace`` (read concurrently)."""

    async def exists(claim: str) -> bool:
        try:
            await api.read_namespaced_persistent_volume_claim(claim, namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            return False
        return True

    claims = list(dict.fromkeys(names))
    found = await asyncio.gather(*(exists(claim) for claim in claims))
    return {claim for claim, present in zip(claims, found, strict=True) if not present}


def drop_missing(pod: PodVolumes, missing: set[str]) -> list[str]:
    """Leave out the volumes whose claim is missing, their mounts and the links into them; the
    warnings that say so."""
    warnings = []
    for claim, what in list(pod.claims.items()):
        if claim not in missing:
            continue
        dropped = {
            v["name"]
            for v in pod.volumes
            if (v.get("persistentVolumeClaim") or {}).get("claimName") == claim
        }
        paths = {m["mountPath"] for m in pod.mounts if m["name"] in dropped}
        pod.volumes = [v for v in pod.volumes if v["name"] not in dropped]
        pod.mounts = [m for m in pod.mounts if m["name"] not in dropped]
        pod.links = [
            (target, link)
            for target, link in pod.links
            if not any(target == p or target.startswith(p + "/") for p in paths)
        ]
        warnings.append(f"{what} is not mounted: its volume claim {claim} does not exist")
    return warnings
