"""Who a container's processes are on the host: uid, gid, supplementary groups and capabilities.

As on a node, a container with ``runAsUser`` runs with that host uid (no user namespace): files
it creates are the uid's, and volumes it may write are the ones whose ownership or mode lets it
(``fsGroup``). Its process has no capabilities at all. A root container (``runAsUser`` 0 or
unset) has none either, except the ones its ``securityContext.capabilities.add`` names.
``allowPrivilegeEscalation`` is not simulated: bwrap always sets no_new_privs, so setuid programs
(``sudo``) never gain privileges in a container, whatever the field says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Identity:
    """A container's host credentials (kubelet + runtime resolve them from the securityContexts)."""

    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()  # supplementary: fsGroup, then supplementalGroups
    capabilities: tuple[str, ...] = ()  # added to a root container ("CAP_CHOWN")

    @property
    def plain_root(self) -> bool:
        """Root with root's group and no other: bwrap alone runs it (no setpriv)."""
        return self.uid == 0 and self.gid == 0 and not self.groups

    def setpriv(self, *, no_new_privs: bool = False) -> list[str]:
        """The setpriv prefix that becomes this identity with no capability but the added ones
        (root's) — in the sandbox, from a process holding CAP_SETUID/SETGID/SETPCAP."""
        groups = ",".join(str(g) for g in self.groups)
        bounding = "-all" + "".join(
            f",+{c.removeprefix('CAP_').lower()}" for c in self.capabilities
        )
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            f"--groups={groups}" if groups else "--clear-groups",
            "--inh-caps=-all",
            f"--bounding-set={bounding}",
            *(["--no-new-privs"] if no_new_privs else []),
            "--",
        ]


def _capability(name: str) -> str:
    name = str(name).upper()
    return name if name.startswith("CAP_") or name == "ALL" else f"CAP_{name}"


def container_identity(pod: dict[str, Any], container: dict[str, Any]) -> Identity:
    """The container's identity: ``runAsUser``/``runAsGroup`` (the container's over the pod's;
    the "image" runs as root:root), the pod's ``fsGroup`` and ``supplementalGroups``, and for a
    root container the capabilities ``add`` names that ``drop`` does not (``drop: [ALL]`` drops
    every default one: a container starts with none anyway)."""
    pod_context = pod["spec"].get("securityContext") or {}
    context = container.get("securityContext") or {}
    uid = context.get("runAsUser", pod_context.get("runAsUser"))
    gid = context.get("runAsGroup", pod_context.get("runAsGroup"))
    groups = [pod_context["fsGroup"]] if pod_context.get("fsGroup") is not None else []
    groups += pod_context.get("supplementalGroups") or []
    capabilities: tuple[str, ...] = ()
    if not uid:
        wanted = context.get("capabilities") or {}
        dropped = {_capability(c) for c in wanted.get("drop") or ()} - {"ALL"}
        added = [_capability(c) for c in wanted.get("add") or ()]
        capabilities = tuple(dict.fromkeys(c for c in added if c not in dropped))
    return Identity(
        uid=int(uid or 0),
        gid=int(gid or 0),
        groups=tuple(dict.fromkeys(int(g) for g in groups)),
        capabilities=capabilities,
    )


def run_as_non_root_error(
    pod: dict[str, Any], container: dict[str, Any], identity: Identity
) -> str | None:
    """kubelet's refusal of a container that must not run as root but would."""
    pod_context = pod["spec"].get("securityContext") or {}
    context = container.get("securityContext") or {}
    if context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) and identity.uid == 0:
        meta = pod["metadata"]
        where = f"{meta['name']}_{meta['namespace']}({meta['uid']})"
        return (
            f'container has runAsNonRoot and image will run as root (pod: "{where}", '
            f"container: {container['name']})"
        )
    return None
