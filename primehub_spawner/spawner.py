"""PrimeHubSpawner: KubeSpawner that launches in one of the user's groups, validated and within quota."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from jupyterhub.spawner import SpawnException
from kubespawner import KubeSpawner
from traitlets import Bool, default

from . import compose, form
from .authenticator import launch_context
from .options import OptionError, decide, parse_user_options
from .quota import Ledger, Usage, exceeded, usage
from .reflector import CatalogCache


class PrimeHubSpawner(KubeSpawner):
    """Launch a notebook server in one of the user's Keycloak groups.

    Every request — the form, ``POST /hub/api/users/{name}/server[s/{server}]`` with
    ``{"user_options": …}``, a restart with saved options — goes through one check: the options'
    shape, then the user's fresh launch context (from PrimeHubAuthenticator) against the catalog of
    instance types, images and datasets, then the group's quotas. A failure is an HTTP 400 naming
    the field and the reason, before any pod or PVC exists, and does not count as a spawn error.
    """

    scheduling_replaces_defaults = Bool(
        True,
        config=True,
        help="""How an instance type's nodeSelector and tolerations combine with this spawner's
        ``node_selector`` and ``tolerations``: True (PrimeHub's behaviour) — a non-empty value of
        the instance type replaces the default; False — they are merged, the instance type winning
        on equal keys.""",
    )

    ledger: ClassVar[Ledger] = Ledger()
    _background: ClassVar[set[asyncio.Future[None]]] = set()
    launch_group: str | None = None
    primehub_presets: form.Presets = form.Presets()

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        return _apply_user_options

    @default("options_form")
    def _options_form_default(self) -> Any:
        return _render_options_form

    @default("options_from_form")
    def _options_from_form_default(self) -> Any:
        return form.options_from_form

    async def render_options_form(self) -> str:
        context = launch_context(await self.user.get_auth_state())
        if context is None:
            return '<p class="alert alert-danger">Your login carries no PrimeHub launch context; please log in again.</p>'
        catalog = (await CatalogCache.shared(self.namespace)).snapshot()
        await self._start_watching_pods()
        pods = [
            p
            for p in self.pod_reflector.pods.values()
            if p["metadata"]["namespace"] == self.namespace
        ]
        seen = [p["metadata"]["name"] for p in pods]

        def usage_of(group: str) -> form.GroupUsage:
            labels = compose.labels(self.user.name, group)
            user_label, group_label = labels[compose.USER_LABEL], labels[compose.GROUP_LABEL]
            return form.GroupUsage(
                user=usage(pods, group_label, user_label)
                + self.ledger.pending(seen, group_label, user_label),
                group=usage(pods, group_label) + self.ledger.pending(seen, group_label),
            )

        viewer = getattr(getattr(self, "handler", None), "current_user", None)
        for_user = self.user.name if viewer is not None and viewer.name != self.user.name else None
        # A launch link's presets hold until the next launch (JupyterHub may render the form twice).
        return form.render(
            context,
            catalog,
            usage_of,
            presets=self.primehub_presets,
            last_group=self.launch_group,
            for_user=for_user,
        )

    async def load_user_options(self) -> None:
        """Options were checked and applied by ``apply_user_options``; KubeSpawner's profiles are unused."""

    @property
    def _ledger_key(self) -> str:
        return f"{self.user.name}/{self.name}"

    async def _check_and_apply(self, user_options: dict[str, Any]) -> None:
        context = launch_context(await self.user.get_auth_state())
        if context is None:
            raise SpawnException(
                "Your login carries no PrimeHub launch context; please log in again.",
                reason="auth",
                status_code=403,
            )
        try:
            request = parse_user_options(user_options)
            catalog = (await CatalogCache.shared(self.namespace)).snapshot()
            choice = decide(request, context, catalog, last_group=self.launch_group)
            await self._start_watching_pods()
            self._admit(choice)  # check and reserve with no await in between
        except OptionError as error:
            reason = "quota" if error.field == "quota" else "invalid_options"
            raise SpawnException(
                f"user_options.{error.field}: {error.reason}", reason=reason
            ) from None
        instance_type = choice.instance_type.instance_type
        settings: dict[str, Any] = {
            **compose.resources(instance_type),
            **compose.scheduling(
                instance_type,
                self.node_selector,
                self.tolerations,
                self.scheduling_replaces_defaults,
            ),
            **compose.image(choice),
        }
        for trait, value in settings.items():
            setattr(self, trait, value)
        self.extra_labels = {**self.extra_labels, **compose.labels(self.user.name, choice.group)}
        self.environment = {
            **self.environment,
            **compose.environment(choice, context, self.user.name),
        }
        self.user_options = choice.user_options()
        self.launch_group = choice.group
        self.primehub_presets = form.Presets()
        self.orm_spawner.user_options = self.user_options
        if "env" in (user_options or {}) and request.env != context.user.envs:
            self._save_env_presets(context.user.id, request.env)

    def _save_env_presets(self, user_id: str, env: tuple[tuple[str, str], ...]) -> None:
        """Save the env rows as the user's presets, in the background (never delays the spawn)."""
        directory = getattr(self.authenticator, "directory", None)
        if directory is None:
            return
        rows = [{"name": name, "value": value} for name, value in env]

        async def save() -> None:
            try:
                await directory.save_env_presets(user_id, rows)
            except Exception as error:
                self.log.warning(
                    "Could not save the environment presets of %s: %s", self.user.name, error
                )

        task = asyncio.ensure_future(save())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _admit(self, choice: Any) -> None:
        group = choice.offer.group
        wanted = Usage.of(choice.instance_type.instance_type)
        labels = compose.labels(self.user.name, group.name)
        user_label, group_label = labels[compose.USER_LABEL], labels[compose.GROUP_LABEL]
        pods = [
            p
            for p in self.pod_reflector.pods.values()
            if p["metadata"]["namespace"] == self.namespace
        ]
        seen = [p["metadata"]["name"] for p in pods]
        used_by_user = usage(pods, group_label, user_label) + self.ledger.pending(
            seen, group_label, user_label
        )
        used_by_group = usage(pods, group_label) + self.ledger.pending(seen, group_label)
        over_user = exceeded(group.user_quota, used_by_user, wanted)
        if over_user:
            raise OptionError(
                "quota", f"your quota in group {group.name!r} would be exceeded — {over_user}"
            )
        over_group = exceeded(group.group_quota, used_by_group, wanted)
        if over_group:
            raise OptionError(
                "quota", f"the quota of group {group.name!r} would be exceeded — {over_group}"
            )
        self.ledger.reserve(self._ledger_key, self.pod_name, user_label, group_label, wanted)

    async def start(self) -> Any:
        try:
            return await super().start()
        finally:
            self.ledger.release(self._ledger_key)

    async def stop(self, now: bool = False) -> None:
        self.ledger.release(self._ledger_key)
        await super().stop(now=now)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.launch_group:
            state["primehub_launch_group"] = self.launch_group
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.launch_group = state.get("primehub_launch_group") or self.launch_group


async def _render_options_form(spawner: PrimeHubSpawner) -> str:
    return await spawner.render_options_form()


async def _apply_user_options(spawner: PrimeHubSpawner, user_options: dict[str, Any]) -> None:
    await spawner._check_and_apply(user_options)
