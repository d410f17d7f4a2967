"""Resolving a pod's volumes to host directories inside the test ground's state.

Nothing is ever mounted from the host's real paths: hostPath, nfs and csi sources, and dynamically
provisioned claims, are all mapped into ``<state>/volumes/...``.

Ownership is kubelet's: a directory the test ground makes for a hostPath, nfs or csi volume is
root's, mode 0755, as a host directory or an NFS export would be, and the pod's ``fsGroup`` never
changes it; an emptyDir is 0777; emptyDir, configMap, secret, ``local`` volumes and the claims
of the test ground's own provisioner get the ``fsGroup`` (kubelet's SetVolumeOwnership).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..kubeapi import KubeAPI
from .sandbox import Mount

PROVISIONED_ROOT = "/var/lib/devstack/volumes"
PROVISIONER = "devstack.local/hostpath"
RW_MASK, RO_MASK, DIR_MASK = 0o660, 0o440, stat.S_ISGID | 0o110


class MountError(Exception):
    """A volume cannot be set up (yet): reported as a FailedMount event, then retried."""


@dataclass(frozen=True)
class VolumeLayout:
    """Where volumes live on the host for one test ground."""

    state_dir: Path
    memory_dir: Path

    def host_path(self, path: str) -> Path:
        return self._under(self.state_dir / "volumes" / "hostpath", path)

    def nfs(self, server: str, path: str) -> Path:
        return self._under(self.state_dir / "volumes" / "nfs" / _safe(server), path)

    def csi(self, driver: str, handle: str) -> Path:
        return self.state_dir / "volumes" / "csi" / _safe(driver) / _safe(handle)

    def pod_dir(self, pod_uid: str) -> Path:
        return self.state_dir / "kubelet" / "pods" / pod_uid

    def empty_dir(self, pod_uid: str, name: str, memory: bool) -> Path:
        root = self.memory_dir / pod_uid if memory else self.pod_dir(pod_uid) / "volumes"
        return root / name

    @staticmethod
    def _under(root: Path, path: str) -> Path:
        relative = (
            PurePosixPath(path).relative_to("/") if path.startswith("/") else PurePosixPath(path)
        )
        if ".." in relative.parts:
            raise MountError(f"path {path!r} may not contain '..'")
        return root / relative


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return cleaned or hashlib.sha256(name.encode()).hexdigest()[:16]


def _ensure_dir(path: Path, mode: int = 0o755) -> Path:
    """The directory, made root's with ``mode`` if it was not there (mode alone, not umask's)."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    return path


def _needs_ownership(root: Path, fs_group: int, read_only: bool) -> bool:
    """Whether the volume's root lacks the group, its permissions or setgid (OnRootMismatch)."""
    info = root.stat()
    if info.st_gid != fs_group or not stat.S_ISDIR(info.st_mode):
        return True
    wanted = (RO_MASK if read_only else RW_MASK) | 0o110
    return stat.S_IMODE(info.st_mode) & wanted != wanted or not info.st_mode & stat.S_ISGID


def set_volume_ownership(
    root: Path, fs_group: int | None, read_only: bool, policy: str | None = None
) -> None:
    """kubelet's SetVolumeOwnership: everything in the volume gets group ``fs_group`` and g+rw
    (g+r for a read-only volume), directories g+x and setgid (new files inherit the group). With
    ``fsGroupChangePolicy: OnRootMismatch`` nothing changes if the root is already so."""
    if fs_group is None:
        return
    if policy == "OnRootMismatch" and not _needs_ownership(root, fs_group, read_only):
        return
    mask = RO_MASK if read_only else RW_MASK
    paths = [root]
    for directory, subdirs, files in os.walk(root):
        paths += [Path(directory, name) for name in [*subdirs, *files]]
    for path in paths:
        os.lchown(path, -1, fs_group)
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue  # chmod would change the file it points to
        extra = mask | (DIR_MASK if stat.S_ISDIR(info.st_mode) else 0)
        path.chmod(stat.S_IMODE(info.st_mode) | extra)


def _write_items(
    target: Path, data: dict[str, bytes], items: list[dict[str, Any]] | None, default_mode: int
) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    selected = (
        [(item["key"], item["path"], item.get("mode")) for item in items]
        if items
        else [(key, key, None) for key in data]
    )
    for key, relative, mode in selected:
        if key not in data:
            raise MountError(f'key "{key}" not found')
        file = target / relative
        if ".." in PurePosixPath(relative).parts:
            raise MountError(f"item path {relative!r} may not contain '..'")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data[key])
        os.chmod(file, mode if mode is not None else default_mode)


async def _persistent_volume(api: KubeAPI, namespace: str, claim_name: str) -> dict[str, Any]:
    claim = await api.get_or_none(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim_name}"
    )
    if claim is None:
        raise MountError(f'persistentvolumeclaim "{claim_name}" not found')
    volume_name = claim["spec"].get("volumeName")
    if (claim.get("status") or {}).get("phase") != "Bound" or not volume_name:
        raise MountError(f'persistentvolumeclaim "{claim_name}" is not bound')
    volume = await api.get_or_none(f"/api/v1/persistentvolumes/{volume_name}")
    if volume is None:
        raise MountError(f'persistentvolume "{volume_name}" not found')
    return volume


def _manages_ownership(volume: dict[str, Any]) -> bool:
    """Volumes whose plugin applies fsGroup: ``local`` ones and the provisioner's (as a dynamic
    provisioner's block storage would); a hostPath or nfs volume is left as it is."""
    annotations = volume["metadata"].get("annotations") or {}
    spec = volume["spec"]
    return "local" in spec or annotations.get("pv.kubernetes.io/provisioned-by") == PROVISIONER


