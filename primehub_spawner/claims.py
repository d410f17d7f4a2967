"""Volume claims a launch needs: which exist, what to leave out, and the home claim's own name.

A launch mounts claims that others create (group volumes, pv datasets, PHFS): a missing one is left
out with a warning rather than a pod that never starts. The home claim is the server's own: its
name comes from ``pvc_name_template``: by default ``claim-<user>`` for all her servers (one home
per user, as in PrimeHub), or with ``home_per_server`` ``claim-{user_server}`` (``claim-<user>``
for the default server, ``claim-<user>--<server>`` for a named one, KubeSpawner's collision-free
slugs). A claim that KubeSpawner's annotations say is another user's (another server's, with a
home per server) is never mounted, and one that has gone is created again at the next start.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from jupyterhub.spawner import SpawnException
from kubernetes_asyncio.client.exceptions import ApiException

from .volumes import GROUP_VOLUME_PATH, PHFS_PATH, PodVolumes, claim_of

SHARED_HOME_TEMPLATE = "claim-{username}"  # one home per user, every server mounts it
PER_SERVER_HOME_TEMPLATE = "claim-{user_server}"  # claim-<user>, claim-<user>--<server>
_SERVER_FIELDS = ("{servername}", "{user_server}", "{unescaped_servername}")
USER_ANNOTATION = "hub.jupyter.org/username"
SERVER_ANNOTATION = "hub.jupyter.org/servername"


class HomeClaimTaken(SpawnException):
    """The claim this server's template names belongs to another server: nothing is started."""

    def __init__(self, claim: str, owner: str) -> None:
        super().__init__(
            f"The home volume claim {claim} belongs to another server, so this server cannot "
            "start; an administrator must rename one of the claims.",
            reason="home_claim_taken",
            status_code=409,
            log_message=f"home claim {claim} belongs to {owner}",
        )


def owner_of(claim: Any, per_server: bool = True) -> str | None:
    """``user`` or (``per_server``) ``user/server`` as KubeSpawner annotated the claim; None when
    there is no claim or it is unannotated (made before KubeSpawner annotated claims, or by an
    administrator)."""
    if claim is None:
        return None
    annotations = (claim.get("metadata") or {}).get("annotations") or {}
    user = annotations.get(USER_ANNOTATION)
    if user is None:
        return None
    server = (annotations.get(SERVER_ANNOTATION) or "") if per_server else ""
    return f"{user}/{server}" if server else user


async def read_claim(api: Any, namespace: str, name: str) -> dict[str, Any] | None:
    """The claim ``name`` as the API server's JSON, None if it does not exist. (Not the client's
    model objects: building those took more of the hub's loop than the rest of a launch's checks.)"""
    response = await api.read_namespaced_persistent_volume_claim(
        name, namespace, _preload_content=False
    )
    async with response:
        if response.status == 404:
            return None
        body = await response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(status=response.status, reason=response.reason)
    return json.loads(body)


async def settle_home_claim(spawner: Any) -> tuple[list[str], Any]:
    """Make the claim this start mounts the server's own; the warnings that say what changed, and
    that claim as read (None when this start creates it).

    A claim named by the current template but annotated for another server is a 409 (e.g. a
    PrimeHub-era ``claim-john-2edoe`` of ``john.doe`` for the user ``john-2edoe``); one remembered
    from an earlier template (KubeSpawner keeps the name in the server's state) that is another's
    gives way to the template's name; one remembered but gone is created again. KubeSpawner's own
    adoption of a pre-7 ``escape``-scheme name is stopped when that claim is another's.
    """
    per_server = any(field in spawner.pvc_name_template for field in _SERVER_FIELDS)
    me = spawner.user.name + (f"/{spawner.name}" if spawner.name and per_server else "")
    own = spawner._expand_user_properties(spawner.pvc_name_template)
    warnings = []
    claim = await read_claim(spawner.api, spawner.namespace, spawner.pvc_name)
    owner = owner_of(claim, per_server)
    if owner not in (None, me):
        if spawner.pvc_name == own:
            raise HomeClaimTaken(own, owner)
        spawner.log.warning(
            "%s: the home claim %s remembered for it belongs to %s; using %s",
            spawner._log_name,
            spawner.pvc_name,
            owner,
            own,
        )
        warnings.append(f"the home claim remembered for this server is another's; {own} is used")
        spawner.pvc_name, spawner._pvc_exists = own, False
        claim = await read_claim(spawner.api, spawner.namespace, own)
        owner = owner_of(claim, per_server)
        if owner not in (None, me):
            raise HomeClaimTaken(own, owner)
    if claim is None and spawner._pvc_exists:
        spawner._pvc_exists = False  # KubeSpawner would mount it without creating it
        warnings.append(
            f"your home volume claim {spawner.pvc_name} no longer exists; a new, empty one is "
            "created"
        )
    if claim is None and spawner.handle_legacy_names:
        legacy = spawner._expand_user_properties(spawner.pvc_name_template, slug_scheme="escape")
        old = None if legacy == own else await read_claim(spawner.api, spawner.namespace, legacy)
        if old is not None and owner_of(old, per_server) not in (None, me):
            spawner.handle_legacy_names = False  # KubeSpawner would adopt another's claim
    return warnings, claim


async def read_claims(api: Any, namespace: str, names: Iterable[str]) -> dict[str, Any]:
    """Each claim of ``names`` in ``namespace``, None for one that does not exist (read
    concurrently)."""
    claims = list(dict.fromkeys(names))
    found = await asyncio.gather(*(read_claim(api, namespace, claim) for claim in claims))
    return dict(zip(claims, found, strict=True))


def claim_uids(claims: dict[str, Any]) -> dict[str, str]:
    """The UID of each claim that exists: a claim deleted and made again under its name is
    another volume."""
    return {name: claim["metadata"]["uid"] for name, claim in claims.items() if claim is not None}


def drop_missing(pod: PodVolumes, missing: set[str]) -> list[str]:
    """Leave out the volumes whose claim is missing, their mounts and the links into them; the
    warnings that say so."""
    warnings = []
    for claim, what in list(pod.claims.items()):
        if claim not in missing:
            continue
        dropped = {v["name"] for v in pod.volumes if claim_of(v) == claim}
        paths = {m["mountPath"] for m in pod.mounts if m["name"] in dropped}
        pod.volumes = [v for v in pod.volumes if v["name"] not in dropped]
        pod.mounts = [m for m in pod.mounts if m["name"] not in dropped]
        pod.links = [
            (target, link)
            for target, link in pod.links
            if not any(target == p or target.startswith(p + "/") for p in paths)
        ]
        for variable in (GROUP_VOLUME_PATH, PHFS_PATH):
            if pod.env.get(variable) in paths:
                del pod.env[variable]
        warnings.append(f"{what} is not mounted: its volume claim {claim} does not exist")
    return warnings
