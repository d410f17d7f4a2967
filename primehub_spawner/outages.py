"""The Kubernetes API server unreachable or failing: a clear 503, not a 400 or a traceback page.

JupyterHub turns any exception from ``apply_user_options`` into "400 Invalid user options", which
blames the user for an outage; the spawner raises :class:`KubernetesUnavailable` instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import aiohttp
from jupyterhub.spawner import SpawnException
from kubernetes_asyncio.client.exceptions import ApiException
from kubespawner import KubeSpawner


class KubernetesUnavailable(SpawnException):
    """The Kubernetes API did not answer as it must; nothing was started."""

    def __init__(self, doing: str, error: BaseException) -> None:
        super().__init__(
            f"The Kubernetes API is unavailable, so {doing} is not possible right now; no server "
            "was started. Please try again in a moment.",
            reason="kubernetes_unavailable",
            status_code=503,
            log_message=f"Kubernetes API unavailable while {doing}: {error!r}",
        )


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` is the API server being unreachable, timing out or failing (5xx)."""
    if isinstance(error, ApiException):
        return error.status is None or error.status == 0 or error.status >= 500
    return isinstance(error, aiohttp.ClientError | TimeoutError | OSError)


@contextlib.contextmanager
def outage_is_503(doing: str) -> Iterator[None]:
    """Raise :class:`KubernetesUnavailable` for an API-server outage in the block."""
    try:
        yield
    except Exception as error:
        if not is_outage(error):
            raise
        raise KubernetesUnavailable(doing, error) from error


class OutageTolerantSpawner(KubeSpawner):
    """KubeSpawner that rides out a Kubernetes API server that drops requests or restarts, and
    fails a start it gave up on with :class:`KubernetesUnavailable` (503) rather than a timeout."""

    _last_outage: tuple[str, BaseException] | None = None

    async def _start_reflector(
        self, kind: str, *args: Any, replace: bool = False, **kwargs: Any
    ) -> Any:
        """KubeSpawner's shared reflector for ``kind``, replaced when its first listing failed.

        KubeSpawner keeps a reflector whose first listing failed (the API server was down when the
        hub first needed it) and re-raises that failure to every later spawn; this starts it over.
        """
        current = self.__class__.reflectors.get(self._get_reflector_key(kind))
        loaded = current.first_load_future if current is not None else None
        failed = loaded is not None and loaded.done() and (loaded.cancelled() or loaded.exception())
        return await super()._start_reflector(kind, *args, replace=replace or failed, **kwargs)

    async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> bool:
        """KubeSpawner's, tried again when the API server drops the request.

        The API server may die after storing the pod and before answering: KubeSpawner would fail
        the spawn on the broken connection. Retried, the create finds the pod (409), which
        KubeSpawner deletes and creates again, so one pod runs. An error answer (an
        ``ApiException``, 5xx included) is left to KubeSpawner as before."""
        return await self._retried_on_outage(
            "creating the pod", super()._make_create_pod_request(pod, request_timeout)
        )

    async def _make_create_pvc_request(self, pvc: Any, request_timeout: float) -> bool:
        """KubeSpawner's, tried again when the API server drops the request (a claim created
        before the connection broke is found on the retry, as KubeSpawner expects)."""
        return await self._retried_on_outage(
            "creating the home claim", super()._make_create_pvc_request(pvc, request_timeout)
        )

    async def _retried_on_outage(self, doing: str, request: Any) -> bool:
        try:
            answered = await request
        except Exception as error:
            if isinstance(error, ApiException) or not is_outage(error):
                raise
            self._last_outage = (doing, error)
            self.log.warning(
                "%s: the Kubernetes API failed while %s (%r); trying again",
                self._log_name,
                doing,
                error,
            )
            return False  # KubeSpawner's exponential_backoff tries again
        self._last_outage = None  # a later timeout (e.g. the pod never starting) is not an outage
        return answered

    async def start(self) -> Any:
        self._last_outage = None
        try:
            return await super().start()
        except TimeoutError as error:
            if self._last_outage is None:
                raise
            # KubeSpawner gave up trying again: the API server never took the request, so there
            # is nothing to clean up (a pod it did store is found by the retry, which then succeeds).
            doing, outage = self._last_outage
            raise KubernetesUnavailable(doing, outage) from error