def _source_dir(layout: VolumeLayout, source: dict[str, Any], name: str) -> tuple[Path, bool]:
    """The host directory of a hostPath/nfs/csi/local source, and whether the source is read-only."""
    if "hostPath" in source:
        spec = source["hostPath"]
        path = layout.host_path(spec["path"])
        kind = spec.get("type") or ""
        if (
            kind in ("Directory", "File", "Socket", "CharDevice", "BlockDevice")
            and not path.exists()
        ):
            raise MountError(f"hostPath type check failed: {spec['path']} is not a {kind.lower()}")
        if kind == "FileOrCreate":
            _ensure_dir(path.parent)
            path.touch(mode=0o644, exist_ok=True)
        elif not path.exists():
            _ensure_dir(path)
        return path, False
    if "local" in source:
        return _ensure_dir(layout.host_path(source["local"]["path"])), False
    if "nfs" in source:
        spec = source["nfs"]
        return _ensure_dir(layout.nfs(spec["server"], spec["path"])), bool(spec.get("readOnly"))
    if "csi" in source:
        spec = source["csi"]
        handle = spec.get("volumeHandle") or name
        return _ensure_dir(layout.csi(spec["driver"], handle)), bool(spec.get("readOnly"))
    kinds = ", ".join(sorted(k for k in source if isinstance(source[k], dict))) or "none"
    raise MountError(f"volume {name!r}: source {kinds} is not supported by the local kubelet")


async def volume_dirs(
    api: KubeAPI, layout: VolumeLayout, pod: dict[str, Any]
) -> dict[str, tuple[Path, bool]]:
    """Every volume of ``pod`` as (host directory, read-only) — secrets and config maps written out,
    the pod's ``fsGroup`` given to the volumes that take it."""
    meta = pod["metadata"]
    namespace, uid = meta["namespace"], meta["uid"]
    context = pod["spec"].get("securityContext") or {}
    fs_group, policy = context.get("fsGroup"), context.get("fsGroupChangePolicy")
    resolved: dict[str, tuple[Path, bool]] = {}
    for volume in pod["spec"].get("volumes") or ():
        name = volume["name"]
        if "emptyDir" in volume:
            memory = (volume["emptyDir"] or {}).get("medium") == "Memory"
            path = _ensure_dir(layout.empty_dir(uid, name, memory), 0o777)
            set_volume_ownership(path, fs_group, False, policy)
            resolved[name] = (path, False)
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]
            persistent = await _persistent_volume(api, namespace, claim["claimName"])
            path, read_only = _source_dir(layout, persistent["spec"], name)
            read_only = read_only or bool(claim.get("readOnly"))
            if _manages_ownership(persistent):
                set_volume_ownership(path, fs_group, read_only, policy)
            resolved[name] = (path, read_only)
        elif "secret" in volume or "configMap" in volume:
            path = await _materialize(api, layout, pod, volume)
            set_volume_ownership(path, fs_group, True, policy)
            resolved[name] = (path, True)
        elif "csi" in volume:
            spec = volume["csi"]
            path = layout.csi(spec["driver"], f"{uid}-{name}")
            resolved[name] = (_ensure_dir(path), bool(spec.get("readOnly")))
        else:
            resolved[name] = _source_dir(layout, volume, name)
    return resolved


async def _materialize(
    api: KubeAPI, layout: VolumeLayout, pod: dict[str, Any], volume: dict[str, Any]
) -> Path:
    namespace = pod["metadata"]["namespace"]
    if "secret" in volume:
        spec = volume["secret"]
        kind, object_name = "secret", spec["secretName"]
        obj = await api.get_or_none(f"/api/v1/namespaces/{namespace}/secrets/{object_name}")
        data = {k: base64.b64decode(v) for k, v in ((obj or {}).get("data") or {}).items()}
    else:
        spec = volume["configMap"]
        kind, object_name = "configmap", spec["name"]
        obj = await api.get_or_none(f"/api/v1/namespaces/{namespace}/configmaps/{object_name}")
        data = {k: v.encode() for k, v in ((obj or {}).get("data") or {}).items()}
        data.update(
            {k: base64.b64decode(v) for k, v in ((obj or {}).get("binaryData") or {}).items()}
        )
    if obj is None and not spec.get("optional"):
        raise MountError(f'{kind} "{object_name}" not found')
    target = layout.pod_dir(pod["metadata"]["uid"]) / "volumes" / volume["name"]
    _write_items(target, data, spec.get("items"), spec.get("defaultMode", 0o644))
    return target


def container_mounts(
    container: dict[str, Any], dirs: dict[str, tuple[Path, bool]], image_dirs: tuple[str, ...]
) -> list[Mount]:
    """The container's volumeMounts (with subPath and readOnly), plus tmpfs for image directories."""
    mounts = []
    for volume_mount in container.get("volumeMounts") or ():
        name = volume_mount["name"]
        if name not in dirs:
            raise MountError(f'volume "{name}" is not declared in the pod')
        source, read_only = dirs[name]
        sub_path = volume_mount.get("subPath") or ""
        if sub_path:
            parts = PurePosixPath(sub_path).parts
            if sub_path.startswith("/") or ".." in parts:
                raise MountError(f"subPath {sub_path!r} must be a relative path without '..'")
            root, source = source, source / sub_path
            if not source.exists():  # kubelet makes it with the volume root's mode
                source.mkdir(parents=True)
                source.chmod(stat.S_IMODE(root.stat().st_mode))
        mounts.append(
            Mount(
                target=volume_mount["mountPath"],
                source=source,
                read_only=read_only or bool(volume_mount.get("readOnly")),
            )
        )
    taken = {PurePosixPath(m.target) for m in mounts}
    for directory in image_dirs:
        if PurePosixPath(directory) not in taken:
            mounts.append(Mount(target=directory, source=None))
    return mounts
