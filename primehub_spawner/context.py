"""The launch context: what a user may launch in each of her groups, parsed once from Keycloak.

Built at login (and at every refresh) from the admin API's answers, kept compact in the encrypted
``auth_state`` under ``"primehub"``, read back by the spawner. Keycloak stores attributes as lists
of strings; each rule below reads the first value and treats a bad one as unset (logged), so one
mistyped attribute never fails a login.
"""

from __future__ import annotations

import json
import logging
import re
import time
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .culling import parse_duration
from .naming import group_key
from .quantities import QuantityError, format_gibibytes, gigabytes_or_quantity, quantity

log = logging.getLogger("primehub_spawner.context")
CONTEXT_VERSION = 1
# A POSIX-portable environment variable name (letters, digits, _; not starting with a digit).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables that JupyterHub, KubeSpawner and this spawner set for every server (MLFLOW_TRACKING_URI
# and MLFLOW_UI_URL only where the launch group sets them: see compose.check_user_environment)...
HUB_ENV = re.compile(
    r"JUPYTERHUB_.*|JPY_.*|JUPYTER_IMAGE|JUPYTER_IMAGE_SPEC|MEM_.*|CPU_.*|PRIMEHUB_.*"
    r"|TZ|GROUP_ID|GROUP_NAME|INSTANCE_TYPE|IMAGE_NAME"
)
# ...and those that container runtimes and device plugins read to give a container its devices
# (NVIDIA_VISIBLE_DEVICES=all on a CPU instance type would expose every GPU of the node).
DEVICE_ENV = re.compile(
    r"NVIDIA_.*|AMD_VISIBLE_DEVICES|HABANA_VISIBLE_DEVICES|HABANA_VISIBLE_MODULES"
    r"|ASCEND_VISIBLE_DEVICES|ASCEND_RUNTIME_OPTIONS"
)


# The most characters a user's environment presets take (PrimeHub's JSON in ``predefinedEnvs``):
# they ride in every auth state, so a launch with more is refused and a longer attribute ignored.
ENV_PRESETS_MAX = 64 * 1024


def env_presets_value(env: Iterable[tuple[str, str]]) -> str:
    """The ``predefinedEnvs`` attribute for these variables, in PrimeHub's JSON."""
    return json.dumps([{"name": name, "value": value} for name, value in env])


def reserved_env(name: str) -> str | None:
    """Why no user, group attribute or dataset may set the variable ``name``; None if they may."""
    if HUB_ENV.fullmatch(name):
        return "is set by the hub and cannot be overridden"
    if DEVICE_ENV.fullmatch(name):
        return "is reserved: container runtimes read it to choose the devices a server gets"
    return None


# Kubernetes object names (DNS-1123 subdomains): what a resource role may name.
_RESOURCE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


