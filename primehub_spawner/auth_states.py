"""What PrimeHubAuthenticator keeps in a user's auth state beside OAuthenticator's: the launch
context, and the groups and roles userinfo showed when it was read. Pure functions."""

from __future__ import annotations

import json
import time
from typing import Any

AUTH_STATE_KEY = "primehub"
MEMBERSHIP_KEY = "primehub_membership"  # groups and roles from userinfo when the context was read


def slimmed(
    auth_state: dict[str, Any], userinfo_key: str, stored: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``auth_state`` with each token once and without the userinfo it was built from.

    OAuthenticator stores every token twice (at the top and in ``token_response``) and the whole
    userinfo: about half of a user's encrypted auth state, which JupyterHub holds in memory with
    the user and rewrites with every update of the user's row. Kept: the access token in
    ``token_response`` (where OAuthenticator's refresh reads it), the refresh token and ID token
    at the top (read by the refresh and the logout), the scopes, and of the userinfo what
    :func:`membership` took from it.

    A refresh that reused the ``stored`` access token was built from the stored, slimmed
    ``token_response``: it has no refresh or ID token of its own, and keeps the stored ones."""
    response = dict(auth_state.get("token_response") or {})
    kept = {k: v for k, v in auth_state.items() if k not in ("access_token", userinfo_key)}
    previous = stored or {}
    for key in ("refresh_token", "id_token"):
        response.pop(key, None)
        if not kept.get(key) and previous.get(key):
            kept[key] = previous[key]
    return {**kept, "token_response": response}


def membership(
    userinfo: dict[str, Any], groups_claim: str, roles_claim: str
) -> dict[str, list[str]] | None:
    """The user's group paths and effective realm roles from userinfo, if it has them."""
    groups, roles = userinfo.get(groups_claim), userinfo.get(roles_claim)
    if not isinstance(groups, list) or not isinstance(roles, list):
        return None
    return {"groups": sorted(map(str, groups)), "roles": sorted(map(str, roles))}


def reusable_context(
    stored: dict[str, Any] | None, now_member: dict[str, list[str]] | None, max_age: float
) -> dict[str, Any] | None:
    """The stored launch context, if a refresh may keep it: the same groups and roles as when it
    was read, and read at most ``max_age`` seconds ago."""
    if now_member is None or not stored or stored.get(MEMBERSHIP_KEY) != now_member:
        return None
    age = context_age(stored)
    if age is None or age > max_age:
        return None
    return stored[AUTH_STATE_KEY]


def unchanged(stored: dict[str, Any] | None, refreshed: dict[str, Any], admin: bool) -> bool:
    """True if a refreshed auth model says nothing new (the context's load time aside)."""
    if not stored or refreshed.get("admin") not in (None, admin):
        return False

    def comparable(auth_state: dict[str, Any]) -> str:
        context = {
            k: v for k, v in (auth_state.get(AUTH_STATE_KEY) or {}).items() if k != "fetched"
        }
        return json.dumps({**auth_state, AUTH_STATE_KEY: context}, sort_keys=True, default=str)

    return comparable(stored) == comparable(refreshed.get("auth_state") or {})


def context_age(auth_state: dict[str, Any] | None) -> float | None:
    """Seconds since the stored launch context was loaded, if there is one."""
    fetched = ((auth_state or {}).get(AUTH_STATE_KEY) or {}).get("fetched")
    return time.time() - fetched if fetched else None
