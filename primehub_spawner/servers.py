"""What runs where: each server's launch record, and the running servers of a group or of the hub.

A :class:`LaunchRecord` is written when a launch is admitted and kept in the server's state, so
that the group, instance type and image of every running server are known without asking
Keycloak or reading a pod (the hub restarts with them). The listings here feed the group API,
the sharing controls and the Notebooks admin page; they only read the hub's memory.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from .context import Quota
from .quota import Usage

STATE_KEY = "primehub_launch"


@dataclass(frozen=True)
class LaunchRecord:
    """A server's launch: its group (``group_key`` is its JupyterHub group), instance type, image,
    resources (the instance type's limits) and the group's quota at the time."""

    group: str
    group_key: str
    group_display_name: str
    instance_type: str
    instance_type_display_name: str
    image: str
    image_display_name: str
    cpu: float
    memory: int
    gpu: int
    group_quota: Quota = field(default_factory=Quota)

    @classmethod
    def of(cls, choice: Any) -> LaunchRecord:
        """From a decided launch (``options.LaunchChoice``)."""
        group = choice.offer.group
        instance_type = choice.instance_type.instance_type
        image = choice.image.image
        return cls(
            group=group.name,
            group_key=group.key,
            group_display_name=group.display_name,
            instance_type=instance_type.name,
            instance_type_display_name=instance_type.display_name,
            image=image.name,
            image_display_name=image.display_name,
            cpu=float(instance_type.cpu_limit),
            memory=int(instance_type.memory_limit),
            gpu=instance_type.gpu,
            group_quota=group.group_quota,
        )

    @property
    def usage(self) -> Usage:
        return Usage(Decimal(str(self.cpu)), Decimal(self.memory), self.gpu)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> LaunchRecord | None:
        """The record saved in a server's state; None when absent or not understood (a state
        written by another version)."""
        if not isinstance(data, Mapping):
            return None
        names = [k for k, f in cls.__dataclass_fields__.items() if f.type == "str"]
        numbers = ("cpu", "memory", "gpu")
        if not all(isinstance(data.get(k), str) for k in names) or not all(
            _number(data.get(k)) for k in numbers
        ):
            return None
        stored = data.get("group_quota")
        quota = Quota()
        if (
            isinstance(stored, Mapping)
            and set(stored) <= set(numbers)
            and all(v is None or _number(v) for v in stored.values())
        ):
            quota = Quota(**stored)
        return cls(
            **{k: data[k] for k in names},
            cpu=float(data["cpu"]),
            memory=int(data["memory"]),
            gpu=int(data["gpu"]),
            group_quota=quota,
        )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class RunningServer:
    """One active server (running or starting) with its launch record."""

    owner: str
    name: str
    url: str
    ready: bool
    started: datetime.datetime | None
    record: LaunchRecord
    shared: bool

    def age(self, now: datetime.datetime) -> int | None:
        """Whole seconds since the server started, if it has."""
        if self.started is None:
            return None
        return max(0, int((now - self.started).total_seconds()))

    def to_json(self, now: datetime.datetime) -> dict[str, Any]:
        record = self.record
        return {
            "owner": self.owner,
            "server": self.name,
            "url": self.url,
            "ready": self.ready,
            "started": _isoformat(self.started),
            "age_seconds": self.age(now),
            "group": {
                "key": record.group_key,
                "name": record.group,
                "display_name": record.group_display_name,
            },
            "instance_type": {
                "name": record.instance_type,
                "display_name": record.instance_type_display_name,
            },
            "image": {"name": record.image, "display_name": record.image_display_name},
            "resources": {"cpu": record.cpu, "memory": record.memory, "gpu": record.gpu},
            "shared_with_group": self.shared,
        }


def _isoformat(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # JupyterHub stores naive UTC
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def shared_with(orm_spawner: Any, group_key: str) -> bool:
    """Whether the server is shared with the JupyterHub group ``group_key``."""
    return any(
        share.group is not None and share.group.name == group_key
        for share in getattr(orm_spawner, "shares", None) or ()
    )


def running_servers(
    users: Iterable[Any],
    group_key: str | None = None,
    shared: Callable[[Any, str], bool] = shared_with,
) -> Iterator[RunningServer]:
    """The active servers of ``users`` (JupyterHub ``User`` objects) that carry a launch record,
    in ``group_key`` only when given; ``shared(orm_spawner, key)`` says whether one is shared
    with its group."""
    for user in users:
        for name, spawner in list(user.spawners.items()):
            record = getattr(spawner, "launch_record", None)
            if not spawner.active or record is None:
                continue
            if group_key is not None and record.group_key != group_key:
                continue
            started = spawner.orm_spawner.started
            if started is not None and started.tzinfo is None:
                started = started.replace(tzinfo=datetime.UTC)
            yield RunningServer(
                owner=user.name,
                name=name,
                url=user.server_url(name),
                ready=bool(spawner.ready),
                started=started,
                record=record,
                shared=shared(spawner.orm_spawner, record.group_key),
            )


@dataclass(frozen=True)
class GroupTotal:
    """What a group's running servers take together, against the group's quota."""

    key: str
    name: str
    display_name: str
    servers: int
    used: Usage
    quota: Quota

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "display_name": self.display_name,
            "servers": self.servers,
            "used": usage_json(self.used),
            "quota": quota_json(self.quota),
        }


def group_totals(servers: Iterable[RunningServer]) -> list[GroupTotal]:
    """Per group, its servers' resources summed; the quota is the latest launch's (the group's
    attributes as they were then). Sorted by display name."""
    totals: dict[str, GroupTotal] = {}
    latest: dict[str, datetime.datetime] = {}
    epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    for server in servers:
        record = server.record
        known = totals.get(record.group_key)
        newer = (server.started or epoch) >= latest.get(record.group_key, epoch)
        totals[record.group_key] = GroupTotal(
            key=record.group_key,
            name=record.group,
            display_name=record.group_display_name
            if newer or known is None
            else known.display_name,
            servers=(known.servers if known else 0) + 1,
            used=(known.used if known else Usage()) + record.usage,
            quota=record.group_quota if newer or known is None else known.quota,
        )
        if newer:
            latest[record.group_key] = server.started or epoch
    return sorted(totals.values(), key=lambda t: (t.display_name.casefold(), t.key))


def usage_json(used: Usage) -> dict[str, Any]:
    return {"cpu": float(used.cpu), "memory": int(used.memory), "gpu": used.gpu}


def quota_json(quota: Quota) -> dict[str, Any]:
    """None stands for unlimited."""
    return {"cpu": quota.cpu, "memory": quota.memory, "gpu": quota.gpu}
