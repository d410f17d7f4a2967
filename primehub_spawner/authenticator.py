"""PrimeHubAuthenticator: Keycloak login that knows the user's groups, attributes, roles and admin rights."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import jwt
from oauthenticator.generic import GenericOAuthenticator
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Bool, Float, Integer, Unicode, default

from . import auth_states, spawn_refresh
from .auth_states import AUTH_STATE_KEY, MEMBERSHIP_KEY
from .context import GroupContext, LaunchContext
from .environment import env_bool, env_float, env_int, env_str
from .identity_errors import (
    IdentityServiceUnavailable,
    LaunchWithoutRequiredRole,
    RequiredRoleMissing,
)
from .keycloak import IdentityServiceError, KeycloakDirectory, MissingRequiredRole
from .logout import PrimeHubLogoutHandler


class PrimeHubAuthenticator(GenericOAuthenticator):
    """Log in through Keycloak and load what PrimeHub needs to know about the user.

    At every login and refresh the user's groups (with their attributes), each group's effective
    realm roles (``it:``, ``img:``, ``ds:``, ``ds:rw:``), the global group's and the user's own
    attributes are read through Keycloak's admin API with the client's service account, and stored
    as a compact launch context in the encrypted ``auth_state``. JupyterHub groups mirror the user's
    Keycloak groups (the global group excluded); hub admin follows :attr:`admin_role`.

    The client needs a service account with the ``realm-management`` role ``view-users`` (and
    ``manage-users`` to save environment presets), and the realm's user profile must keep the
    user attributes the plugin reads (see :mod:`primehub_spawner.user_profile`).
    """

    login_service = Unicode("PrimeHub", config=True, help="Name on the login button.")
    logout_handler = PrimeHubLogoutHandler

    keycloak_url = Unicode(
        config=True,
        help="""Keycloak's base URL for the hub's own calls (token, userinfo, admin API), e.g.
        ``http://keycloak.keycloak.svc:8080``. From ``$KEYCLOAK_URL``.""",
    )

    @default("keycloak_url")
    def _keycloak_url_default(self) -> str:
        return env_str("KEYCLOAK_URL").rstrip("/")

    keycloak_public_url = Unicode(
        config=True,
        help="""Keycloak's base URL as browsers reach it (login page, logout). From
        ``$KEYCLOAK_PUBLIC_URL``; defaults to :attr:`keycloak_url`.""",
    )

    @default("keycloak_public_url")
    def _keycloak_public_url_default(self) -> str:
        return env_str("KEYCLOAK_PUBLIC_URL", default=self.keycloak_url).rstrip("/")

    realm = Unicode(
        config=True, help="Keycloak realm. From ``$KEYCLOAK_REALM``; default ``primehub``."
    )

    @default("realm")
    def _realm_default(self) -> str:
        return env_str("KEYCLOAK_REALM", default="primehub")

    role_prefix = Unicode(
        config=True,
        help="""Prefix of the resource roles: with ``ph``, roles read ``ph:it:<name>`` and so on.
        From ``$KEYCLOAK_ROLE_PREFIX``; default none.""",
    )

    @default("role_prefix")
    def _role_prefix_default(self) -> str:
        return env_str("KEYCLOAK_ROLE_PREFIX")

    global_group = Unicode(
        config=True,
        help="""The hidden group whose resources every group may use; never offered as a launch
        group. From ``$PRIMEHUB_GLOBAL_GROUP``; default ``everyone``.""",
    )

    @default("global_group")
    def _global_group_default(self) -> str:
        return env_str("PRIMEHUB_GLOBAL_GROUP", default="everyone")

    required_role = Unicode(
        config=True,
        help="""A role a user must hold to log in (PrimeHub's ``scopeRequired``): ``<role>`` for a
        realm role (effective, so one mapped to her groups counts) or ``<client>/<role>`` for a
        client role (read from the access token). Others get a refusal page and nothing is made for
        them; a user who loses the role is logged out at her next refresh, and admins cannot launch
        for her. Empty (the default): no role is required. From ``$PRIMEHUB_REQUIRED_ROLE``.""",
    )

    @default("required_role")
    def _required_role_default(self) -> str:
        return env_str("PRIMEHUB_REQUIRED_ROLE")

    admin_role = Unicode(
        config=True,
        help="""The role that makes a hub admin: ``<client>/<role>`` for a client role (read from the
        access token, so it follows within one token lifetime) or ``<role>`` for a realm role (read
        from the admin API at every refresh). From ``$PRIMEHUB_ADMIN_ROLE``; default
        ``realm-management/realm-admin``.""",
    )

    @default("admin_role")
    def _admin_role_default(self) -> str:
        return env_str("PRIMEHUB_ADMIN_ROLE", default="realm-management/realm-admin")

    group_cache_ttl = Float(
        config=True,
        help="""Seconds a group's effective realm roles are cached for all its users. Removals count
        at once (each refresh reads the user's own roles); additions within this time. From
        ``$PRIMEHUB_GROUP_CACHE_TTL``; default 300.""",
    )

    @default("group_cache_ttl")
    def _group_cache_ttl_default(self) -> float:
        return env_float("PRIMEHUB_GROUP_CACHE_TTL", 300.0)

    identity_service_grace = Float(
        config=True,
        help="""When Keycloak cannot be reached during a refresh, keep using the launch context
        loaded at most this many seconds ago; beyond that, require a new login, and refuse launches
        for that user (503) until a refresh or login succeeds, including an admin's. From
        ``$PRIMEHUB_IDENTITY_SERVICE_GRACE``; default 600.""",
    )

    @default("identity_service_grace")
    def _identity_service_grace_default(self) -> float:
        return env_float("PRIMEHUB_IDENTITY_SERVICE_GRACE", 600.0)

    admin_api_timeout = Float(
        config=True,
        help="""Timeout in seconds of each Keycloak admin API call. From
        ``$KEYCLOAK_ADMIN_API_TIMEOUT``; default 10.""",
    )

    @default("admin_api_timeout")
    def _admin_api_timeout_default(self) -> float:
        return env_float("KEYCLOAK_ADMIN_API_TIMEOUT", 10.0)

    oidc_max_concurrent_requests = Integer(
        min=1,
        config=True,
        help="""How many token and userinfo requests to Keycloak may be in flight at once (tornado's
        ``max_clients`` of the authenticator's own HTTP client). Tornado's shared client allows
        10: in a burst of spawns, each waiting for its pre-spawn userinfo, the rest would queue and
        the spawns trickle in over seconds, their database work overlapping on the hub's event
        loop. From ``$PRIMEHUB_OIDC_MAX_CONCURRENT_REQUESTS``; default 100, JupyterHub's
        ``concurrent_spawn_limit``.""",
    )

    @default("oidc_max_concurrent_requests")
    def _oidc_max_concurrent_requests_default(self) -> int:
        return env_int("PRIMEHUB_OIDC_MAX_CONCURRENT_REQUESTS", 100)

    @default("http_client")
    def _http_client_default(self) -> AsyncHTTPClient:
        return AsyncHTTPClient(force_instance=True, max_clients=self.oidc_max_concurrent_requests)

    launch_context_max_age = Float(
        config=True,
        help="""Seconds a launch context counts as fresh: a refresh (including the forced one at
        every spawn, :attr:`refresh_alongside_spawn`) within this time after the last load makes
        no call to Keycloak. 0 (the default) checks at every spawn (a userinfo; the admin API
        only when groups or roles changed, see :attr:`groups_claim`), so a group or role removed
        in Keycloak is gone at the next spawn; a positive value saves that userinfo at the price
        of that delay. From ``$PRIMEHUB_LAUNCH_CONTEXT_MAX_AGE``.""",
    )

    @default("launch_context_max_age")
    def _launch_context_max_age_default(self) -> float:
        return env_float("PRIMEHUB_LAUNCH_CONTEXT_MAX_AGE", 0.0)

    refresh_alongside_spawn = Bool(
        config=True,
        help="""Make the refresh before a spawn (a userinfo, see :attr:`launch_context_max_age`)
        alongside the spawn's own preparation instead of before it: the spawner checks the options
        and reads the volume claims meanwhile, creates nothing before the refresh has answered,
        and checks the launch again when the refresh changed the user's groups, roles or
        attributes — so a group or role removed in Keycloak still counts at the next spawn, and
        the round trip no longer adds to the spawn time. With it (the default) JupyterHub's own
        ``refresh_pre_spawn``, which runs before everything else, defaults to False; with a
        spawner that cannot prepare a launch meanwhile the refresh is awaited before the spawn
        goes on. False: ``refresh_pre_spawn`` as in OAuthenticator. From
        ``$PRIMEHUB_REFRESH_ALONGSIDE_SPAWN``.""",
    )

    @default("refresh_alongside_spawn")
    def _refresh_alongside_spawn_default(self) -> bool:
        return env_bool("PRIMEHUB_REFRESH_ALONGSIDE_SPAWN", True)

    @default("refresh_pre_spawn")
    def _refresh_pre_spawn_default(self) -> bool:
        return self.enable_auth_state and not self.refresh_alongside_spawn

    refused_launch_refresh_interval = Float(
        config=True,
        help="""Seconds after a refused launch (HTTP 400: bad options, over quota) during which a
        refresh of that user — the forced one at every spawn included — reuses the
        stored launch context instead of calling Keycloak. A loop of refused launches then costs
        Keycloak one refresh (a token refresh, a userinfo and three admin calls) per interval, not
        one per request; a launch corrected within the interval is checked against groups and
        roles at most this old. 0 turns it off. From
        ``$PRIMEHUB_REFUSED_LAUNCH_REFRESH_INTERVAL``; default 10.""",
    )

    @default("refused_launch_refresh_interval")
    def _refused_launch_refresh_interval_default(self) -> float:
        return env_float("PRIMEHUB_REFUSED_LAUNCH_REFRESH_INTERVAL", 10.0)

    groups_claim = Unicode(
        config=True,
        help="""The userinfo claim with the user's group paths (Keycloak's *Group Membership*
        mapper, full paths, added to userinfo). With it and :attr:`roles_claim`, a refresh — the
        one at every spawn included — asks Keycloak only for userinfo (and a token when the
        access token has expired) and reads the admin API only when her groups or roles changed,
        or when the stored attributes are older than :attr:`attribute_refresh_interval`. Without
        these claims every refresh reads the admin API (three calls). From
        ``$KEYCLOAK_GROUPS_CLAIM``; default ``groups``.""",
    )

    @default("groups_claim")
    def _groups_claim_default(self) -> str:
        return env_str("KEYCLOAK_GROUPS_CLAIM", default="groups")

    roles_claim = Unicode(
        config=True,
        help="""The userinfo claim with the user's effective realm roles (Keycloak's *User Realm
        Role* mapper, multivalued, added to userinfo); see :attr:`groups_claim`. From
        ``$KEYCLOAK_ROLES_CLAIM``; default ``primehub_roles``.""",
    )

    @default("roles_claim")
    def _roles_claim_default(self) -> str:
        return env_str("KEYCLOAK_ROLES_CLAIM", default="primehub_roles")

    attribute_refresh_interval = Float(
        config=True,
        help="""Seconds a refresh whose groups and roles (from userinfo, see :attr:`groups_claim`)
        are unchanged reuses the stored attributes of the user and her groups (quotas, volumes,
        presets) instead of reading the admin API. A group or role removed counts at the next
        refresh whatever this is; an attribute changed, within this time. From
        ``$PRIMEHUB_ATTRIBUTE_REFRESH_INTERVAL``; default 300.""",
    )

    @default("attribute_refresh_interval")
    def _attribute_refresh_interval_default(self) -> float:
        return env_float("PRIMEHUB_ATTRIBUTE_REFRESH_INTERVAL", 300.0)

    share_reconcile_interval = Float(
        config=True,
        help="""Seconds between two passes that delete the access roles of group shares that no
        longer exist (revoked through JupyterHub's own sharing API, or left by a server that
        stopped while the hub was down); the hub also does it at start. From
        ``$PRIMEHUB_SHARE_RECONCILE_INTERVAL``; default 60.""",
    )

    @default("share_reconcile_interval")
    def _share_reconcile_interval_default(self) -> float:
        return env_float("PRIMEHUB_SHARE_RECONCILE_INTERVAL", 60.0)

    post_logout_redirect_url = Unicode(
        config=True,
        help="""Where Keycloak sends the browser after logout; it must be one of the client's valid
        post-logout redirect URIs. From ``$KEYCLOAK_POST_LOGOUT_REDIRECT_URL``; default: this hub's
        login page.""",
    )

    @default("post_logout_redirect_url")
    def _post_logout_redirect_url_default(self) -> str:
        return env_str("KEYCLOAK_POST_LOGOUT_REDIRECT_URL")

    # -- OAuthenticator settings derived from the Keycloak ones -----------------------------------

    @default("client_id")
    def _client_id_default(self) -> str:
        return env_str("KEYCLOAK_CLIENT_ID", "OAUTH_CLIENT_ID", default="jupyterhub")

    @default("client_secret")
    def _client_secret_default(self) -> str:
        return env_str("KEYCLOAK_CLIENT_SECRET", "OAUTH_CLIENT_SECRET")

    def _oidc(self, public: bool = False) -> str:
        base = self.keycloak_public_url if public else self.keycloak_url
        return f"{base}/realms/{self.realm}/protocol/openid-connect"

    @default("authorize_url")
    def _authorize_url_default(self) -> str:
        return f"{self._oidc(public=True)}/auth"

    @default("token_url")
    def _token_url_default(self) -> str:
        return f"{self._oidc()}/token"

    @default("userdata_url")
    def _userdata_url_default(self) -> str:
        return f"{self._oidc()}/userinfo"

    @default("username_claim")
    def _username_claim_default(self) -> str:
        return "preferred_username"

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "profile", "email"]

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        return True

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True

    @default("allow_all")
    def _allow_all_default(self) -> bool:
        # Realm membership is the gate, as in PrimeHub; users without a launch group are told so.
        return True

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        from .groups_api import GroupServersAPIHandler, UserGroupsAPIHandler
        from .handlers import GroupOptionsHandler, LaunchHandler
        from .notebooks_admin import NotebooksAdminHandler
        from .sharing import GroupShareAPIHandler, start_reconciling

        start_reconciling(app.db, self.log, every=self.share_reconcile_interval)
        return [
            *super().get_handlers(app),
            (r"/primehub/launch", LaunchHandler),
            (r"/primehub/options/([^/]+)/?([^/]*)", GroupOptionsHandler),
            (r"/primehub/notebooks", NotebooksAdminHandler),
            (r"/api/primehub/groups", UserGroupsAPIHandler),
            (r"/api/primehub/users/([^/]+)/groups", UserGroupsAPIHandler),
            (r"/api/primehub/groups/(.+)/servers", GroupServersAPIHandler),
            (r"/api/primehub/shares/([^/]+)/([^/]*)", GroupShareAPIHandler),
        ]

    def end_session_url(self, id_token: str | None, post_logout_redirect: str) -> str:
        params = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect}
        if id_token:
            params["id_token_hint"] = id_token
        return f"{self._oidc(public=True)}/logout?{urlencode(params)}"

    # -- the launch context -----------------------------------------------------------------------

    _directory: KeycloakDirectory | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._expired_contexts: set[str] = set()
        self._refused_at: dict[str, float] = {}  # user -> when a launch of hers was last refused
        self._loaded_at: dict[str, float] = {}  # user -> when Keycloak last gave her context
        self._lacking_role: set[str] = set()  # users whose last refresh found no required role
        self._refreshing: dict[str, dict[str, Any] | None] = {}  # user -> stored auth state
        self._claims_warned = False

    def required_role_missing(self, username: str) -> str | None:
        """The required role ``username`` was found without at her last refresh, if so: no launch
        may go ahead for her, not even an admin's (JupyterHub lets those through a failed refresh)."""
        return self.required_role if username in self._lacking_role else None

    def note_refused_launch(self, username: str) -> None:
        """Record a refused launch of ``username`` (see ``refused_launch_refresh_interval``)."""
        now = time.monotonic()
        horizon = now - self.refused_launch_refresh_interval
        for name in [n for n, at in self._refused_at.items() if at < horizon]:
            del self._refused_at[name]  # only recent refusals are kept
        self._refused_at[username] = now

    def _spare_keycloak(self, username: str) -> bool:
        """Whether a refresh may reuse the stored context: a launch was refused since Keycloak last
        gave it, and that was less than ``refused_launch_refresh_interval`` ago (so the context
        reused is never older than that, however many launches are refused)."""
        now, interval = time.monotonic(), self.refused_launch_refresh_interval
        loaded = self._loaded_at.get(username)
        refused = self._refused_at.get(username)
        return (
            loaded is not None
            and refused is not None
            and refused >= loaded
            and now - loaded < interval
        )

    def launch_context_expired(self, username: str) -> bool:
        """Whether the last refresh of ``username`` failed past the grace period: the stored launch
        context may hold groups and roles Keycloak has taken away since, so no launch may use it
        (JupyterHub lets an admin's launch for someone else go ahead without a refresh)."""
        return username in self._expired_contexts

    def launch_state(self, user: Any) -> tuple[Any, ...]:
        """What a launch of ``user`` is checked against, comparable: her stored auth state (as
        encrypted, so no decryption), whether it expired in an outage, the required role she
        lacks. A refresh that changes none of them leaves a launch prepared before it valid."""
        name = user.name
        return (
            user.encrypted_auth_state,
            name in self._expired_contexts,
            name in self._lacking_role,
        )

    async def pre_spawn_start(self, user: Any, spawner: Any) -> None:
        """Start the refresh before the spawn (:attr:`refresh_alongside_spawn`): the spawner
        takes it if it can prepare the launch meanwhile; otherwise it is awaited here."""
        handler = spawner.handler
        if not (self.refresh_alongside_spawn and self.enable_auth_state) or handler is None:
            return
        refresh = spawn_refresh.begin(handler, user)
        take = getattr(spawner, "take_spawn_refresh", None)
        if take is None or not take(refresh):
            await spawn_refresh.confirmed(refresh, user.name)

    @property
    def directory(self) -> KeycloakDirectory:
        if self._directory is None:
            if not self.keycloak_url:
                raise ValueError("PrimeHubAuthenticator.keycloak_url (or $KEYCLOAK_URL) is not set")
            self._directory = KeycloakDirectory(
                self.keycloak_url,
                self.realm,
                self.client_id,
                self.client_secret,
                verify=self.validate_server_cert,
                global_group=self.global_group,
                role_prefix=self.role_prefix,
                admin_role=self.admin_role,
                required_role=self.required_role,
                group_cache_ttl=self.group_cache_ttl,
                timeout=self.admin_api_timeout,
            )
        return self._directory

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        auth_model = await self._with_launch_context(auth_model)
        auth_model["auth_state"] = auth_states.slimmed(
            auth_model["auth_state"],
            self.user_auth_state_key,
            self._refreshing.get(auth_model["name"]),
        )
        return auth_model

    async def _with_launch_context(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        auth_state = auth_model["auth_state"]
        userinfo = auth_state[self.user_auth_state_key]
        user_id = userinfo["sub"]
        claims = jwt.decode(auth_state["access_token"], options={"verify_signature": False})
        membership = auth_states.membership(userinfo, self.groups_claim, self.roles_claim)
        if membership is None and not self._claims_warned:
            self._claims_warned = True
            self.log.info(
                "userinfo has no %r and %r claims: every refresh reads Keycloak's admin API",
                self.groups_claim,
                self.roles_claim,
            )
        kept = auth_states.reusable_context(
            self._refreshing.get(auth_model["name"]), membership, self.attribute_refresh_interval
        )
        if kept is not None and membership is not None:
            try:
                admin = self.directory.role_verdict(frozenset(membership["roles"]), claims)
            except MissingRequiredRole as missing:
                self.log.warning("Refresh of %s refused: %s", auth_model["name"], missing)
                raise RequiredRoleMissing(missing.role) from None
            auth_state[AUTH_STATE_KEY] = kept
            auth_state[MEMBERSHIP_KEY] = membership
            self._loaded_at[auth_model["name"]] = time.monotonic()  # groups and roles confirmed
            if auth_model["admin"] is None:
                auth_model["admin"] = admin
            return auth_model
        try:
            context = await self.directory.launch_context(user_id, claims)
        except MissingRequiredRole as missing:
            self.log.warning("Login of %s refused: %s", auth_model["name"], missing)
            raise RequiredRoleMissing(missing.role) from None
        except IdentityServiceError as error:
            self.log.error(
                "Login of %s cannot load the launch context: %s", auth_model["name"], error
            )
            raise IdentityServiceUnavailable() from error
        auth_state[AUTH_STATE_KEY] = context.to_dict()
        if membership is not None:
            auth_state[MEMBERSHIP_KEY] = membership
        self._expired_contexts.discard(auth_model["name"])
        self._loaded_at[auth_model["name"]] = time.monotonic()
        self._lacking_role.discard(auth_model["name"])
        if auth_model["admin"] is None:  # None unless listed in admin_users
            auth_model["admin"] = context.user.admin
        return auth_model

    async def launch_context_of(self, username: str) -> LaunchContext | None:
        """The launch context of a user with no stored one (an admin launches for someone who has
        not logged in yet), read from the admin API; None if Keycloak has no such user.

        Admin rights are not taken from it: they come with a login."""
        try:
            user_id = await self.directory.user_id(username)
            return None if user_id is None else await self.directory.launch_context(user_id, {})
        except MissingRequiredRole as missing:
            raise LaunchWithoutRequiredRole(username, missing.role) from None
        except IdentityServiceError as error:
            self.log.error("Cannot load the launch context of %s: %s", username, error)
            raise IdentityServiceUnavailable() from error

    async def authenticate(self, handler: Any, data: Any = None, **kwargs: Any) -> Any:
        """OAuthenticator's code exchange and userinfo; Keycloak unreachable or failing is a 503."""
        try:
            return await super().authenticate(handler, data, **kwargs)
        except (HTTPClientError, OSError) as error:
            if isinstance(error, HTTPClientError) and error.code < 500:
                raise
            self.log.error("Login cannot complete: Keycloak did not answer (%s)", error)
            raise IdentityServiceUnavailable() from error

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """The user's Keycloak groups as JupyterHub groups, the global group excluded: a top-level
        group by its name, any other by ``<path>#<id>`` (``GroupContext.key``), so that a subgroup
        ``/x/ml-team`` and the group ``ml-team`` are two JupyterHub groups."""
        return {GroupContext.from_dict(group).key for group in auth_state[AUTH_STATE_KEY]["groups"]}

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """Renew tokens and reload the launch context; ride out a Keycloak outage for a while.

        When nothing changed (the same tokens, userinfo and launch context), the answer is True, so
        JupyterHub does not rewrite the encrypted auth state and resync groups in its database: its
        blocking work per spawn under a burst of spawns. ``fetched`` then keeps the time the stored
        context was written."""
        stored = await user.get_auth_state()
        if self._spare_keycloak(user.name) and launch_context(stored) is not None:
            return True
        if self.launch_context_max_age > 0:
            age = auth_states.context_age(stored)
            if age is not None and age <= self.launch_context_max_age:
                return True
        self._refreshing[user.name] = stored
        try:
            refreshed = await super().refresh_user(user, handler, **kwargs)
            self._expired_contexts.discard(user.name)
            if isinstance(refreshed, dict) and auth_states.unchanged(stored, refreshed, user.admin):
                return True
            return refreshed
        except RequiredRoleMissing:
            self._lacking_role.add(user.name)  # JupyterHub lets an admin's launch go ahead anyway
            return False  # a new login, which is then refused
        except (IdentityServiceUnavailable, HTTPClientError, OSError) as error:
            if isinstance(error, HTTPClientError) and error.code < 500:
                raise
            age = auth_states.context_age(await user.get_auth_state())
            if age is not None and age <= self.identity_service_grace:
                self.log.warning(
                    "Keycloak unavailable while refreshing %s (%s); keeping the launch context "
                    "loaded %.0f s ago",
                    user.name,
                    error,
                    age,
                )
                return True
            self.log.warning(
                "Keycloak unavailable while refreshing %s (%s); the launch context is older than "
                "%.0f s, a new login is required",
                user.name,
                error,
                self.identity_service_grace,
            )
            self._expired_contexts.add(user.name)
            return False
        finally:
            self._refreshing.pop(user.name, None)


def launch_context(auth_state: dict[str, Any] | None) -> LaunchContext | None:
    """The launch context stored in ``auth_state`` by PrimeHubAuthenticator, if any."""
    data = (auth_state or {}).get(AUTH_STATE_KEY)
    return LaunchContext.from_dict(data) if data else None
