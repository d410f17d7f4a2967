"""How a login or launch is refused when Keycloak cannot vouch for the user: the HTTP errors the
authenticator raises."""

from __future__ import annotations

from jupyterhub.spawner import SpawnException
from tornado import web


class IdentityServiceUnavailable(web.HTTPError):
    """The login cannot complete because Keycloak's admin API did not answer as it must."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "The identity service is unavailable or misconfigured, so your groups and resources "
            "cannot be loaded. Please try again later or contact your administrator.",
        )


class RequiredRoleMissing(web.HTTPError):
    """The login is refused: the user lacks the role the hub requires (``required_role``)."""

    def __init__(self, role: str) -> None:
        super().__init__(
            403,
            f"Your account does not hold the role {role!r} this hub requires, so you cannot log "
            "in. Please ask your administrator for it.",
        )


class LaunchWithoutRequiredRole(SpawnException):
    """A launch for a user who lacks the required role (an admin's, or with a stale login)."""

    def __init__(self, username: str, role: str) -> None:
        super().__init__(
            f"{username} does not hold the role {role!r} this hub requires.",
            reason="required_role",
            status_code=403,
        )
