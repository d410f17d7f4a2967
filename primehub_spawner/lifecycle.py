"""KubeSpawner with a server's life told to its user: why a start failed, why a server stopped.

* A start fails as soon as the notebook container (or an init container) ends, with its exit
  code and last log lines (:mod:`primehub_spawner.failures`), instead of after the start timeout.
* The server's idle timeout (:mod:`primehub_spawner.culling`) is kept in its state, where the
  hub's idle culler reads it; a server stopped after being idle that long, or one that exited,
  keeps the reason in its state, and the home page shows it.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from traitlets import Integer, default

from . import culling, failures
from .readiness import PodWatchingSpawner

STOP_REASON_KEY = "primehub_stop_reason"


class _ContainerEnded(Exception):
    def __init__(self, end: failures.ContainerEnd) -> None:
        super().__init__(end.container)
        self.end = end


class ServerLifecycle(PodWatchingSpawner):
    """KubeSpawner whose starts fail fast with the container's own words, and whose servers
    carry their idle timeout and the reason they last stopped."""

    idle_timeout = Integer(
        config=True,
        help="""Seconds a server may be idle before the hub's idle culler stops it, unless its
        instance type (``spec.idleTimeout``) or its launch group (attribute ``idle-timeout``) sets
        its own; 0: only those. The culler runs when ``culling.enable_idle_culler`` is in the
        hub's configuration (the shipped ``jupyterhub_config.py`` does it unless
        ``$PRIMEHUB_IDLE_CULLER`` is false).
        From ``$PRIMEHUB_IDLE_TIMEOUT`` (seconds, or ``30m``, ``2h``); default 1 hour.""",
    )

    @default("idle_timeout")
    def _idle_timeout_default(self) -> int:
        return culling.env_duration("PRIMEHUB_IDLE_TIMEOUT", 3600)

    kernel_idle_timeout = Integer(
        config=True,
        help="""Seconds a kernel may be idle (connected or not) before Jupyter Server shuts it
        down inside the server; 0: never. From ``$PRIMEHUB_KERNEL_IDLE_TIMEOUT``; default 1 hour
        (PrimeHub's ``CULL_KERNEL_TIMEOUT``).""",
    )

    @default("kernel_idle_timeout")
    def _kernel_idle_timeout_default(self) -> int:
        return culling.env_duration("PRIMEHUB_KERNEL_IDLE_TIMEOUT", 3600)

    hub_auth_cache_max_age = Integer(
        min=1,
        config=True,
        help="""Seconds a notebook server reuses the hub's answer on who may use it (JupyterHub's
        ``HubOAuth.cache_max_age`` inside the server: 300 there, and 0 would mean forever). With
        the default 1, a share stopped, or a member removed from the launch group, loses access
        within a second — for a group change, once her next refresh has happened; connections
        already open (a kernel's websocket) last until they close. A higher value spares the hub
        requests (about one per notebook request and second), and revocations then take up to this
        long. From ``$PRIMEHUB_HUB_AUTH_CACHE_MAX_AGE``.""",
    )

    @default("hub_auth_cache_max_age")
    def _hub_auth_cache_max_age_default(self) -> int:
        return max(1, culling.env_duration("PRIMEHUB_HUB_AUTH_CACHE_MAX_AGE", 1))  # 0: forever

    start_log_timeout = Integer(
        5,
        config=True,
        help="""Seconds to wait for a failed container's log when telling why a start failed.""",
    )

    server_idle_timeout: culling.IdleTimeout | None = None
    stop_reason: str | None = None
    _waiting_for_pod = False
    _exited = False

    def is_pod_running(self, pod: dict[str, Any] | None) -> bool:
        if self._waiting_for_pod and not (pod or {}).get("metadata", {}).get("deletionTimestamp"):
            end = failures.ended_container(pod)  # of this start's pod, not one on its way out
            if end is not None:
                raise _ContainerEnded(end)
        return super().is_pod_running(pod)

    async def start(self) -> Any:
        self.stop_reason = None
        self._waiting_for_pod = True
        try:
            return await super().start()
        except _ContainerEnded as ended:
            lines = await self._container_log(ended.end)
            raise failures.ServerExitedWhileStarting(self.pod_name, ended.end, lines) from None
        finally:
            self._waiting_for_pod = False

    async def _container_log(self, end: failures.ContainerEnd) -> list[str] | None:
        """The last lines the ended container wrote (its previous instance's if restarted);
        None when they cannot be read."""
        for previous in dict.fromkeys([end.previous, True]):
            try:
                text = await asyncio.wait_for(
                    self.api.read_namespaced_pod_log(
                        self.pod_name,
                        self.namespace,
                        container=end.container,
                        tail_lines=failures.LOG_LINES,
                        limit_bytes=failures.LOG_BYTES,
                        previous=previous,
                    ),
                    self.start_log_timeout,
                )
            except Exception as error:
                self.log.warning(
                    "%s: the log of container %s could not be read: %s",
                    self._log_name,
                    end.container,
                    getattr(error, "reason", None) or type(error).__name__,
                )
                return None
            lines = failures.last_lines(text if isinstance(text, str) else "")
            if lines or previous:
                return lines
        return []

    async def poll(self) -> int | None:
        reflector = self.pod_reflector
        pod = reflector.pods.get(self._pod_key) if reflector else None
        end = failures.ended_container(pod)
        # the notebook container itself has terminated (not restarted, not an init container)
        exited = self._exited = end is not None and not end.init and not end.previous
        try:
            status = await super().poll()  # deletes an ended pod, through stop()
        finally:
            self._exited = False
        if status is not None and exited and end is not None and self._was_running():
            self.stop_reason = self.stop_reason or (
                "shut itself down" if end.exit_code == 0 else f"exited with code {end.exit_code}"
            )
        return status

    async def stop(self, now: bool = False) -> None:
        timeout = self.server_idle_timeout
        if (
            timeout is not None
            and not self._exited
            and self._was_running()
            and self._idle_for() >= timeout.seconds
        ):
            self.stop_reason = timeout.stop_reason()
        await super().stop(now=now)

    def _was_running(self) -> bool:
        """Whether the server had started (not a start failing or being cleaned up)."""
        return self.server is not None and not self._waiting_for_pod

    def _idle_for(self) -> float:
        """Seconds since the server's last activity, or since it started if later."""
        orm = self.orm_spawner
        times = [t for t in (orm.last_activity, orm.started) if t is not None] if orm else []
        if not times:
            return 0.0
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        return (now - max(t.replace(tzinfo=None) for t in times)).total_seconds()

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.server_idle_timeout is not None:
            state[culling.STATE_KEY] = self.server_idle_timeout.seconds
            state[culling.STATE_KEY + "_source"] = self.server_idle_timeout.source
        if self.stop_reason:
            state[STOP_REASON_KEY] = self.stop_reason
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        seconds = state.get(culling.STATE_KEY)
        if isinstance(seconds, int) and seconds > 0:
            source = state.get(culling.STATE_KEY + "_source") or "this hub"
            self.server_idle_timeout = culling.IdleTimeout(seconds, source)
        self.stop_reason = state.get(STOP_REASON_KEY) or self.stop_reason

    def clear_state(self) -> None:
        """A stopped server has no idle timeout; the reason it stopped stays until it starts."""
        super().clear_state()
        self.server_idle_timeout = None
