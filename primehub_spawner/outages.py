"""The Kubernetes API server unreachable or failing: a clear 503, not a 400 or a traceback page.

JupyterHub turns any exception from ``apply_user_options`` into "400 Invalid user options", which
blames the user for an outage; the spawner raises :class:`KubernetesUnavailable` instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
from jupyterhub.spawner import SpawnException
from kubernetes_asyncio.client.exceptions import ApiException


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
