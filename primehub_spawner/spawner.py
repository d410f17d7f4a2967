"""PrimeHubSpawner: KubeSpawner that launches in one of the user's groups, validated and within quota."""

from __future__ import annotations

import asyncio
import copy
import os
import weakref
from typing import Any, ClassVar

from jupyterhub.spawner import SpawnException
from jupyterhub.utils import url_path_join
from traitlets import Bool, Integer, Unicode, default

from . import (
    claims,
    compose,
    culling,
    form,
    groups_api,
    servers,
    sharing,
    spawn_refresh,
    startup,
    volumes,
)
from .authenticator import PrimeHubAuthenticator, launch_context
from .context import LaunchContext
from .environment import env_bool, env_str
from .options import OptionError
from .preparation import NO_CONTEXT, LaunchPreparation
from .quota import gpu_resource_names
from .servers import LaunchRecord


class PrimeHubSpawner(LaunchPreparation):
    """Launch a notebook server in one of the user's Keycloak groups.

    Every request — the form, ``POST /hub/api/users/{name}/server[s/{server}]`` with
    ``{"user_options": …}``, a restart with saved options — goes through one check: the options'
    shape, then the user's fresh launch context (from PrimeHubAuthenticator) against the catalog of
    instance types, images and datasets, then the group's quotas. A failure is an HTTP 400 naming
    the field and the reason, before any pod or PVC exists, and does not count as a spawn error.
    """

    scheduling_replaces_defaults = Bool(
        config=True,
        help="""How an instance type's nodeSelector and tolerations combine with this spawner's
        ``node_selector`` and ``tolerations``: True (PrimeHub's behaviour) — a non-empty value of
        the instance type replaces the default; False — they are merged, the instance type winning
        on equal keys. From ``$PRIMEHUB_SCHEDULING_REPLACES_DEFAULTS``; default True.""",
    )

    @default("scheduling_replaces_defaults")
    def _scheduling_replaces_defaults_default(self) -> bool:
        return env_bool("PRIMEHUB_SCHEDULING_REPLACES_DEFAULTS", True)

    home_capacity = Unicode(
        config=True,
        help="""Size of a new home volume when the user has no ``volumeCapacity`` attribute.
        From ``$PRIMEHUB_HOME_CAPACITY``; default ``1Gi``.""",
    )

    @default("home_capacity")
    def _home_capacity_default(self) -> str:
        return env_str("PRIMEHUB_HOME_CAPACITY", default="1Gi")

    phfs_claim = Unicode(
        config=True,
        help="""The PHFS claim (csi-rclone over object storage), mounted at ``/phfs`` with the launch
        group's folder as subPath; empty disables PHFS. From ``$PRIMEHUB_PHFS_CLAIM``; default
        ``primehub-store``.""",
    )

    @default("phfs_claim")
    def _phfs_claim_default(self) -> str:
        return os.environ.get("PRIMEHUB_PHFS_CLAIM", "primehub-store")  # "" disables

    gitsync_host_root = Unicode(
        config=True,
        help="""Host directory where git-sync keeps git datasets. From
        ``$PRIMEHUB_GITSYNC_HOST_ROOT``; default ``/home/dataset``.""",
    )

    @default("gitsync_host_root")
    def _gitsync_host_root_default(self) -> str:
        return env_str("PRIMEHUB_GITSYNC_HOST_ROOT", default="/home/dataset")

    grant_sudo = Bool(
        config=True,
        help="""Whether the notebook user may use ``sudo`` (the image must have it): a sudoers
        rule for her uid and privilege escalation allowed. A launch group's ``grant-sudo``
        attribute (true/false) decides for its launches. From ``$PRIMEHUB_GRANT_SUDO``; default
        False. The server itself never runs as root (``uid``, default 1000).""",
    )

    @default("grant_sudo")
    def _grant_sudo_default(self) -> bool:
        return env_bool("PRIMEHUB_GRANT_SUDO", False)

    startup_profiles = Bool(
        config=True,
        help="""Whether the server sources the launch group's start-up profiles,
        ``<group volume>/.primehub/profile`` and ``.primehub/<user>.profile``, at start (not in
        safe mode). Any member who can write the group volume can write them, and they run in
        every member's server: a group volume is a trust boundary. From
        ``$PRIMEHUB_STARTUP_PROFILES``; default True.""",
    )

    @default("startup_profiles")
    def _startup_profiles_default(self) -> bool:
        return env_bool("PRIMEHUB_STARTUP_PROFILES", True)

    quota_refresh_interval = Integer(
        config=True,
        help="""Seconds between two updates of an open Server Options form's quota table (and of
        which instance types fit), read from the hub's memory (``/hub/api/primehub/users/<user>/
        groups``), never from Keycloak; only while the page is visible. 0: no updates. From
        ``$PRIMEHUB_QUOTA_REFRESH_INTERVAL``; default 10.""",
    )

    @default("quota_refresh_interval")
    def _quota_refresh_interval_default(self) -> int:
        return culling.env_duration("PRIMEHUB_QUOTA_REFRESH_INTERVAL", 10)

    @default("uid")
    def _uid_default(self) -> int:
        return 1000  # PrimeHub's NB_UID; KubeSpawner's trait, as z2jh sets it

    @default("gid")
    def _gid_default(self) -> int:
        return 100

    @default("fs_gid")
    def _fs_gid_default(self) -> int:
        return 100

    _background: ClassVar[set[asyncio.Future[None]]] = set()
    launch_group: str | None = None
    launch_record: LaunchRecord | None = None
    launch_presets: ClassVar[form.LaunchPresets] = form.LaunchPresets()

    _per_spawn: ClassVar[tuple[str, ...]] = (
        "volumes",
        "volume_mounts",
        "environment",
        "extra_labels",
        "extra_annotations",
        "node_selector",
        "tolerations",
        "lifecycle_hooks",
        "image_pull_secrets",
        "cmd",
        "init_containers",
        "allow_privilege_escalation",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What each spawn starts from: the configured values, never the previous spawn's.
        self._configured = {name: copy.deepcopy(getattr(self, name)) for name in self._per_spawn}
        self._launch_warnings: list[str] = []
        self.prepared_volumes: list[str] = []  # startup.prepared_key of each mount made the user's
        self._claim_uids: dict[str, str] = {}
        self._preparing: list[str] = []
        self._unidentified: list[tuple[dict[str, Any], dict[str, Any]]] = []

    _handler_ref: weakref.ref[Any] | None = None

    @property
    def handler(self) -> Any:
        """The request handler JupyterHub last gave this spawner, while that request lives.

        JupyterHub's spawn page sets ``spawner.handler`` and never clears it, so each user who
        once opened the page would keep that request (its headers, cookies and handler) in the
        hub's memory for good; a weak reference lets it go when the request ends."""
        return self._handler_ref() if self._handler_ref is not None else None

    @handler.setter
    def handler(self, handler: Any) -> None:
        self._handler_ref = weakref.ref(handler) if handler is not None else None

    home_per_server = Bool(
        config=True,
        help="""False (the default, PrimeHub's way): every server of a user mounts her one home
        claim ``claim-<user>``, so a file saved in one is in her others — the claim's storage must
        then attach to several pods at once (ReadWriteMany, e.g. NFS or CephFS; set
        ``storage_access_modes``) when her servers may run on different nodes. True: each server
        has a home of its own (``claim-<user>`` for the default server, ``claim-<user>--<server>``
        for named ones), which works with ReadWriteOnce storage. Used when ``pvc_name_template``
        is not configured. From ``$PRIMEHUB_HOME_PER_SERVER``.""",
    )

    @default("home_per_server")
    def _home_per_server_default(self) -> bool:
        return env_bool("PRIMEHUB_HOME_PER_SERVER", False)

    @default("pvc_name_template")
    def _pvc_name_template_default(self) -> str:
        if self.home_per_server:
            return claims.PER_SERVER_HOME_TEMPLATE
        return claims.SHARED_HOME_TEMPLATE

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        return _apply_user_options

    @default("options_form")
    def _options_form_default(self) -> Any:
        return _render_options_form

    @default("options_from_form")
    def _options_from_form_default(self) -> Any:
        return form.options_from_form

    async def _form_inputs(self) -> tuple[LaunchContext, Any, Any] | None:
        """The user's launch context, the catalog and current usage, for the form or a part of it."""
        context = await self._launch_context()
        if context is None:
            return None
        return context, *await self._catalog_and_usage("showing the server options")

    async def render_options_form(self) -> str:
        inputs = await self._form_inputs()
        if inputs is None:
            return f'<p class="alert alert-danger">{NO_CONTEXT}</p>'
        viewer = getattr(getattr(self, "handler", None), "current_user", None)
        for_user = self.user.name if viewer is not None and viewer.name != self.user.name else None
        # A launch link's presets hold until the next launch (JupyterHub may render the form twice).
        return form.render(
            *inputs,
            presets=self.launch_presets.get(self.user.name, self.name),
            last_group=self.launch_group,
            for_user=for_user,
            group_url=url_path_join(
                self.hub.base_url, "primehub/options", self.user.escaped_name, self.name
            ),
            groups_url=url_path_join(
                self.hub.base_url, "api/primehub/users", self.user.escaped_name, "groups"
            ),
            refresh_seconds=self.quota_refresh_interval,
        )

    async def groups_report(self) -> list[dict[str, Any]] | None:
        """The user's groups with quotas, usage and offers (``groups_api``), from the launch
        context stored at her last login or refresh — never a call to Keycloak; None without one."""
        context = launch_context(await self.user.get_auth_state())
        if context is None:
            return None
        catalog, usage_of = await self._catalog_and_usage("reading the groups' usage")
        return groups_api.groups_report(context, catalog, usage_of)

    async def render_group_options(self, group: str) -> str | None:
        """The form's part for ``group`` (fetched when the user switches groups); None if the
        user is not in it."""
        inputs = await self._form_inputs()
        return None if inputs is None else form.render_group(*inputs, group)

    def options_from_query(self, query_data: dict[str, list[str]]) -> dict[str, Any]:
        """A ``GET /hub/spawn[/<user>/<server>]?…`` — a link, maybe on another site — never starts
        a server (nor saves presets): its group, instance type and image only preselect the form,
        which JupyterHub then shows with this exception's message."""

        def first(*keys: str) -> str | None:
            return next((query_data[k][0] for k in keys if query_data.get(k)), None)

        presets = form.Presets(
            group=first("group"),
            instance_type=first("instance_type", "instancetype"),
            image=first("image"),
        )
        if presets != form.Presets():  # e.g. ?utm_source=… keeps a launch link's presets
            self.launch_presets.put(self.user.name, self.name, presets)
        raise LinkDoesNotLaunch()

    async def load_user_options(self) -> None:
        """Options were checked and applied by ``apply_user_options``; KubeSpawner's profiles are unused."""

    async def _check_and_apply(self, user_options: dict[str, Any]) -> None:
        refresh, self._spawn_refresh = self._spawn_refresh, None
        try:
            if refresh is None:
                launch = await self._prepare_launch(user_options)
            else:
                launch = await spawn_refresh.prepared_alongside(
                    refresh,
                    self.user.name,
                    lambda: self._prepare_launch(user_options),
                    lambda: self.authenticator.launch_state(self.user),
                )
        except OptionError as error:
            raise self._refusal(error) from None
        context, request, catalog, choice, pod, saves_presets = launch
        try:
            # check and reserve with no await in between
            self._admit(choice, gpu_resource_names(catalog.instance_types.values()))
        except OptionError as error:
            raise self._refusal(error) from None
        try:
            for trait, value in self._settings(choice, context, request.safe_mode, pod).items():
                setattr(self, trait, value)
        except BaseException:
            self.ledger.release(self._ledger_key)
            raise
        for warning in self._launch_warnings:
            self.log.warning("%s: %s", self._log_name, warning)
        self.user_options = choice.user_options()
        sharing.end_group_share(self)  # a share left by a stop the hub did not see end
        self.launch_group = choice.group
        self.launch_record = LaunchRecord.of(choice)
        self.launch_presets.discard(self.user.name, self.name)
        self.orm_spawner.user_options = self.user_options
        if saves_presets:
            self._save_env_presets(context.user.id, request.env)

    def _refusal(self, error: OptionError) -> SpawnException:
        """The 400 for a refused launch; the authenticator is told, so that a loop of refused
        launches does not cost Keycloak a refresh each."""
        if isinstance(self.authenticator, PrimeHubAuthenticator):
            self.authenticator.note_refused_launch(self.user.name)
        reason = "quota" if error.field == "quota" else "invalid_options"
        return SpawnException(f"user_options.{error.field}: {error.reason}", reason=reason)

    def _settings(
        self, choice: Any, context: Any, safe_mode: bool, pod: volumes.PodVolumes
    ) -> dict[str, Any]:
        """Every KubeSpawner trait of this spawn, from the configured values (never a previous spawn's)."""
        base = copy.deepcopy(self._configured)
        instance_type = choice.instance_type.instance_type
        settings: dict[str, Any] = {
            **compose.resources(instance_type),
            **compose.scheduling(
                instance_type,
                base["node_selector"],
                base["tolerations"],
                self.scheduling_replaces_defaults,
            ),
            **compose.image(choice),
        }
        paths = self._volume_settings()
        home_path = paths.safe_mode_home_path if safe_mode else paths.home_path
        home = {"name": "volume-home", "persistentVolumeClaim": {"claimName": self.pvc_name}}
        settings.update(
            volumes=[*base["volumes"], home, *pod.volumes],
            volume_mounts=[
                *base["volume_mounts"],
                {"name": "volume-home", "mountPath": home_path},
                *pod.mounts,
            ],
            storage_pvc_ensure=True,
            storage_capacity=context.user.volume_capacity or self.home_capacity,
            environment={
                **base["environment"],
                **_literal(compose.environment(choice, context, self.user.name, pod.env)),
            },
            extra_labels={
                **base["extra_labels"],
                **compose.labels(self.user.name, choice.offer.group.key),
            },
            extra_annotations={
                **base["extra_annotations"],
                **_literal(compose.usage_annotation(self.pod_name, self.user.name, choice)),
            },
            image_pull_secrets=settings.get("image_pull_secrets") or base["image_pull_secrets"],
        )
        hooks = dict(base["lifecycle_hooks"])
        links = volumes.link_command(pod.links)
        if links and "postStart" not in hooks:
            hooks["postStart"] = {"exec": {"command": links}}
        settings["lifecycle_hooks"] = hooks
        settings.update(self._day_two_settings(choice, settings, base))
        return settings

    def _day_two_settings(
        self, choice: Any, settings: dict[str, Any], base: dict[str, Any]
    ) -> dict[str, Any]:
        """Idle timeouts, writable mounts, sudo and the start-up script, for ``settings``."""
        group = choice.offer.group
        self.server_idle_timeout = culling.applicable_timeout(
            choice.instance_type.instance_type, group, self.idle_timeout
        )
        environment = {
            **settings["environment"],
            **culling.kernel_culling_env(self.kernel_idle_timeout),
            "PRIMEHUB_HUB_AUTH_CACHE_MAX_AGE": str(self.hub_auth_cache_max_age),
            "JUPYTERHUB_ACTIVITY_INTERVAL": str(
                culling.activity_interval(self.server_idle_timeout)
            ),
        }
        sudo = self.grant_sudo if group.grant_sudo is None else group.grant_sudo
        volume_list, mounts = list(settings["volumes"]), list(settings["volume_mounts"])
        memory = {v["name"] for v in volume_list if "emptyDir" in v}
        ours = [m for m in mounts[len(base["volume_mounts"]) :] if m["name"] not in memory]
        uid, gid = self._notebook_ids
        todo, self._preparing = startup.still_to_prepare(
            ours, volume_list, self._claim_uids, self.prepared_volumes, f"{uid}:{gid}"
        )
        self._unidentified = startup.unidentified_claims(todo, volume_list, self._claim_uids)
        init_containers = list(base["init_containers"])
        if todo or sudo:
            init_containers.append(
                _literal(
                    startup.prepare_container(
                        settings["image"], todo, uid, gid, sudo, self.image_pull_policy
                    )
                )
            )
        if sudo:
            volume, mount = startup.sudo_volume()
            volume_list.append(volume)
            mounts.append(mount)
        return {
            "environment": environment,
            "volumes": volume_list,
            "volume_mounts": mounts,
            "init_containers": init_containers,
            "allow_privilege_escalation": True if sudo else base["allow_privilege_escalation"],
            "cmd": startup.start_command(base["cmd"], profiles=self.startup_profiles),
        }

    @property
    def _notebook_ids(self) -> tuple[int, int]:
        """The notebook user's uid and gid: ``uid`` and ``gid`` when numbers, else PrimeHub's."""
        return (
            self.uid if isinstance(self.uid, int) else 1000,
            self.gid if isinstance(self.gid, int) else 100,
        )

    def _volume_settings(self) -> volumes.VolumeSettings:
        return volumes.VolumeSettings(
            phfs_claim=self.phfs_claim or None, gitsync_host_root=self.gitsync_host_root
        )

    async def start(self) -> Any:
        """KubeSpawner's start (after the spawn's refresh, when ``apply_user_options`` did not
        wait for it); once the server runs, its init container has prepared the mounts it was
        given, and later launches skip them."""
        refresh, self._spawn_refresh = self._spawn_refresh, None
        if refresh is not None:
            await spawn_refresh.confirmed(refresh, self.user.name)
        url = await super().start()
        keys = self._preparing + await self._keys_of_created_claims()
        self.prepared_volumes = startup.remember_prepared(self.prepared_volumes, keys)
        return url

    async def _keys_of_created_claims(self) -> list[str]:
        """The prepared keys of the claims this start created (the home claim), unknown when the
        launch was checked: the server runs, so each is in use — Kubernetes keeps a claim in use
        from deletion — and is the one its init container prepared. One read, at a first start."""
        if not self._unidentified:
            return []
        names = [volumes.claim_of(volume) or "" for _, volume in self._unidentified]
        try:
            uids = claims.claim_uids(await claims.read_claims(self.api, self.namespace, names))
        except Exception as error:  # the next launch prepares them again
            self.log.warning("%s: created claims not read: %s", self._log_name, error)
            return []
        uid, gid = self._notebook_ids
        keys = (startup.prepared_key(m, v, uids, f"{uid}:{gid}") for m, v in self._unidentified)
        return [key for key in keys if key]

    async def progress(self) -> Any:
        """KubeSpawner's progress (the pod's events), preceded by this launch's warnings."""
        for warning in self._launch_warnings:
            yield {"progress": 1, "message": f"Warning: {warning}"}
        async for event in super().progress():
            yield event

    def _save_env_presets(self, user_id: str, env: tuple[tuple[str, str], ...]) -> None:
        """Save the env rows as the user's presets, in the background (never delays the spawn)."""
        directory = getattr(self.authenticator, "directory", None)
        if directory is None:
            return

        async def save() -> None:
            try:
                await directory.save_env_presets(user_id, env)
            except Exception as error:
                self.log.warning(
                    "Could not save the environment presets of %s: %s", self.user.name, error
                )

        task = asyncio.ensure_future(save())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def run_post_stop_hook(self) -> Any:
        """JupyterHub calls this whenever a server stops — also when its pod was already gone and
        ``stop`` is never called: the share with its launch group ends here."""
        sharing.end_group_share(self)
        return super().run_post_stop_hook()

    async def delete_forever(self) -> None:
        sharing.end_group_share(self)
        await super().delete_forever()

    @property
    def shared_with_launch_group(self) -> bool:
        record = self.launch_record
        return record is not None and sharing.is_shared(self.db, self.orm_spawner, record.group_key)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.launch_group:
            state["primehub_launch_group"] = self.launch_group
        if self.launch_record:
            state[servers.STATE_KEY] = self.launch_record.to_dict()
        if self.prepared_volumes:
            state[PREPARED_STATE_KEY] = list(self.prepared_volumes)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.launch_group = state.get("primehub_launch_group") or self.launch_group
        self.launch_record = LaunchRecord.from_dict(state.get(servers.STATE_KEY)) or (
            self.launch_record
        )
        prepared = state.get(PREPARED_STATE_KEY)
        if isinstance(prepared, list) and all(isinstance(key, str) for key in prepared):
            self.prepared_volumes = prepared


PREPARED_STATE_KEY = "primehub_prepared"


class LinkDoesNotLaunch(Exception):
    """A GET with launch options: shown above the form JupyterHub renders instead of launching."""

    def __str__(self) -> str:
        return "A link can preselect server options but not start a server: check them and press Start."


def _literal(value: Any) -> Any:
    """KubeSpawner expands ``{username}``-style fields in env values, annotations and init
    containers; ours are literal (a user's ``{x}`` must not become a KeyError). Every string of
    ``value`` (a string, or lists and dicts of them) is escaped."""
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, list):
        return [_literal(item) for item in value]
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    return value


async def _render_options_form(spawner: PrimeHubSpawner) -> str:
    return await spawner.render_options_form()


async def _apply_user_options(spawner: PrimeHubSpawner, user_options: dict[str, Any]) -> None:
    await spawner._check_and_apply(user_options)
