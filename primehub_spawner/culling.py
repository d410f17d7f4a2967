"""Idle culling: which timeout applies to a server, the hub's culler, and kernels' culling.

A server's idle timeout is its instance type's ``idleTimeout``, else its launch group's
``idle-timeout`` attribute, else the hub's (``PrimeHubSpawner.idle_timeout``). The spawner keeps
it in the server's state; jupyterhub-idle-culler, run by the hub as a service, reads it there
through :func:`cull_arbiter` (its ``cull_arbiter_hook``), so each server is stopped after its own
timeout by the one culler. Inside the server, Jupyter Server culls kernels idle longer than the
hub's kernel timeout (configured by the start-up script, :mod:`primehub_spawner.startup`). The server's activity reports come often enough for its timeout
(:func:`activity_interval`), so an active server is never taken for an idle one.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from .environment import env_str

STATE_KEY = "primehub_idle_timeout"
CULLER_NAME = "idle-culler"
CULLER_CONFIG = Path(__file__).with_name("idle_culler_config.py")
CULLER_SCOPES = [
    "list:users",
    "read:users:activity",
    "read:servers",
    "delete:servers",
    "admin:server_state",  # each server's own timeout is in its state
]
_DURATION = re.compile(r"(\d+)\s*([smh]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}
DEFAULT_ACTIVITY_INTERVAL = 300  # jupyterhub-singleuser's own default


def parse_duration(value: Any) -> int:
    """Seconds from ``3600``, ``"90s"``, ``"45m"`` or ``"2h"``; ValueError with the reason."""
    if isinstance(value, bool):
        raise ValueError("is not a duration")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.fullmatch(str(value).strip().lower())
        if match is None:
            raise ValueError("is not a duration (seconds, or a number with s, m or h)")
        seconds = int(match.group(1)) * _UNIT[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be longer than 0 seconds")
    return seconds


def env_duration(name: str, default_seconds: int) -> int:
    """Seconds from environment variable ``name`` (0 allowed: off), else ``default_seconds``."""
    value = env_str(name).strip()
    if not value:
        return default_seconds
    if value == "0":
        return 0
    try:
        return parse_duration(value)
    except ValueError as error:
        raise ValueError(f"${name}={value!r} {error}") from None


def describe(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


@dataclass(frozen=True)
class IdleTimeout:
    """A server's idle timeout and where it comes from (for the user: why it stopped)."""

    seconds: int
    source: str

    def stop_reason(self) -> str:
        return f"stopped after {describe(self.seconds)} without activity (the idle timeout of {self.source})"


def applicable_timeout(instance_type: Any, group: Any, hub_seconds: int) -> IdleTimeout | None:
    """The instance type's, else the launch group's, else the hub's; None when none applies
    (the hub's is 0 and neither sets one)."""
    if instance_type.idle_timeout:
        return IdleTimeout(
            instance_type.idle_timeout, f"instance type {instance_type.display_name}"
        )
    if group.idle_timeout:
        return IdleTimeout(group.idle_timeout, f"group {group.display_name}")
    if hub_seconds > 0:
        return IdleTimeout(hub_seconds, "this hub")
    return None


def activity_interval(timeout: IdleTimeout | None) -> int:
    """How often the server reports its activity to the hub: a tenth of its timeout (at least
    every second, at most jupyterhub-singleuser's 5 minutes), so that the hub's last-activity
    lags the server's by a small part of the timeout."""
    if timeout is None:
        return DEFAULT_ACTIVITY_INTERVAL
    return max(1, min(DEFAULT_ACTIVITY_INTERVAL, timeout.seconds // 10))


def kernel_culling_env(kernel_timeout: int, cull_interval: int = 60) -> dict[str, str]:
    """Variables from which the start-up script configures Jupyter Server's culling of kernels
    idle (connected or not) longer than ``kernel_timeout`` seconds; none when 0."""
    if kernel_timeout <= 0:
        return {}
    return {
        "PRIMEHUB_KERNEL_IDLE_TIMEOUT": str(kernel_timeout),
        "PRIMEHUB_KERNEL_CULL_INTERVAL": str(max(1, min(cull_interval, kernel_timeout))),
    }


def cull_arbiter(
    *, inactive: timedelta, inactive_limit: int, server: dict[str, Any], **_: Any
) -> bool:
    """jupyterhub-idle-culler's ``cull_arbiter_hook``: the server's own timeout, from its state,
    else the culler's ``--timeout`` (0: never)."""
    limit = (server.get("state") or {}).get(STATE_KEY)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        limit = inactive_limit
    return limit > 0 and inactive.total_seconds() >= limit


def enable_idle_culler(c: Any, timeout: int, cull_every: int = 60, name: str = CULLER_NAME) -> None:
    """Run jupyterhub-idle-culler as a hub-managed service in config ``c``, with the scopes it
    needs. Each server is culled after its own timeout (from its state); ``timeout`` applies to
    servers that carry none (started before the plugin; 0: never), ``cull_every`` is how often it
    looks (seconds)."""
    c.JupyterHub.services.append(
        {
            "name": name,
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={timeout}",
                f"--cull-every={cull_every}",
                f"--config={CULLER_CONFIG}",
            ],
        }
    )
    c.JupyterHub.load_roles.append(
        {"name": f"{name}-role", "scopes": list(CULLER_SCOPES), "services": [name]}
    )
