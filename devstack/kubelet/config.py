"""Fake nodes and the kubelet's settings, loaded from YAML."""

from __future__ import annotations

import fnmatch
import ipaddress
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from kubernetes.utils.quantity import parse_quantity

DEFAULT_SCHEDULERS = ("default-scheduler",)


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str = ""

    def to_api(self) -> dict[str, str]:
        taint = {"key": self.key, "effect": self.effect}
        if self.value:
            taint["value"] = self.value
        return taint


@dataclass(frozen=True)
class NodeSpec:
    """A fake node: labels, taints and capacity (``cpu``, ``memory``, ``pods``, extended resources)."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    capacity: dict[str, str] = field(default_factory=dict)
    unschedulable: bool = False

    @property
    def all_labels(self) -> dict[str, str]:
        return {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            **self.labels,
        }

    @property
    def allocatable(self) -> dict[str, Decimal]:
        capacity = {"cpu": "4", "memory": "8Gi", "pods": "110", **self.capacity}
        return {name: parse_quantity(value) for name, value in capacity.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeSpec:
        return cls(
            name=data["name"],
            labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
            taints=tuple(
                Taint(key=t["key"], effect=t["effect"], value=str(t.get("value", "")))
                for t in data.get("taints") or ()
            ),
            capacity={str(k): str(v) for k, v in (data.get("capacity") or {}).items()},
            unschedulable=bool(data.get("unschedulable", False)),
        )


@dataclass
class KubeletConfig:
    """Settings of the local kubelet.

    ``container_path``, ``image_env`` and ``image_workdir`` stand in for every image: commands run
    from the host, so an image's PATH is the host's (with this interpreter's environment first), its
    ENV is ``image_env`` and its WORKDIR (where a container without ``workingDir`` starts) is
    ``image_workdir`` (docker-stacks' ``/home/jovyan``). ``image_dirs`` are directories every image is assumed to have (a writable,
    per-container tmpfs unless a volume is mounted there).

    ``image_env_by_pattern``: the ENV of images whose name matches a pattern, over ``image_env``.

    A restarted container waits ``backoff_initial_seconds`` (from its second restart on), doubling
    up to ``backoff_max_seconds``: short, for quick tests (a real kubelet's are 10 s and 5 min).
    """

    nodes: list[NodeSpec]
    pod_network: ipaddress.IPv4Network = field(
        default_factory=lambda: ipaddress.IPv4Network("127.0.0.0/16")
    )
    scheduler_names: tuple[str, ...] = DEFAULT_SCHEDULERS
    container_path: str = f"{Path(sys.prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    image_env: dict[str, str] = field(
        default_factory=lambda: {"HOME": "/home/jovyan", "SHELL": "/bin/bash", "LANG": "C.UTF-8"}
    )
    image_workdir: str = "/home/jovyan"
    image_dirs: tuple[str, ...] = ("/home/jovyan",)
    runtime_paths: tuple[Path, ...] = field(
        default_factory=lambda: tuple(dict.fromkeys(Path(p) for p in (sys.prefix, sys.base_prefix)))
    )
    unpullable_images: tuple[str, ...] = ()
    image_env_by_pattern: dict[str, dict[str, str]] = field(default_factory=dict)
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 30.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KubeletConfig:
        config = cls(nodes=[NodeSpec.from_dict(node) for node in data.get("nodes") or ()])
        if not config.nodes:
            raise ValueError("the kubelet config declares no nodes")
        if "pod_network" in data:
            config.pod_network = ipaddress.IPv4Network(data["pod_network"])
            if not config.pod_network.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
                raise ValueError(
                    "pod_network must be a loopback range (pods share the host network)"
                )
        if "scheduler_names" in data:
            config.scheduler_names = tuple(data["scheduler_names"])
        config.image_env.update({str(k): str(v) for k, v in (data.get("image_env") or {}).items()})
        config.image_workdir = str(data.get("image_workdir", config.image_workdir))
        if "image_dirs" in data:
            config.image_dirs = tuple(data["image_dirs"])
        config.unpullable_images = tuple(data.get("unpullable_images") or ())
        config.image_env_by_pattern = {
            str(pattern): {str(k): str(v) for k, v in (env or {}).items()}
            for pattern, env in (data.get("image_env_by_pattern") or {}).items()
        }
        for name in ("backoff_initial_seconds", "backoff_max_seconds"):
            if name in data:
                setattr(config, name, float(data[name]))
        return config

    def env_of(self, image: str) -> dict[str, str]:
        """The ENV of ``image``."""
        env = dict(self.image_env)
        for pattern, extra in self.image_env_by_pattern.items():
            if fnmatch.fnmatch(image, pattern):
                env.update(extra)
        return env

    @classmethod
    def load(cls, path: Path) -> KubeletConfig:
        return cls.from_dict(yaml.safe_load(path.read_text()) or {})
