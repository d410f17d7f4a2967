"""A started pod is noticed running as soon as the pod watch reports it.

KubeSpawner waits for its pod with JupyterHub's ``exponential_backoff``: it looks in its pod
reflector, sleeps a random time of up to 0.2 s, looks again, then up to 0.4 s, 0.8 s … 5 s. A pod
that runs 150 ms after its creation is noticed up to 200 ms late, one that pulls its image for 10 s
up to 5 s late: time the user spends at the spawn page after her server is there. Here the pod
reflector wakes whoever waits on a pod whenever the watch changes that pod, and the spawner waits
so once its pod is created; KubeSpawner's own wait then finds it running at its first look.

The wait changes how soon a running pod is noticed, never the outcome: a pod that ends, is being
deleted or is not running within ``start_timeout`` is left to KubeSpawner's wait as before, and a
container that ends while starting fails the start as soon as the watch reports it
(:class:`~primehub_spawner.lifecycle.ServerLifecycle`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from kubespawner.spawner import PodReflector
from traitlets import validate

from .outages import OutageTolerantSpawner
from .reflector import ObservedDict

ENDED_PHASES = ("Failed", "Succeeded")


class WakingPodReflector(PodReflector):
    """KubeSpawner's pod reflector that wakes the waiters on a pod (:meth:`changed`) whenever the
    watch changes it, and all of them when it lists the pods again."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}
        super().__init__(*args, **kwargs)

    @validate("resources")
    def _observed(self, proposal: Any) -> ObservedDict:
        for key in list(self._waiters):
            self._wake(key)
        return ObservedDict(proposal["value"], self._wake)

    def _wake(self, key: str) -> None:
        for event in self._waiters.get(key, ()):
            event.set()

    def changed(self, key: str) -> asyncio.Event:
        """An event set at the next change of pod ``key``; :meth:`forget` it when done."""
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        return event

    def forget(self, key: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(key)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[key]


def pod_is_ending(pod: Mapping[str, Any]) -> bool:
    """Whether ``pod`` is being deleted or has ended, so it will not run."""
    return bool(pod["metadata"].get("deletionTimestamp")) or (
        (pod.get("status") or {}).get("phase") in ENDED_PHASES
    )


async def until_running(
    reflector: WakingPodReflector, key: str, is_running: Callable[[dict[str, Any] | None], bool]
) -> bool:
    """Wait until the reflector holds pod ``key`` running (True), or it is ending or gone after it
    was there (False). Errors of ``is_running`` propagate."""
    seen = False
    while True:
        change = reflector.changed(key)
        try:
            pod = reflector.pods.get(key)
            if is_running(pod):
                return True
            if pod is None:
                if seen:
                    return False
            elif pod_is_ending(pod):
                return False
            seen = seen or pod is not None
            await change.wait()
        finally:
            reflector.forget(key, change)


class PodWatchingSpawner(OutageTolerantSpawner):
    """KubeSpawner that notices its pod running as soon as the watch reports it."""

    async def _start_reflector(
        self, kind: str, reflector_class: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if kind == "pods" and reflector_class is PodReflector:
            reflector_class = WakingPodReflector
        return await super()._start_reflector(kind, reflector_class, *args, **kwargs)

    async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> bool:
        """KubeSpawner's, then the wait for the pod to run. Not with ``internal_ssl``, services or
        an ``after_pod_created_hook``, which KubeSpawner runs after the creation and before its
        own wait, and on which the pod may depend."""
        created = await super()._make_create_pod_request(pod, request_timeout)
        reflector = self.pod_reflector
        if (
            created
            and isinstance(reflector, WakingPodReflector)
            and not (self.internal_ssl or self.services_enabled or self.after_pod_created_hook)
        ):
            key = f"{self.namespace}/{self.pod_name}"
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.start_timeout):
                    await until_running(reflector, key, self.is_pod_running)
        return created
