"""The refresh before a spawn, made alongside the spawn's own preparation instead of before it.

JupyterHub's ``refresh_pre_spawn`` asks the authenticator first: every spawn waits a round trip
to Keycloak (a userinfo) before the hub even creates the server's records. With
``PrimeHubAuthenticator.refresh_alongside_spawn`` the same refresh (``handler.refresh_auth(user,
force=True)``, so at most once per request, as JupyterHub's) starts in ``pre_spawn_start``, and
a spawner that takes it (``take_spawn_refresh``) prepares the launch meanwhile — the options
checked against the stored launch context, the claims read — and creates nothing before the
refresh has answered. When the refresh changed what a launch is checked against
(``PrimeHubAuthenticator.launch_state``), the launch is prepared again from the refreshed state,
so the outcome is always the one the refresh-first order gives: a group or role removed in
Keycloak counts at the next spawn, one added is usable at once. A spawner that does not take the
refresh gets the refresh-first order: the authenticator waits for it in ``pre_spawn_start``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from tornado import web

Prepared = TypeVar("Prepared")
log = logging.getLogger("JupyterHub")


def begin(handler: Any, user: Any) -> asyncio.Future[Any]:
    """Start JupyterHub's forced refresh of ``user`` for the request ``handler`` serves."""
    if not hasattr(handler, "_token_authenticated"):
        # JupyterHub (6.1) sets it only when a token authenticated the request, and its
        # refresh_auth reads it when a refresh fails: a cookie request's failed refresh would be
        # an AttributeError instead of the 403 that asks for a new login.
        handler._token_authenticated = False
    refresh = asyncio.ensure_future(handler.refresh_auth(user, force=True))
    refresh.add_done_callback(_retrieve)
    return refresh


def _retrieve(refresh: asyncio.Future[Any]) -> None:
    """Mark the refresh's failure as seen: a spawn given up meanwhile (stopped, timed out) no
    longer waits for it, and asyncio would report it as never retrieved."""
    if not refresh.cancelled():
        refresh.exception()


async def confirmed(refresh: asyncio.Future[Any], username: str) -> None:
    """Wait for the refresh; a 403, in JupyterHub's words, when the user must log in again. A
    refresh that failed unexpectedly is a 500 saying so (JupyterHub would report any other
    error of the spawn's preparation as invalid user options)."""
    try:
        refreshed = await refresh
    except web.HTTPError:
        raise
    except Exception as error:
        log.error("Refreshing the login of %s failed: %r", username, error)
        raise web.HTTPError(500, f"refreshing the login of {username} failed") from error
    if refreshed is None:
        raise web.HTTPError(403, f"auth has expired for {username}, login again")


async def prepared_alongside(
    refresh: asyncio.Future[Any],
    username: str,
    prepare: Callable[[], Awaitable[Prepared]],
    launch_state: Callable[[], Hashable],
) -> Prepared:
    """``prepare()`` while ``refresh`` runs; its result (or its error) if the refresh left
    ``launch_state()`` as it was, else ``prepare()`` again from the refreshed state."""
    before = launch_state()
    try:
        prepared = await prepare()
    except Exception:
        await confirmed(refresh, username)  # an expired login comes first, as in JupyterHub's order
        if launch_state() == before:
            raise
        return await prepare()
    await confirmed(refresh, username)
    return prepared if launch_state() == before else await prepare()
