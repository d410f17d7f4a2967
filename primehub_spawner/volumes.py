"""The volumes of a notebook pod: home, group volumes, datasets, PHFS, /dev/shm. Pure functions.

PrimeHub's conventions are kept — PVCs ``claim-<user>``, ``project-<group>``, ``dataset-<volumeName>``
and ``primehub-store``; paths ``/home/jovyan``, ``/project/<group>``, ``/datasets/<name>``,
``/gitsync/<name>``, ``/phfs`` (``subPath groups/<group>``) — while volume names are made valid
and unique whatever the user, group and dataset names are. A group's volume and PHFS folder are
mounted only under a name that is its own in the realm (``GroupContext.volume_name``, decided at
login by :mod:`primehub_spawner.naming`); a group without one has neither, and the launch says so.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubespawner.slugs import safe_slug

from .context import ENV_NAME, GroupContext, LaunchContext, reserved_env
from .naming import unnamed_reason
from .options import LaunchChoice
from .permissions import DatasetMount

GROUP_VOLUME_PATH = "PRIMEHUB_GROUP_VOLUME_PATH"  # the launch group's volume, for start-up profiles
PHFS_PATH = "PRIMEHUB_PHFS_PATH"
_ENV_KEY = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


@dataclass(frozen=True)
class VolumeSettings:
    """Where things go; the defaults are PrimeHub's."""

    home_path: str = "/home/jovyan"
    safe_mode_home_path: str = "/home/jovyan/user"
    project_root: str = "/project"
    phfs_claim: str | None = "primehub-store"
    phfs_path: str = "/phfs"
    gitsync_host_root: str = "/home/dataset"
    gitsync_mount_root: str = "/gitsync"
    shm: bool = True


@dataclass
class PodVolumes:
    """Volumes, mounts, extra env, symlinks to make at start, and the claims they need."""

    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    env_sources: dict[str, str] = field(default_factory=dict)  # variable -> the dataset setting it
    links: list[tuple[str, str]] = field(default_factory=list)  # (target, link)
    claims: dict[str, str] = field(default_factory=dict)  # claim name -> what it is, for warnings
    warnings: list[str] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)

    def name(self, base: str) -> str:
        """A DNS-1123 label for a volume, unique within the pod."""
        candidate = safe_slug(base, max_length=56)
        unique, counter = candidate, 2
        while unique in self._names:
            unique, counter = f"{candidate}-{counter}", counter + 1
        self._names.add(unique)
        return unique

    def add(
        self,
        base: str,
        source: dict[str, Any],
        mount_path: str,
        read_only: bool = False,
        sub_path: str | None = None,
    ) -> str:
        volume_name = self.name(base)
        self.volumes.append({"name": volume_name, **source})
        mount: dict[str, Any] = {"name": volume_name, "mountPath": mount_path}
        if read_only:
            mount["readOnly"] = True
        if sub_path:
            mount["subPath"] = sub_path
        self.mounts.append(mount)
        return volume_name


def claim_of(volume: Mapping[str, Any]) -> str | None:
    """The name of the claim ``volume`` mounts, if it is one."""
    return (volume.get("persistentVolumeClaim") or {}).get("claimName")


def _claim(name: str, read_only: bool = False) -> dict[str, Any]:
    source: dict[str, Any] = {"claimName": name}
    if read_only:
        source["readOnly"] = True
    return {"persistentVolumeClaim": source}


def _group_volumes(
    pod: PodVolumes,
    groups: list[GroupContext],
    launch: GroupContext,
    settings: VolumeSettings,
    home: str,
) -> None:
    """The launch group's volume first, then other groups' that are not launch-group-only.

    PrimeHub's naming is not one-to-one ("ml_team" and "ml-team" both become project-ml-team): a
    group without a name of its own in the realm (``volume_name`` None) is left out with a warning,
    and so, as a second guard, is one whose volume would collide with one already mounted."""
    taken: dict[str, str] = {}
    for group in sorted(groups, key=lambda g: g.id != launch.id):
        volume = group.shared_volume
        if volume is None or (group.id != launch.id and volume.launch_group_only):
            continue
        path_name = group.volume_name
        if path_name is None:
            pod.warnings.append(
                f"the shared volume of group {group.name!r} is not mounted: "
                f"{unnamed_reason(group.name, group.path)}"
            )
            continue
        if path_name in taken:
            pod.warnings.append(
                f"the shared volume of group {group.name!r} is not mounted: its name collides with "
                f"group {taken[path_name]!r} (project-{path_name})"
            )
            continue
        taken[path_name] = group.name
        claim = f"project-{path_name}"
        mount_path = f"{settings.project_root}/{path_name}"
        pod.add(f"project-{path_name}", _claim(claim), mount_path)
        pod.claims[claim] = f"the shared volume of group {group.display_name}"
        if group.id == launch.id:
            pod.env[GROUP_VOLUME_PATH] = mount_path
        if volume.home_symlink:
            pod.links.append((mount_path, f"{home}/{path_name}"))


