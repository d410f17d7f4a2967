"""Preparing a launch: the options checked against the user's launch context and the catalog,
the volume claims the pod would mount read — everything a launch needs before its quota is
checked and its pod composed — while the spawn's refresh (:mod:`.spawn_refresh`) may still be
running."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

from jupyterhub.spawner import SpawnException

from . import claims, compose, volumes
from .admission import QuotaAdmission
from .authenticator import PrimeHubAuthenticator, launch_context
from .context import LaunchContext, env_presets_value
from .identity_errors import LaunchWithoutRequiredRole
from .options import OptionError, decide, parse_user_options
from .outages import outage_is_503
from .reflector import CatalogCache
from .user_profile import ENV_PRESETS

NO_CONTEXT = (
    "There is no PrimeHub launch context for this user: the login carries none and Keycloak "
    "does not know the user name. Please log in again."
)


class Launch(NamedTuple):
    """A launch checked and ready to apply (``LaunchPreparation._prepare_launch``)."""

    context: LaunchContext
    request: Any
    catalog: Any
    choice: Any
    pod: volumes.PodVolumes
    saves_presets: bool


class LaunchPreparation(QuotaAdmission):
    """KubeSpawner that prepares a launch, alongside the spawn's refresh when it can. Needs of
    the spawner: ``_configured`` (the configured traits), ``_volume_settings()``."""

    _spawn_refresh: asyncio.Future[Any] | None = None
    _launch_warnings: list[str]
    _claim_uids: dict[str, str]

    async def _launch_context(self) -> LaunchContext | None:
        """From the user's login; for a user who never logged in, straight from Keycloak. None of
        it when Keycloak has been unreachable for longer than the grace period."""
        primehub = isinstance(self.authenticator, PrimeHubAuthenticator)
        if primehub and self.authenticator.launch_context_expired(self.user.name):
            raise SpawnException(
                f"The identity service has been unavailable for too long to launch for "
                f"{self.user.name}: their groups and roles may have changed. Please try again "
                "later.",
                reason="identity_unavailable",
                status_code=503,
            )
        missing_role = (
            self.authenticator.required_role_missing(self.user.name) if primehub else None
        )
        if missing_role:
            raise LaunchWithoutRequiredRole(self.user.name, missing_role)
        context = launch_context(await self.user.get_auth_state())
        if context is None and primehub:
            context = await self.authenticator.launch_context_of(self.user.name)
        return context

    def take_spawn_refresh(self, refresh: asyncio.Future[Any]) -> bool:
        """Take the refresh PrimeHubAuthenticator starts for this spawn (``spawn_refresh``): the
        launch is prepared while it runs, and nothing is created before it has answered. Not
        taken (awaited before the spawn goes on) when configured hooks read the auth state or
        the groups before the launch is prepared."""
        if self.auth_state_hook is not None or self.group_overrides:
            return False
        self._spawn_refresh = refresh
        return True

    async def _prepare_launch(self, user_options: dict[str, Any]) -> Launch:
        """The options checked against the user's launch context and the catalog, and the claims
        the pod would mount read; an ``OptionError`` for options that cannot launch."""
        context = await self._launch_context()
        if context is None:
            raise SpawnException(NO_CONTEXT, reason="auth", status_code=403)
        request = parse_user_options(user_options)
        with outage_is_503("checking the launch"):
            catalog = (await CatalogCache.shared(self.namespace)).snapshot()
        choice = decide(request, context, catalog, last_group=self.launch_group)
        pod = volumes.compose_volumes(choice, context, self._volume_settings(), request.safe_mode)
        compose.check_user_environment(choice, pod.env_sources, self._configured["environment"])
        saves_presets = "env" in (user_options or {}) and request.env != context.user.envs
        if saves_presets:
            self._check_presets_fit(request.env)
        with outage_is_503("checking the launch"):
            self._launch_warnings = list(pod.warnings) + await self._check_claims(pod)
            await self._start_watching_pods()
        return Launch(context, request, catalog, choice, pod, saves_presets)

    async def _check_claims(self, pod: volumes.PodVolumes) -> list[str]:
        """Leave out volumes whose claim does not exist (the pod would never start) and make sure
        the home claim is this server's own (``claims.settle_home_claim``); the warnings."""
        found, (warnings, home) = await asyncio.gather(
            claims.read_claims(self.api, self.namespace, pod.claims),
            claims.settle_home_claim(self),
        )
        self._claim_uids = claims.claim_uids({**found, self.pvc_name: home})
        missing = {name for name, claim in found.items() if claim is None}
        return claims.drop_missing(pod, missing) + warnings

    def _check_presets_fit(self, env: tuple[tuple[str, str], ...]) -> None:
        """Refuse variables that Keycloak would not store as the user's presets (its limit on
        ``predefinedEnvs``, from the realm's user profile), rather than lose them silently."""
        directory = getattr(self.authenticator, "directory", None)
        limit = directory.env_presets_limit() if directory is not None else None
        size = len(env_presets_value(env))
        if limit is not None and size > limit:
            raise OptionError(
                "env",
                f"saved as your presets these variables take {size:,} characters; Keycloak keeps "
                f"at most {limit:,} in the user attribute {ENV_PRESETS}",
            )
