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
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from tornado import web

Prepared = TypeVar("Prepared")


def begin(handler: Any, user: Any) -> asyncio.Future[Any]:
    """Start JupyterHub's forced refresh of ``user`` for the request ``handler`` serves."""
    refresh = asyncio.ensure_future(handler.refresh_auth(user, force=True))
    refresh.add_done_callback(_retrieve)
    return refresh


def _retrieve(refresh: asyncio.Future[Any]) -> None:
    """Mark the refresh's failure as seen: a spawn given up meanwhile (stopped, timed out) no
    longer waits for it, and asyncio would report it as never retrieved."""
    if not refresh.cancelled():
        refresh.exception()


async def confirmed(refresh: asyncio.Future[Any], username: str) -> None:
    """Wait for the refresh; a 403, in JupyterHub's words, when the user must log in again."""
    if await refresh is None:
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