# -- resource roles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grants:
    """Resources granted by realm roles: instance types, images and datasets (name -> writable)."""

    instance_types: frozenset[str] = frozenset()
    images: frozenset[str] = frozenset()
    datasets: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def from_roles(cls, roles: Iterable[str], prefix: str = "") -> Grants:
        """``it:<n>``, ``img:<n>``, ``ds:<n>``, ``ds:rw:<n>``; with a prefix, ``<prefix>:it:<n>`` etc.

        Roles of other shapes are ignored; ``ds:rw:<n>`` grants ``<n>`` writable.
        """
        instance_types, images, datasets = set(), set(), {}
        wanted = f"{prefix}:" if prefix else ""
        for role in roles:
            if not role.startswith(wanted):
                continue
            # PrimeHub's parseResourceRole: <kind>[:<label>...]:<name>
            parts = role[len(wanted) :].split(":")
            if len(parts) < 2:
                continue
            kind, *labels, name = parts
            if not _RESOURCE_NAME.match(name):
                continue
            if kind == "it":
                instance_types.add(name)
            elif kind == "img":
                images.add(name)
            elif kind == "ds":
                datasets[name] = datasets.get(name, False) or "rw" in labels
        return cls(frozenset(instance_types), frozenset(images), datasets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_types": sorted(self.instance_types),
            "images": sorted(self.images),
            "datasets": dict(sorted(self.datasets.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Grants:
        return cls(
            frozenset(data.get("instance_types", ())),
            frozenset(data.get("images", ())),
            dict(data.get("datasets", {})),
        )


# -- attribute rules ------------------------------------------------------------------------------


def _first(attributes: Mapping[str, list[str]], key: str, owner: str) -> str | None:
    values = attributes.get(key) or []
    values = [v for v in values if v is not None and str(v).strip() != ""]
    if not values:
        return None
    if len(set(values)) > 1:
        log.warning("%s: attribute %s has %d values; using the first", owner, key, len(values))
    return str(values[0]).strip()


def _bad(owner: str, key: str, reason: str) -> None:
    """Log an attribute that is ignored: its name and the reason, never its value (attributes
    carry credentials, e.g. MLflow's artifact store, and users' variables)."""
    log.warning("%s: attribute %s ignored: %s", owner, key, reason)


def read_bool(attributes: Mapping[str, list[str]], key: str, owner: str) -> bool | None:
    value = _first(attributes, key, owner)
    if value is None:
        return None
    if value.lower() in ("true", "yes", "1"):
        return True
    if value.lower() in ("false", "no", "0"):
        return False
    _bad(owner, key, "not a boolean")
    return None


def read_cpu(attributes: Mapping[str, list[str]], key: str, owner: str) -> float | None:
    value = _first(attributes, key, owner)
    if value is None:
        return None
    try:
        return float(quantity(value))
    except QuantityError as error:
        _bad(owner, key, f"it {error.reason}")
        return None


def read_count(attributes: Mapping[str, list[str]], key: str, owner: str) -> int | None:
    value = _first(attributes, key, owner)
    if value is None:
        return None
    try:
        parsed = quantity(value)
    except QuantityError as error:
        _bad(owner, key, f"it {error.reason}")
        return None
    if parsed != parsed.to_integral_value():
        _bad(owner, key, "not a whole number")
        return None
    return int(parsed)


def read_duration(attributes: Mapping[str, list[str]], key: str, owner: str) -> int | None:
    """Seconds from ``3600``, ``90s``, ``45m`` or ``2h``."""
    value = _first(attributes, key, owner)
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        _bad(owner, key, f"it {error}")
        return None


def read_size(attributes: Mapping[str, list[str]], key: str, owner: str) -> int | None:
    """Bytes from a Kubernetes quantity (``8G`` = 8·10⁹, ``8Gi`` = 8·2³⁰, as the API server reads an
    instance type's memory) or PrimeHub's bare number of GB (``8``, read as 8Gi)."""
    value = _first(attributes, key, owner)
    if value is None:
        return None
    try:
        return int(gigabytes_or_quantity(value))
    except QuantityError as error:
        _bad(owner, key, f"it {error.reason}")
        return None


def read_envs(
    attributes: Mapping[str, list[str]], key: str, owner: str, max_length: int | None = None
) -> list[dict[str, str]]:
    """A JSON list of ``{"name", "value"}``; entries with invalid names are dropped (logged), and
    so is a value longer than ``max_length``."""
    value = _first(attributes, key, owner)
    if value is None:
        return []
    if max_length is not None and len(value) > max_length:
        _bad(owner, key, f"longer than {max_length:,} characters")
        return []
    try:
        entries = json.loads(value)
    except json.JSONDecodeError:
        _bad(owner, key, "not JSON")
        return []
    if not isinstance(entries, list):
        _bad(owner, key, "not a list")
        return []
    envs = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            _bad(owner, f"{key}[{index}]", "not {name, value}")
            continue
        if not ENV_NAME.fullmatch(entry["name"]):
            _bad(owner, f"{key}[{index}]", "its name is not a valid environment variable name")
            continue
        reserved = reserved_env(entry["name"])
        if reserved is not None:
            _bad(owner, f"{key}[{index}]", f"its name {entry['name']} {reserved}")
            continue
        envs.append({"name": entry["name"], "value": str(entry.get("value", ""))})
    return envs


# -- the model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    """Limits on the sum of running servers' resources; None = unlimited. Memory in bytes."""

    cpu: float | None = None
    gpu: int | None = None
    memory: int | None = None

    @classmethod
    def read(cls, attributes: Mapping[str, list[str]], prefix: str, owner: str) -> Quota:
        return cls(
            cpu=read_cpu(attributes, f"{prefix}-cpu", owner),
            gpu=read_count(attributes, f"{prefix}-gpu", owner),
            memory=read_size(attributes, f"{prefix}-memory", owner),
        )


@dataclass(frozen=True)
class SharedVolume:
    capacity: str  # a quantity, e.g. "1Gi"
    home_symlink: bool = True
    launch_group_only: bool = True


@dataclass(frozen=True)
class MLflow:
    tracking_uri: str | None = None
    ui_url: str | None = None
    tracking_envs: tuple[tuple[str, str], ...] = ()
    artifact_envs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GroupContext:
    """One Keycloak group as a place to launch: settings from its attributes, grants from its roles.

    ``path`` is Keycloak's (``/ml-team``, ``/x/ml-team``); ``volume_name`` the PrimeHub name of its
    shared volume (``project-<n>``) and PHFS folder (``groups/<n>``), decided at login: None when
    that name would not be this group's alone (see :mod:`primehub_spawner.naming`), and then
    neither is mounted. A launch context stored before paths were kept has neither."""

    id: str
    name: str
    display_name: str
    user_quota: Quota = Quota()
    group_quota: Quota = Quota()
    shared_volume: SharedVolume | None = None
    mlflow: MLflow | None = None
    grants: Grants = Grants()
    path: str | None = None
    volume_name: str | None = None
    idle_timeout: int | None = None  # seconds (attribute idle-timeout)
    grant_sudo: bool | None = None  # None: the hub's setting (attribute grant-sudo)

    @property
    def key(self) -> str:
        """The group's JupyterHub name and quota label, never another group's (naming.group_key)."""
        return group_key(self.id, self.name, self.path)

    @classmethod
    def build(
        cls,
        group: Mapping[str, Any],
        roles: Iterable[str],
        prefix: str = "",
        volume_name: str | None = None,
    ) -> GroupContext:
        """From a GroupRepresentation (with attributes), the group's effective realm roles and its
        PrimeHub volume name, if unambiguous."""
        attributes = group.get("attributes") or {}
        owner = f"group {group.get('path') or group['name']}"
        shared_volume = None
        if read_bool(attributes, "enabled-shared-volume", owner):
            capacity = read_size(attributes, "shared-volume-capacity", owner)
            if capacity is None:
                log.warning(
                    "%s: enabled-shared-volume without a valid shared-volume-capacity; no shared volume",
                    owner,
                )
            else:
                home = read_bool(attributes, "home-symlink", owner)
                only = read_bool(attributes, "launch-group-only", owner)
                shared_volume = SharedVolume(
                    format_gibibytes(capacity),
                    True if home is None else home,
                    True if only is None else only,
                )
        tracking_uri = _first(attributes, "mlflow-tracking-uri", owner)
        ui_url = _first(attributes, "mlflow-ui-url", owner)
        tracking = read_envs(attributes, "mlflow-tracking-envs", owner)
        artifact = read_envs(attributes, "mlflow-artifact-envs", owner)
        mlflow = None
        if tracking_uri or ui_url or tracking or artifact:
            mlflow = MLflow(
                tracking_uri,
                ui_url,
                tuple((e["name"], e["value"]) for e in tracking),
                tuple((e["name"], e["value"]) for e in artifact),
            )
        return cls(
            id=group["id"],
            name=group["name"],
            display_name=_first(attributes, "displayName", owner) or group["name"],
            user_quota=Quota.read(attributes, "quota", owner),
            group_quota=Quota.read(attributes, "project-quota", owner),
            shared_volume=shared_volume,
            mlflow=mlflow,
            grants=Grants.from_roles(roles, prefix),
            path=group.get("path"),
            volume_name=volume_name,
            idle_timeout=read_duration(attributes, "idle-timeout", owner),
            grant_sudo=read_bool(attributes, "grant-sudo", owner),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["grants"] = self.grants.to_dict()
        return _compact(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupContext:
        shared = data.get("shared_volume")
        mlflow = data.get("mlflow")
        return cls(
            id=data["id"],
            name=data["name"],
            display_name=data.get("display_name") or data["name"],
            user_quota=Quota(**data.get("user_quota", {})),
            group_quota=Quota(**data.get("group_quota", {})),
            shared_volume=SharedVolume(**shared) if shared else None,
            mlflow=MLflow(
                mlflow.get("tracking_uri"),
                mlflow.get("ui_url"),
                tuple(map(tuple, mlflow.get("tracking_envs", ()))),
                tuple(map(tuple, mlflow.get("artifact_envs", ()))),
            )
            if mlflow
            else None,
            grants=Grants.from_dict(data.get("grants", {})),
            path=data.get("path"),
            volume_name=data.get("volume_name"),
            idle_timeout=data.get("idle_timeout"),
            grant_sudo=data.get("grant_sudo"),
        )


@dataclass(frozen=True)
class UserContext:
    id: str
    username: str
    admin: bool = False
    volume_capacity: str | None = None  # a quantity for the home volume, e.g. "5Gi"
    timezone: str | None = None
    envs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def build(cls, user: Mapping[str, Any], admin: bool) -> UserContext:
        attributes = user.get("attributes") or {}
        owner = f"user {user['username']}"
        capacity = read_size(attributes, "volumeCapacity", owner)
        timezone = _first(attributes, "timezone", owner)
        if timezone is not None:
            try:
                zoneinfo.ZoneInfo(timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                _bad(owner, "timezone", "not an IANA time zone")
                timezone = None
        envs = read_envs(attributes, "predefinedEnvs", owner, ENV_PRESETS_MAX)
        return cls(
            id=user["id"],
            username=user["username"],
            admin=admin,
            volume_capacity=None if capacity is None else format_gibibytes(capacity),
            timezone=timezone,
            envs=tuple((e["name"], e["value"]) for e in envs),
        )


@dataclass(frozen=True)
class LaunchContext:
    """Everything the spawner needs to know about a user, as of ``fetched`` (epoch seconds)."""

    user: UserContext
    groups: tuple[GroupContext, ...]
    global_group: GroupContext | None
    fetched: float = field(default_factory=time.time)

    def group(self, name: str) -> GroupContext | None:
        return next((g for g in self.groups if g.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": CONTEXT_VERSION,
            "fetched": self.fetched,
            "user": _compact(asdict(self.user)),
            "groups": [g.to_dict() for g in self.groups],
            "global": self.global_group.to_dict() if self.global_group else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LaunchContext:
        if data.get("v") != CONTEXT_VERSION:
            raise ValueError(f"launch context version {data.get('v')!r} is not {CONTEXT_VERSION}")
        user = dict(data["user"])
        user["envs"] = tuple(map(tuple, user.get("envs", ())))
        return cls(
            user=UserContext(**user),
            groups=tuple(GroupContext.from_dict(g) for g in data["groups"]),
            global_group=GroupContext.from_dict(data["global"]) if data.get("global") else None,
            fetched=float(data["fetched"]),
        )


def _compact(value: Any) -> Any:
    """Drop None and empty entries so the encrypted auth_state stays small (False is kept)."""
    if isinstance(value, dict):
        compacted = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in compacted.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list | tuple):
        return [_compact(v) for v in value]
    return value
