"""Typed models of the primehub.io/v1alpha1 custom resources: InstanceType, Image, Dataset.

Each CR is parsed once (per resourceVersion) into a frozen model; quantities go through the
Kubernetes quantity parser. A CR that cannot be parsed raises CatalogError naming the resource and
the field, so the caller can log it and skip that one resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .culling import parse_duration
from .quantities import QuantityError, quantity

GROUP = "primehub.io"
VERSION = "v1alpha1"
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
ANNOTATION_PREFIX = "dataset.primehub.io/"
DEFAULT_MOUNT_ROOT = "/datasets/"


class CatalogError(ValueError):
    """A custom resource that cannot be used: which one, and why."""


def _spec(cr: Mapping[str, Any], kind: str) -> tuple[str, Mapping[str, Any]]:
    name = (cr.get("metadata") or {}).get("name") or "?"
    spec = cr.get("spec")
    if not isinstance(spec, Mapping):
        raise CatalogError(f"{kind} {name}: no spec")
    return name, spec


def _text(spec: Mapping[str, Any], key: str, owner: str) -> str | None:
    value = spec.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CatalogError(f"{owner}: {key} must be a string")
    return value


def _quantity(value: Any, owner: str, key: str) -> Decimal:
    try:
        return quantity(value if isinstance(value, str) else str(value))
    except QuantityError as error:
        raise CatalogError(f"{owner}: {key} {error.reason}") from error


def _duration(spec: Mapping[str, Any], key: str, owner: str) -> int | None:
    value = spec.get(key)
    if value is None or value == "":
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise CatalogError(f"{owner}: {key} {error}") from error


@dataclass(frozen=True)
class InstanceType:
    """CPU (cores) and memory (bytes) limits, optional requests (overcommit), GPUs and scheduling."""

    name: str
    display_name: str
    description: str
    cpu_limit: Decimal
    memory_limit: Decimal
    cpu_request: Decimal | None = None
    memory_request: Decimal | None = None
    gpu: int = 0
    gpu_resource: str = DEFAULT_GPU_RESOURCE
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    idle_timeout: int | None = None  # seconds; servers of this type are culled sooner (or later)

    @property
    def has_gpu(self) -> bool:
        return self.gpu > 0

    @classmethod
    def from_cr(cls, cr: Mapping[str, Any]) -> InstanceType:
        name, spec = _spec(cr, "InstanceType")
        owner = f"InstanceType {name}"
        limits = spec.get("limits") or {}
        requests = spec.get("requests") or {}
        if "cpu" not in limits or "memory" not in limits:
            raise CatalogError(f"{owner}: limits.cpu and limits.memory are required")
        cpu_limit = _quantity(limits["cpu"], owner, "limits.cpu")
        memory_limit = _quantity(limits["memory"], owner, "limits.memory")
        if cpu_limit <= 0 or memory_limit <= 0:
            raise CatalogError(f"{owner}: limits must be positive")
        gpu_resource = _text(spec, "gpuResourceName", owner) or DEFAULT_GPU_RESOURCE
        gpu_raw = limits.get("gpu", limits.get(DEFAULT_GPU_RESOURCE, 0)) or 0
        if isinstance(gpu_raw, bool) or not isinstance(gpu_raw, int) or gpu_raw < 0:
            raise CatalogError(f"{owner}: limits.gpu must be a whole number ≥ 0")
        if "gpu" not in limits and DEFAULT_GPU_RESOURCE in limits:
            gpu_resource = DEFAULT_GPU_RESOURCE  # the legacy field names its resource itself
        selector = spec.get("nodeSelector") or {}
        tolerations = spec.get("tolerations") or []
        if not isinstance(selector, Mapping) or not isinstance(tolerations, list):
            raise CatalogError(f"{owner}: nodeSelector must be a map and tolerations a list")
        return cls(
            name=name,
            display_name=_text(spec, "displayName", owner) or name,
            description=_text(spec, "description", owner) or "",
            cpu_limit=cpu_limit,
            memory_limit=memory_limit,
            cpu_request=_quantity(requests["cpu"], owner, "requests.cpu")
            if requests.get("cpu")
            else None,
            memory_request=(
                _quantity(requests["memory"], owner, "requests.memory")
                if requests.get("memory")
                else None
            ),
            gpu=gpu_raw,
            gpu_resource=gpu_resource,
            node_selector={str(k): str(v) for k, v in selector.items()},
            tolerations=tuple(dict(t) for t in tolerations),
            idle_timeout=_duration(spec, "idleTimeout", owner),
        )


@dataclass(frozen=True)
class Image:
    """An image for CPU, GPU or both; without a url it is not ready (still being built)."""

    name: str
    display_name: str
    description: str
    kind: str  # cpu | gpu | both
    url: str | None
    url_for_gpu: str | None
    pull_secret: str | None = None
    group_name: str | None = None

    @property
    def ready(self) -> bool:
        return self.url is not None

    @property
    def needs_gpu(self) -> bool:
        return self.kind == "gpu"

    def url_for(self, gpu: bool) -> str | None:
        """``urlForGpu`` (falling back to ``url``) on a GPU instance type, else ``url``."""
        return (self.url_for_gpu or self.url) if gpu else self.url

    @classmethod
    def from_cr(cls, cr: Mapping[str, Any]) -> Image:
        name, spec = _spec(cr, "Image")
        owner = f"Image {name}"
        kind = spec.get("type") or "both"
        if kind not in ("cpu", "gpu", "both"):
            raise CatalogError(f"{owner}: type must be cpu, gpu or both")
        return cls(
            name=name,
            display_name=_text(spec, "displayName", owner) or name,
            description=_text(spec, "description", owner) or "",
            kind=kind,
            url=_text(spec, "url", owner),
            url_for_gpu=_text(spec, "urlForGpu", owner),
            pull_secret=_text(spec, "pullSecret", owner),
            group_name=_text(spec, "groupName", owner),
        )


def _annotation_flag(annotations: Mapping[str, str], key: str, default: bool, owner: str) -> bool:
    value = annotations.get(ANNOTATION_PREFIX + key)
    if value is None or value == "":
        return default
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise CatalogError(f"{owner}: annotation {ANNOTATION_PREFIX}{key} must be true or false")


@dataclass(frozen=True)
class Dataset:
    """A dataset of type pv, nfs, hostPath, git or env, with its mount settings."""

    name: str
    display_name: str
    description: str
    kind: str
    volume_name: str | None = None
    nfs_server: str | None = None
    nfs_path: str | None = None
    host_path: str | None = None
    url: str | None = None
    gitsync_secret: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    mount_root: str = DEFAULT_MOUNT_ROOT
    home_symlink: bool = False
    launch_group_only: bool = False

    @property
    def mount_path(self) -> str:
        return self.mount_root.rstrip("/") + "/" + self.name

    @classmethod
    def from_cr(cls, cr: Mapping[str, Any]) -> Dataset:
        name, spec = _spec(cr, "Dataset")
        owner = f"Dataset {name}"
        kind = spec.get("type")
        annotations = (cr.get("metadata") or {}).get("annotations") or {}
        values: dict[str, Any] = {}
        if kind == "pv":
            values["volume_name"] = _text(spec, "volumeName", owner) or name
        elif kind == "nfs":
            nfs = spec.get("nfs") or {}
            if not nfs.get("server") or not str(nfs.get("path", "")).startswith("/"):
                raise CatalogError(f"{owner}: nfs needs a server and an absolute path")
            values.update(nfs_server=str(nfs["server"]), nfs_path=str(nfs["path"]))
        elif kind == "hostPath":
            path = (spec.get("hostPath") or {}).get("path")
            if not isinstance(path, str) or not path.startswith("/"):
                raise CatalogError(f"{owner}: hostPath needs an absolute path")
            values["host_path"] = path
        elif kind == "git":
            if not _text(spec, "url", owner):
                raise CatalogError(f"{owner}: a git dataset needs a url")
            values.update(url=spec["url"], gitsync_secret=(spec.get("gitsync") or {}).get("secret"))
        elif kind == "env":
            variables = spec.get("variables") or {}
            if not isinstance(variables, Mapping):
                raise CatalogError(f"{owner}: variables must be a map")
            values["variables"] = {
                str(k): "" if v is None else str(v) for k, v in variables.items()
            }
        else:
            raise CatalogError(f"{owner}: type must be pv, nfs, hostPath, git or env")
        mount_root = annotations.get(ANNOTATION_PREFIX + "mountRoot") or DEFAULT_MOUNT_ROOT
        if not mount_root.startswith("/") or ".." in mount_root.split("/"):
            raise CatalogError(
                f"{owner}: annotation {ANNOTATION_PREFIX}mountRoot must be an absolute path"
            )
        return cls(
            name=name,
            display_name=_text(spec, "displayName", owner) or name,
            description=_text(spec, "description", owner) or "",
            kind=kind,
            mount_root=mount_root,
            home_symlink=_annotation_flag(annotations, "homeSymlink", False, owner),
            launch_group_only=_annotation_flag(annotations, "launchGroupOnly", False, owner),
            **values,
        )


@dataclass(frozen=True)
class Catalog:
    """A consistent view of the three kinds, by name."""

    instance_types: Mapping[str, InstanceType] = field(default_factory=dict)
    images: Mapping[str, Image] = field(default_factory=dict)
    datasets: Mapping[str, Dataset] = field(default_factory=dict)
