"""Quota: what a user uses in a group and what a group uses, from its pods and spawns in flight.

Pods count while Pending or Running, by their limits (CPU cores, memory bytes, GPUs of any vendor
and of every GPU resource name an instance type of the catalog uses, e.g. MIG slices);
a spawn counts from the moment it is admitted until its pod is seen, so concurrent requests can
never together pass a quota. Admission and reservation happen without an await in between.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .catalog import InstanceType
from .context import Quota
from .quantities import QuantityError, quantity

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
GPU_PREFIXES = ("gpu.intel.com/",)
USER_LABEL = "primehub.io/user"
GROUP_LABEL = "primehub.io/group"


@dataclass(frozen=True)
class Usage:
    cpu: Decimal = Decimal(0)
    memory: Decimal = Decimal(0)
    gpu: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.cpu + other.cpu, self.memory + other.memory, self.gpu + other.gpu)

    @classmethod
    def of(cls, instance_type: InstanceType) -> Usage:
        return cls(instance_type.cpu_limit, instance_type.memory_limit, instance_type.gpu)

    @classmethod
    def of_pod(cls, pod: Mapping[str, Any], gpu_names: Collection[str] = GPU_RESOURCES) -> Usage:
        """The pod's limits; a limit counts as GPUs when its resource is in ``gpu_names`` or is
        Intel's."""
        total = cls()
        for container in (pod.get("spec") or {}).get("containers") or ():
            limits = (container.get("resources") or {}).get("limits") or {}
            try:
                cpu = quantity(limits.get("cpu", "0"))
                memory = quantity(limits.get("memory", "0"))
                gpu = sum(
                    int(quantity(v))
                    for k, v in limits.items()
                    if k in gpu_names or k.startswith(GPU_PREFIXES)
                )
            except QuantityError:
                continue
            total = total + cls(cpu, memory, gpu)
        return total


def counted(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase", "Pending") in ("Pending", "Running") and not (
        pod.get("metadata") or {}
    ).get("deletionTimestamp")


def gpu_resource_names(instance_types: Iterable[InstanceType]) -> frozenset[str]:
    """The GPU resource names to count: the known vendors' and every one the instance types use
    (``gpuResourceName``, e.g. ``nvidia.com/mig-1g.10gb``)."""
    return frozenset(GPU_RESOURCES) | {it.gpu_resource for it in instance_types}


def usage(
    pods: Iterable[Mapping[str, Any]],
    group_label: str,
    user_label: str | None = None,
    gpu_names: Collection[str] = GPU_RESOURCES,
) -> Usage:
    """Sum of the counted pods labelled with the group (and the user, when given)."""
    total = Usage()
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get(GROUP_LABEL) != group_label or (
            user_label is not None and labels.get(USER_LABEL) != user_label
        ):
            continue
        if counted(pod):
            total = total + Usage.of_pod(pod, gpu_names)
    return total


def _format_memory(value: Decimal) -> str:
    return f"{value / Decimal(10**9):.3g} GB"


def exceeded(quota: Quota, used: Usage, wanted: Usage) -> str | None:
    """What ``wanted`` on top of ``used`` would pass in ``quota`` (e.g. "CPU: 4 allowed, 3 in use,
    2 requested"), or None when it fits."""
    if quota.cpu is not None and used.cpu + wanted.cpu > Decimal(str(quota.cpu)):
        return f"CPU: {quota.cpu:g} allowed, {used.cpu:g} in use, {wanted.cpu:g} requested"
    if quota.memory is not None and used.memory + wanted.memory > quota.memory:
        return (
            f"memory: {_format_memory(Decimal(quota.memory))} allowed, {_format_memory(used.memory)} in use, "
            f"{_format_memory(wanted.memory)} requested"
        )
    if quota.gpu is not None and used.gpu + wanted.gpu > quota.gpu:
        return f"GPU: {quota.gpu} allowed, {used.gpu} in use, {wanted.gpu} requested"
    return None


@dataclass(frozen=True)
class GroupUsage:
    """What the user uses in a group, and what the whole group uses."""

    user: Usage
    group: Usage


class Ledger:
    """Spawns admitted but whose pods the watch has not shown yet, by spawner key."""

    def __init__(self) -> None:
        self.reservations: dict[
            str, tuple[str, str, str, Usage]
        ] = {}  # key -> (pod, user, group, usage)

    def reserve(
        self, key: str, pod_name: str, user_label: str, group_label: str, amount: Usage
    ) -> None:
        self.reservations[key] = (pod_name, user_label, group_label, amount)

    def release(self, key: str) -> None:
        self.reservations.pop(key, None)

    def pending(
        self, seen_pods: Iterable[str], group_label: str, user_label: str | None = None
    ) -> Usage:
        """Reserved usage whose pod is not among ``seen_pods`` yet."""
        seen = set(seen_pods)
        total = Usage()
        for pod_name, user, group, amount in self.reservations.values():
            if (
                pod_name in seen
                or group != group_label
                or (user_label is not None and user != user_label)
            ):
                continue
            total = total + amount
        return total
