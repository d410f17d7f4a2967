"""Reading a user's launch context from Keycloak's admin API, asynchronously, with a group cache.

A login costs three admin calls whatever the user's groups: the user (attributes), her groups
(with attributes) and her effective realm roles. Each group's effective realm roles are cached for
``group_cache_ttl`` seconds and shared by every user of the group; the user's own effective roles,
read fresh each time, filter them — so a role taken from a group, or a group taken from a user,
counts at the next refresh, while a newly added role shows up within the cache lifetime.

The realm's top-level group names decide which groups keep PrimeHub's volume names (see
:mod:`primehub_spawner.naming`): they are listed once per ``group_cache_ttl`` for all logins, and
again at once when a user's top-level group is not in the list under its name (created or renamed
since).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakError, KeycloakGetError, raise_error_from_response

from .context import GroupContext, LaunchContext, UserContext, env_presets_value
from .naming import TopLevelGroups, is_top_level
from .user_profile import ENV_PRESETS, UserProfile, dropped_warning

log = logging.getLogger("primehub_spawner.keycloak")
T = TypeVar("T")

# The realm-management roles of the client's service account, by call.
READ_ROLE = "view-users"
WRITE_ROLE = "manage-users"
SERVICE_ACCOUNT_ROLES = (READ_ROLE, WRITE_ROLE)
# Top-level groups per page of the realm's group listing (one call below this many).
GROUP_PAGE = 500


class IdentityServiceError(Exception):
    """Keycloak could not answer a call the launch context needs (unreachable, refusing, or the
    service account lacks a role). ``call`` says which; a refusal (403) names the role it needs."""

    def __init__(self, call: str, cause: BaseException, role: str = READ_ROLE) -> None:
        self.call = call
        self.cause = cause
        status = getattr(cause, "response_code", None)
        detail = f"HTTP {status}" if status else type(cause).__name__
        needs = (
            f"; the client's service account needs the realm-management role {role}"
            if status == 403
            else ""
        )
        super().__init__(f"Keycloak admin API: {call} failed ({detail}: {cause}){needs}")


# What a user PUT must carry besides ``attributes`` (the user profile's own attributes).
PROFILE_FIELDS = ("username", "email", "firstName", "lastName")


@dataclass(frozen=True)
class AdminRole:
    """The role that makes a hub admin: ``client/role`` (a client role) or ``role`` (a realm role)."""

    client: str | None
    name: str

    @classmethod
    def parse(cls, text: str) -> AdminRole:
        client, _, name = text.rpartition("/")
        return cls(client or None, name)

    def held(self, realm_roles: frozenset[str], token_claims: Mapping[str, Any]) -> bool:
        if self.client is None:
            return self.name in realm_roles
        roles = ((token_claims.get("resource_access") or {}).get(self.client) or {}).get(
            "roles"
        ) or []
        return self.name in roles


class MissingRequiredRole(Exception):
    """The user does not hold the role the hub requires to use it (``required_role``)."""

    def __init__(self, role: str) -> None:
        self.role = role
        super().__init__(f"the user does not hold the required role {role}")


class KeycloakDirectory:
    """The admin-API reads behind a launch context, through python-keycloak's async methods."""

    def __init__(
        self,
        server_url: str,
        realm: str,
        client_id: str,
        client_secret: str,
        *,
        verify: bool = True,
        global_group: str = "everyone",
        role_prefix: str = "",
        admin_role: str = "realm-management/realm-admin",
        required_role: str = "",
        group_cache_ttl: float = 300.0,
        timeout: float = 10.0,
    ) -> None:
        self.realm = realm
        self.global_group = global_group
        self.role_prefix = role_prefix
        self.admin_role = AdminRole.parse(admin_role)
        self.required_role = required_role
        self.group_cache_ttl = group_cache_ttl
        self.connection = KeycloakOpenIDConnection(
            server_url=server_url,
            realm_name=realm,
            client_id=client_id,
            client_secret_key=client_secret,
            verify=verify,
            timeout=timeout,
        )
        self.admin = KeycloakAdmin(connection=self.connection)
        self._group_roles: dict[str, tuple[float, frozenset[str]]] = {}
        self._global: tuple[float, dict[str, Any]] | None = None
        self._in_flight: dict[str, asyncio.Future[frozenset[str]]] = {}
        self._profile: tuple[float, UserProfile | None] | None = None
        self._profile_read: asyncio.Future[UserProfile | None] | None = None
        self._top_level: tuple[float, TopLevelGroups] | None = None
        self._top_level_read: asyncio.Future[TopLevelGroups] | None = None
        self._warned: set[str] = set()

    async def _call(self, what: str, call: Awaitable[T], role: str = READ_ROLE) -> T:
        try:
            return await call
        except (KeycloakError, OSError, TimeoutError) as error:
            raise IdentityServiceError(what, error, role) from error
        except Exception as error:  # httpx transport errors and python-keycloak's TypeErrors
            if type(error).__module__.startswith(("httpx", "httpcore", "keycloak")) or isinstance(
                error, TypeError
            ):
                raise IdentityServiceError(what, error, role) from error
            raise

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    @property
    def user_profile(self) -> UserProfile | None:
        """The realm's user-profile rules, once read (None before, or when they could not be)."""
        return self._profile[1] if self._profile else None

    async def check_user_profile(self) -> UserProfile | None:
        """Read the realm's user profile (once per ``group_cache_ttl``) and warn, once, when it
        drops attributes the plugin reads. Never fails a login: a profile that cannot be read is
        logged and skipped."""
        if self._profile_is_fresh():
            return self.user_profile
        if self._profile_read is None:  # one read however many logins wait for it
            self._profile_read = asyncio.ensure_future(self._read_user_profile())
            self._profile_read.add_done_callback(lambda _: setattr(self, "_profile_read", None))
        return await asyncio.shield(self._profile_read)

    def _profile_is_fresh(self) -> bool:
        return bool(self._profile) and time.monotonic() - self._profile[0] < self.group_cache_ttl

    async def _read_user_profile(self) -> UserProfile | None:
        try:
            config = await self._raw_get(
                "reading the realm's user profile", f"admin/realms/{self.realm}/users/profile"
            )
            profile = UserProfile.from_config(config)
        except (IdentityServiceError, ValueError, TypeError, AttributeError) as error:
            self._warn_once(
                "profile-unreadable", "Cannot check the realm's user profile: %s", error
            )
            profile = self.user_profile  # the last one read, if any, until the next try
            self._profile = (time.monotonic(), profile)
            return profile
        self._warned.discard("profile-unreadable")
        self._profile = (time.monotonic(), profile)
        dropped = profile.dropped()
        if dropped:  # once for each set of dropped attributes, until the realm keeps them again
            self._warn_once(f"dropped:{dropped}", "%s", dropped_warning(self.realm, dropped))
        else:
            self._warned = {
                key
                for key in self._warned
                if not key.startswith("dropped:") and key != "presets-dropped"
            }
        return profile

    def env_presets_limit(self) -> int | None:
        """The most characters Keycloak keeps in ``predefinedEnvs``, if known (None also when the
        realm does not keep it at all: nothing is saved then, so nothing needs to fit)."""
        profile = self.user_profile
        rule = profile.rule(ENV_PRESETS) if profile else None
        return rule.max_length if rule and rule.writable else None

    async def _raw_get(self, what: str, path: str, **params: Any) -> Any:
        async def get() -> Any:
            response = await self.connection.a_raw_get(path, **params)
            if response.status_code >= 400:
                raise_error_from_response(response, KeycloakGetError)
            return response.json()

        return await self._call(what, get())

    async def group_roles(self, group_id: str) -> frozenset[str]:
        """A group's effective realm roles (its own, its parents', composites), cached per group."""
        cached = self._group_roles.get(group_id)
        if cached and time.monotonic() - cached[0] < self.group_cache_ttl:
            return cached[1]
        if group_id in self._in_flight:  # one request per group however many logins wait for it
            return await asyncio.shield(self._in_flight[group_id])
        future: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
        self._in_flight[group_id] = future
        try:
            roles = await self._raw_get(
                f"reading the effective realm roles of group {group_id}",
                f"admin/realms/{self.realm}/groups/{quote(group_id)}/role-mappings/realm/composite",
            )
            names = frozenset(role["name"] for role in roles)
            self._group_roles[group_id] = (time.monotonic(), names)
            future.set_result(names)
            return names
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters get it, nobody logs "never retrieved"
            raise
        finally:
            del self._in_flight[group_id]

    async def top_level_groups(self, expected: Mapping[str, str] | None = None) -> TopLevelGroups:
        """The realm's top-level groups, read once per ``group_cache_ttl`` however many logins wait
        for them, and read again at once when one of ``expected`` (id → name) is not among them
        under that name. Needs ``view-users``: with ``query-groups`` alone Keycloak answers an
        empty list, and every group then goes without PrimeHub's names."""
        cached = self._top_level
        if (
            cached
            and time.monotonic() - cached[0] < self.group_cache_ttl
            and all(cached[1].knows(i, n) for i, n in (expected or {}).items())
        ):
            return cached[1]
        if self._top_level_read is None:
            read = asyncio.ensure_future(self._read_top_level())
            self._top_level_read = read
            read.add_done_callback(self._top_level_read_done)
        return await asyncio.shield(self._top_level_read)

    def _top_level_read_done(self, read: asyncio.Future[TopLevelGroups]) -> None:
        self._top_level_read = None
        if not read.cancelled():
            read.exception()  # retrieved: waiters get it, nobody logs "never retrieved"

    async def _read_top_level(self) -> TopLevelGroups:
        names: dict[str, str] = {}
        first = 0
        while True:
            page = await self._raw_get(
                "listing the realm's top-level groups",
                f"admin/realms/{self.realm}/groups",
                briefRepresentation="true",
                subGroupsCount="false",
                first=first,
                max=GROUP_PAGE,
            )
            names.update((group["id"], group["name"]) for group in page)
            if len(page) < GROUP_PAGE:
                break
            first += GROUP_PAGE
        groups = TopLevelGroups(names)
        self._top_level = (time.monotonic(), groups)
        return groups

    async def _global_group(self) -> dict[str, Any]:
        if self._global and time.monotonic() - self._global[0] < self.group_cache_ttl:
            return self._global[1]
        group = await self._call(
            f"reading the global group /{self.global_group}",
            self.admin.a_get_group_by_path(f"/{self.global_group}"),
        )
        self._global = (time.monotonic(), group)
        return group

    async def user_id(self, username: str) -> str | None:
        """The Keycloak id of the user with this username, or None if there is none."""
        return await self._call("looking up the user", self.admin.a_get_user_id(username))

    async def launch_context(self, user_id: str, token_claims: Mapping[str, Any]) -> LaunchContext:
        """The user's groups with their settings and grants, the global group, her attributes.

        The first one (and the first after ``group_cache_ttl``) also reads the realm's user
        profile, to warn about attributes it drops."""
        first = () if self._profile_is_fresh() else (self.check_user_profile(),)
        user, groups, effective, *_ = await asyncio.gather(
            self._call("reading the user", self.admin.a_get_user(user_id)),
            self._call(
                "reading the user's groups",
                self.admin.a_get_user_groups(user_id, brief_representation=False),
            ),
            self._call(
                "reading the user's effective realm roles",
                self.admin.a_get_composite_realm_roles_of_user(user_id),
            ),
            *first,
        )
        effective_roles = frozenset(role["name"] for role in effective)
        global_raw = next((g for g in groups if g["path"] == f"/{self.global_group}"), None)
        member_of_global = global_raw is not None
        if global_raw is None:
            try:
                global_raw = await self._global_group()
            except IdentityServiceError as error:
                if getattr(error.cause, "response_code", None) != 404:
                    raise
                log.warning(
                    "the global group /%s does not exist; no global resources", self.global_group
                )
        launchable = [g for g in groups if g is not global_raw]
        own_top_level = {
            g["id"]: g["name"] for g in groups if is_top_level(g["name"], g.get("path"))
        }
        top_level, *role_sets = await asyncio.gather(
            self.top_level_groups(own_top_level),
            *(self.group_roles(g["id"]) for g in launchable),
        )
        for group_id, name in own_top_level.items():
            if not top_level.knows(group_id, name):
                self._warn_once(
                    f"unlisted:{group_id}",
                    "group /%s is not in the realm's group listing (created meanwhile, or the "
                    "service account lacks %s): its volume and PHFS folder are not mounted",
                    name,
                    READ_ROLE,
                )
        contexts = tuple(
            GroupContext.build(
                group,
                roles & effective_roles,
                self.role_prefix,
                top_level.volume_name(group["id"], group["name"], group.get("path")),
            )
            for group, roles in zip(launchable, role_sets, strict=True)
        )
        global_context = None
        if global_raw is not None:
            global_roles = await self.group_roles(global_raw["id"])
            if member_of_global:
                global_roles &= effective_roles
            global_context = GroupContext.build(
                global_raw,
                global_roles,
                self.role_prefix,
                top_level.volume_name(global_raw["id"], global_raw["name"], global_raw.get("path")),
            )
        admin = self.role_verdict(effective_roles, token_claims)
        return LaunchContext(
            user=UserContext.build(user, admin), groups=contexts, global_group=global_context
        )

    def role_verdict(
        self, effective_roles: frozenset[str], token_claims: Mapping[str, Any]
    ) -> bool:
        """Whether the user is a hub admin; raises MissingRequiredRole when she lacks the
        required role."""
        if self.required_role and not AdminRole.parse(self.required_role).held(
            effective_roles, token_claims
        ):
            raise MissingRequiredRole(self.required_role)
        return self.admin_role.held(effective_roles, token_claims)

    async def save_env_presets(self, user_id: str, env: tuple[tuple[str, str], ...]) -> bool:
        """Store the user's environment variables as the ``predefinedEnvs`` attribute (PrimeHub's
        JSON); False, with a warning, when the realm's user profile would drop it.

        Keycloak (≥ 24) removes the user-profile attributes a PUT omits, so they are sent back as
        read (a change to them in the moment between read and write is lost: Keycloak has no
        per-attribute update); nothing else is sent. Needs the service account's ``manage-users``
        role."""
        profile = await self.check_user_profile()
        if profile is not None and not profile.rule(ENV_PRESETS).writable:
            self._warn_once(
                "presets-dropped",
                "Environment presets are not saved: %s",
                dropped_warning(self.realm, [ENV_PRESETS]),
            )
            return False
        user = await self._call("reading the user", self.admin.a_get_user(user_id))
        attributes = dict(user.get("attributes") or {})
        attributes[ENV_PRESETS] = [env_presets_value(env)]
        # The user-profile attributes, which Keycloak removes when a PUT omits them, and nothing
        # else: fields such as ``enabled`` are left as they are when not sent, so an
        # administrator's disable made since the read stays.
        payload = {key: user[key] for key in PROFILE_FIELDS if key in user}
        payload["attributes"] = attributes
        await self._call(
            "saving the user's environment presets",
            self.admin.a_update_user(user_id, payload),
            WRITE_ROLE,
        )
        return True

    async def close(self) -> None:
        await self.connection.aclose()