def _dataset(pod: PodVolumes, mount: DatasetMount, settings: VolumeSettings, home: str) -> None:
    dataset = mount.dataset
    read_only = not mount.writable
    base = f"dataset-{dataset.name}"
    if dataset.kind == "env":
        prefix = dataset.name.upper().replace("-", "_")
        for key, value in dataset.variables.items():
            name = f"{prefix}_{key.upper()}"
            safe_name = name.replace("-", "_").replace(".", "_")
            if not _ENV_KEY.fullmatch(key) or not ENV_NAME.fullmatch(safe_name):
                pod.warnings.append(
                    f"dataset {dataset.name}: variable {key!r} is not a valid name and was left out"
                )
                continue
            reserved = reserved_env(safe_name)
            if reserved is not None:
                pod.warnings.append(
                    f"dataset {dataset.name}: variable {key!r} was left out: {safe_name} {reserved}"
                )
                continue
            pod.env[safe_name] = value
            pod.env_sources[safe_name] = f"dataset {dataset.name}"
        return
    if dataset.kind == "pv":
        claim = f"dataset-{dataset.volume_name}"
        pod.add(base, _claim(claim, read_only), dataset.mount_path, read_only)
        pod.claims[claim] = f"dataset {dataset.display_name}"
    elif dataset.kind == "nfs":
        source = {
            "nfs": {"server": dataset.nfs_server, "path": dataset.nfs_path, "readOnly": read_only}
        }
        pod.add(base, source, dataset.mount_path, read_only)
    elif dataset.kind == "hostPath":
        pod.add(base, {"hostPath": {"path": dataset.host_path}}, dataset.mount_path, read_only)
    elif dataset.kind == "git":
        gitsync_path = f"{settings.gitsync_mount_root}/{dataset.name}"
        source = {"hostPath": {"path": f"{settings.gitsync_host_root}/{dataset.name}"}}
        pod.add(base, source, gitsync_path, read_only=True)  # git-sync owns it: always read-only
        pod.links.append((f"{gitsync_path}/{dataset.name}", dataset.mount_path))
    if dataset.home_symlink:
        pod.links.append((dataset.mount_path, f"{home}/{dataset.name}"))


def compose_volumes(
    choice: LaunchChoice,
    context: LaunchContext,
    settings: VolumeSettings = VolumeSettings(),
    safe_mode: bool = False,
) -> PodVolumes:
    """Everything mounted into the notebook pod besides the home volume (KubeSpawner's storage)."""
    pod = PodVolumes()
    pod._names.add("volume-home")  # reserved for the home volume, which the spawner adds
    home = settings.home_path
    launch = choice.offer.group
    _group_volumes(pod, list(context.groups), launch, settings, home)
    mounted_roots = set()
    for mount in choice.offer.datasets:
        _dataset(pod, mount, settings, home)
        if mount.dataset.kind != "env":
            mounted_roots.add(mount.dataset.mount_root.rstrip("/"))
    for root in sorted(mounted_roots):
        pod.links.append((root, f"{home}/{root.rsplit('/', 1)[-1]}"))
    if settings.phfs_claim and launch.volume_name is None:
        pod.warnings.append(
            f"the PHFS folder of group {launch.name!r} is not mounted: "
            f"{unnamed_reason(launch.name, launch.path)}"
        )
    elif settings.phfs_claim:
        pod.add(
            "phfs",
            _claim(settings.phfs_claim),
            settings.phfs_path,
            sub_path=f"groups/{launch.volume_name}",
        )
        pod.claims[settings.phfs_claim] = "PHFS storage"
        pod.env[PHFS_PATH] = settings.phfs_path
        pod.links.append((settings.phfs_path, f"{home}/phfs"))
    if settings.shm:
        pod.add("dshm", {"emptyDir": {"medium": "Memory"}}, "/dev/shm")  # noqa: S108 - the pod's own tmpfs
    if safe_mode:
        pod.env["PRIMEHUB_SAFE_MODE_ENABLED"] = "true"
    return pod


def link_command(links: list[tuple[str, str]]) -> list[str] | None:
    """A postStart command making the symlinks (existing files are left alone)."""
    if not links:
        return None
    # Paths carry group and dataset names: always quoted for the shell.
    steps = [
        f"[ -e {shlex.quote(link)} ] || ln -s {shlex.quote(target)} {shlex.quote(link)}"
        for target, link in links
    ]
    return ["/bin/sh", "-c", "; ".join(steps) + "; true"]
