"""The realm file: users, groups, roles, clients and mappings, loaded and checked once at start.

Names and shapes follow Keycloak's realm export where it has one (``realmRoles``, ``clientRoles``,
``attributes`` as lists of strings, ``defaultGroups``, ``serviceAccountsEnabled`` …). Built-in
entities are added as Keycloak creates them: the ``realm-management`` client and its roles,
``offline_access``, ``uma_authorization``, ``default-roles-<realm>``, and a service-account user per
client with ``serviceAccountsEnabled``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# realm-management's roles and their composites, as Keycloak defines them.
REALM_MANAGEMENT_ROLES: dict[str, tuple[str, ...]] = {
    "query-users": (),
    "query-groups": (),
    "query-clients": (),
    "query-realms": (),
    "view-users": ("query-users", "query-groups"),
    "manage-users": (),
    "view-clients": ("query-clients",),
    "manage-clients": (),
    "create-client": (),
    "view-realm": (),
    "manage-realm": (),
    "view-events": (),
    "manage-events": (),
    "view-identity-providers": (),
    "manage-identity-providers": (),
    "view-authorization": (),
    "manage-authorization": (),
    "impersonation": (),
}
REALM_MANAGEMENT_ROLES["realm-admin"] = tuple(REALM_MANAGEMENT_ROLES)
REALM_MANAGEMENT = "realm-management"
_NAMESPACE = uuid.UUID("6f1d2a4e-1b0c-4f7e-9d51-2f4a3c8e7b10")


class RealmFileError(ValueError):
    """The realm file is inconsistent; the message names the file and the entry."""


def stable_id(*parts: str) -> str:
    """A UUID that stays the same for the same entity across restarts (as ids in an export do)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _attributes(raw: Any, where: str, source: Path) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise RealmFileError(f"{source}: {where}: attributes must be a mapping")
    result = {}
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        result[str(key)] = ["" if v is None else str(v) for v in values]
    return result


@dataclass
class Role:
    name: str
    id: str
    description: str = ""
    composites: list[str] = field(default_factory=list)  # realm-role names
    client_composites: dict[str, list[str]] = field(default_factory=dict)
    client: str | None = None  # clientId for client roles
    attributes: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Group:
    name: str
    id: str
    path: str
    parent: Group | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    realm_roles: list[str] = field(default_factory=list)
    client_roles: dict[str, list[str]] = field(default_factory=dict)
    children: list[Group] = field(default_factory=list)


@dataclass
class User:
    username: str
    id: str
    password: str | None = None
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    enabled: bool = True
    email_verified: bool = True
    attributes: dict[str, list[str]] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # group ids
    realm_roles: list[str] = field(default_factory=list)
    client_roles: dict[str, list[str]] = field(default_factory=dict)
    service_account_client: str | None = None
    created: int = 0


@dataclass
class ProtocolMapper:
    """The token mappers the hub relies on: group membership, realm/client roles, user attributes."""

    name: str
    kind: str  # group-membership | realm-roles | client-roles | user-attribute
    claim: str
    full_path: bool = True
    attribute: str = ""
    multivalued: bool = False
    access_token: bool = True
    id_token: bool = True
    userinfo: bool = True


DEFAULT_MAPPERS = (
    ProtocolMapper(
        "realm roles", "realm-roles", "realm_access.roles", id_token=False, userinfo=False
    ),
    ProtocolMapper(
        "client roles", "client-roles", "resource_access", id_token=False, userinfo=False
    ),
)


@dataclass
class Client:
    client_id: str
    id: str
    secret: str | None = None
    public: bool = False
    bearer_only: bool = False
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    standard_flow: bool = True
    direct_access_grants: bool = False
    service_accounts: bool = False
    roles: dict[str, Role] = field(default_factory=dict)
    mappers: list[ProtocolMapper] = field(default_factory=lambda: list(DEFAULT_MAPPERS))


@dataclass
class Realm:
    """A whole realm, with lookups and Keycloak's role-inheritance rules."""

    name: str
    source: Path
    display_name: str = ""
    access_token_lifespan: int = 300
    access_code_lifespan: int = 60
    sso_session_idle_timeout: int = 1800
    sso_session_max_lifespan: int = 36000
    revoke_refresh_token: bool = False
    roles: dict[str, Role] = field(default_factory=dict)  # realm roles by name
    clients: dict[str, Client] = field(default_factory=dict)  # by clientId
    groups: dict[str, Group] = field(default_factory=dict)  # by id
    users: dict[str, User] = field(default_factory=dict)  # by id
    default_groups: list[str] = field(default_factory=list)  # group ids

    # -- lookups ----------------------------------------------------------------------------------

    def user_by_name(self, username: str) -> User | None:
        wanted = username.lower()
        return next((u for u in self.users.values() if u.username == wanted), None)

    def client_by_uuid(self, client_uuid: str) -> Client | None:
        return next((c for c in self.clients.values() if c.id == client_uuid), None)

    def group_by_path(self, path: str) -> Group | None:
        normalized = "/" + path.strip("/")
        return next((g for g in self.groups.values() if g.path == normalized), None)

    def top_groups(self) -> list[Group]:
        return sorted((g for g in self.groups.values() if g.parent is None), key=lambda g: g.name)

    def members(self, group: Group) -> list[User]:
        return sorted(
            (
                u
                for u in self.users.values()
                if group.id in u.groups and not u.service_account_client
            ),
            key=lambda u: u.username,
        )

    def role_by_id(self, role_id: str) -> Role | None:
        for role in self._all_roles():
            if role.id == role_id:
                return role
        return None

    def _all_roles(self) -> Iterator[Role]:
        yield from self.roles.values()
        for client in self.clients.values():
            yield from client.roles.values()

    # -- role inheritance -------------------------------------------------------------------------

    def expand(
        self, realm_roles: Iterable[str], client_roles: dict[str, list[str]] | None = None
    ) -> tuple[set[str], dict[str, set[str]]]:
        """Composite expansion: the realm and client roles reachable from the given ones."""
        realm_seen: set[str] = set()
        client_seen: dict[str, set[str]] = {}
        pending: list[tuple[str | None, str]] = [(None, name) for name in realm_roles]
        for client_id, names in (client_roles or {}).items():
            pending += [(client_id, name) for name in names]
        while pending:
            client_id, name = pending.pop()
            if client_id is None:
                if name in realm_seen:
                    continue
                realm_seen.add(name)
                role = self.roles[name]
            else:
                if name in client_seen.setdefault(client_id, set()):
                    continue
                client_seen[client_id].add(name)
                role = self.clients[client_id].roles[name]
            pending += [(None, n) for n in role.composites]
            for other, names in role.client_composites.items():
                pending += [(other, n) for n in names]
        return realm_seen, {k: v for k, v in client_seen.items() if v}

    def group_lineage(self, group: Group) -> list[Group]:
        lineage = []
        current: Group | None = group
        while current is not None:
            lineage.append(current)
            current = current.parent
        return lineage

    def group_effective(self, group: Group) -> tuple[set[str], dict[str, set[str]]]:
        """A group's effective roles: its own, its parents', and their composites."""
        realm_roles: list[str] = []
        client_roles: dict[str, list[str]] = {}
        for member in self.group_lineage(group):
            realm_roles += member.realm_roles
            for client_id, names in member.client_roles.items():
                client_roles.setdefault(client_id, []).extend(names)
        return self.expand(realm_roles, client_roles)

    def user_effective(self, user: User) -> tuple[set[str], dict[str, set[str]]]:
        """A user's effective roles: direct, through every group (and its parents), composites."""
        realm_roles = list(user.realm_roles)
        client_roles = {k: list(v) for k, v in user.client_roles.items()}
        for group_id in user.groups:
            for member in self.group_lineage(self.groups[group_id]):
                realm_roles += member.realm_roles
                for client_id, names in member.client_roles.items():
                    client_roles.setdefault(client_id, []).extend(names)
        return self.expand(realm_roles, client_roles)


# -- loading ------------------------------------------------------------------------------------


def _role(name: str, owner: str, raw: dict[str, Any], client: str | None, source: Path) -> Role:
    composite = raw.get("composites") or {}
    if isinstance(composite, list):
        composite = {"realm": composite}
    return Role(
        name=name,
        id=stable_id(owner, "role", name),
        description=str(raw.get("description") or ""),
        composites=[str(r) for r in composite.get("realm") or ()],
        client_composites={
            str(k): [str(r) for r in v] for k, v in (composite.get("client") or {}).items()
        },
        client=client,
        attributes=_attributes(raw.get("attributes"), f"role {name!r}", source),
    )


def _client(raw: dict[str, Any], realm: str, source: Path) -> Client:
    client_id = raw.get("clientId")
    if not client_id:
        raise RealmFileError(f"{source}: clients: an entry has no clientId")
    where = f"clients[{client_id!r}]"
    public = bool(raw.get("publicClient", False))
    bearer_only = bool(raw.get("bearerOnly", False))
    if not public and not bearer_only and not raw.get("secret"):
        raise RealmFileError(f"{source}: {where}: a confidential client needs a secret")
    client = Client(
        client_id=client_id,
        id=stable_id(realm, "client", client_id),
        secret=str(raw["secret"]) if raw.get("secret") else None,
        public=public,
        bearer_only=bearer_only,
        redirect_uris=[str(u) for u in raw.get("redirectUris") or ()],
        standard_flow=bool(raw.get("standardFlowEnabled", True)),
        direct_access_grants=bool(raw.get("directAccessGrantsEnabled", False)),
        service_accounts=bool(raw.get("serviceAccountsEnabled", False)),
    )
    post_logout = [str(u) for u in raw.get("postLogoutRedirectUris") or ["+"]]
    client.post_logout_redirect_uris = [
        uri for entry in post_logout for uri in (client.redirect_uris if entry == "+" else [entry])
    ]
    for role_raw in raw.get("roles") or ():
        role_raw = role_raw if isinstance(role_raw, dict) else {"name": role_raw}
        name = str(role_raw["name"])
        client.roles[name] = _role(name, f"{realm}/{client_id}", role_raw, client_id, source)
    if "protocolMappers" in raw:
        client.mappers = list(DEFAULT_MAPPERS) + [
            ProtocolMapper(
                name=str(m.get("name") or m["type"]),
                kind=str(m["type"]),
                claim=str(
                    m.get("claim")
                    or {"group-membership": "groups"}.get(m["type"], m.get("attribute", ""))
                ),
                full_path=bool(m.get("fullPath", True)),
                attribute=str(m.get("attribute") or ""),
                multivalued=bool(m.get("multivalued", False)),
                access_token=bool(m.get("accessToken", True)),
                id_token=bool(m.get("idToken", True)),
                userinfo=bool(m.get("userinfo", True)),
            )
            for m in raw["protocolMappers"]
        ]
        for mapper in client.mappers:
            if mapper.kind not in (
                "group-membership",
                "realm-roles",
                "client-roles",
                "user-attribute",
            ):
                raise RealmFileError(
                    f"{source}: {where}: unknown protocol mapper type {mapper.kind!r}"
                )
    return client


def _groups(raw_groups: list[dict[str, Any]], realm: Realm, parent: Group | None) -> None:
    siblings: set[str] = set()
    for raw in raw_groups:
        name = raw.get("name")
        if not name:
            raise RealmFileError(
                f"{realm.source}: groups: an entry under {parent.path if parent else '/'} has no name"
            )
        path = f"{parent.path if parent else ''}/{name}"
        if name in siblings:
            raise RealmFileError(f"{realm.source}: groups[{path!r}]: duplicate group")
        siblings.add(name)
        group = Group(
            name=str(name),
            id=stable_id(realm.name, "group", path),
            path=path,
            parent=parent,
            attributes=_attributes(raw.get("attributes"), f"groups[{path!r}]", realm.source),
            realm_roles=[str(r) for r in raw.get("realmRoles") or ()],
            client_roles={
                str(k): [str(r) for r in v] for k, v in (raw.get("clientRoles") or {}).items()
            },
        )
        realm.groups[group.id] = group
        if parent is not None:
            parent.children.append(group)
        _groups(raw.get("subGroups") or [], realm, group)


def load_realm(source: Path) -> Realm:
    """Parse and check a realm file; raise RealmFileError naming the file and the entry."""
    try:
        raw = yaml.safe_load(source.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RealmFileError(f"{source}: cannot read the realm file: {error}") from error
    if not isinstance(raw, dict) or not raw.get("realm"):
        raise RealmFileError(f"{source}: the file must be a mapping with a 'realm' name")
    name = str(raw["realm"])
    realm = Realm(
        name=name,
        source=source,
        display_name=str(raw.get("displayName") or name),
        access_token_lifespan=int(raw.get("accessTokenLifespan", 300)),
        access_code_lifespan=int(raw.get("accessCodeLifespan", 60)),
        sso_session_idle_timeout=int(raw.get("ssoSessionIdleTimeout", 1800)),
        sso_session_max_lifespan=int(raw.get("ssoSessionMaxLifespan", 36000)),
        revoke_refresh_token=bool(raw.get("revokeRefreshToken", False)),
    )
    default_role = f"default-roles-{name}"
    for builtin in ("offline_access", "uma_authorization"):
        realm.roles[builtin] = Role(builtin, stable_id(name, "role", builtin))
    realm.roles[default_role] = Role(
        default_role,
        stable_id(name, "role", default_role),
        composites=["offline_access", "uma_authorization"],
    )
    for role_raw in (raw.get("roles") or {}).get("realm") or ():
        role_raw = role_raw if isinstance(role_raw, dict) else {"name": role_raw}
        role_name = str(role_raw["name"])
        if role_name in realm.roles and role_name != default_role:
            raise RealmFileError(f"{source}: roles.realm[{role_name!r}]: duplicate role")
        realm.roles[role_name] = _role(role_name, name, role_raw, None, source)

    management = Client(
        REALM_MANAGEMENT,
        stable_id(name, "client", REALM_MANAGEMENT),
        bearer_only=True,
        standard_flow=False,
    )
    for role_name, composites in REALM_MANAGEMENT_ROLES.items():
        management.roles[role_name] = Role(
            role_name,
            stable_id(name, REALM_MANAGEMENT, "role", role_name),
            client_composites={REALM_MANAGEMENT: list(composites)} if composites else {},
            client=REALM_MANAGEMENT,
        )
    realm.clients[REALM_MANAGEMENT] = management
    for client_raw in raw.get("clients") or ():
        client = _client(client_raw, name, source)
        if client.client_id in realm.clients:
            raise RealmFileError(f"{source}: clients[{client.client_id!r}]: duplicate client")
        realm.clients[client.client_id] = client

    _groups(raw.get("groups") or [], realm, None)
    for path in raw.get("defaultGroups") or ():
        group = realm.group_by_path(str(path))
        if group is None:
            raise RealmFileError(f"{source}: defaultGroups: unknown group {path!r}")
        realm.default_groups.append(group.id)

    for index, user_raw in enumerate(raw.get("users") or ()):
        username = str(user_raw.get("username") or "").lower()
        if not username:
            raise RealmFileError(f"{source}: users[{index}]: an entry has no username")
        where = f"users[{username!r}]"
        if realm.user_by_name(username):
            raise RealmFileError(f"{source}: {where}: duplicate user")
        groups = []
        for path in user_raw.get("groups") or ():
            group = realm.group_by_path(str(path))
            if group is None:
                raise RealmFileError(f"{source}: {where}: unknown group {path!r}")
            groups.append(group.id)
        for default in realm.default_groups:
            if default not in groups:
                groups.append(default)
        user = User(
            username=username,
            id=str(user_raw.get("id") or stable_id(name, "user", username)),
            password=None if user_raw.get("password") is None else str(user_raw["password"]),
            email=str(user_raw.get("email") or ""),
            first_name=str(user_raw.get("firstName") or ""),
            last_name=str(user_raw.get("lastName") or ""),
            enabled=bool(user_raw.get("enabled", True)),
            email_verified=bool(user_raw.get("emailVerified", True)),
            attributes=_attributes(user_raw.get("attributes"), where, source),
            groups=groups,
            realm_roles=[default_role, *(str(r) for r in user_raw.get("realmRoles") or ())],
            client_roles={
                str(k): [str(r) for r in v] for k, v in (user_raw.get("clientRoles") or {}).items()
            },
            created=1_700_000_000_000 + index,
        )
        realm.users[user.id] = user

    for client_raw in raw.get("clients") or ():
        client = realm.clients[client_raw["clientId"]]
        if not client.service_accounts:
            continue
        account = f"service-account-{client.client_id}".lower()
        realm.users[stable_id(name, "user", account)] = User(
            username=account,
            id=stable_id(name, "user", account),
            realm_roles=[
                default_role,
                *(str(r) for r in client_raw.get("serviceAccountRealmRoles") or ()),
            ],
            client_roles={
                str(k): [str(r) for r in v]
                for k, v in (client_raw.get("serviceAccountClientRoles") or {}).items()
            },
            service_account_client=client.client_id,
        )
    _check_roles(realm)
    return realm


def _check_roles(realm: Realm) -> None:
    """Every role named anywhere exists (realm roles by name, client roles under their client)."""

    def check(realm_roles: Iterable[str], client_roles: dict[str, list[str]], where: str) -> None:
        for role_name in realm_roles:
            if role_name not in realm.roles:
                raise RealmFileError(f"{realm.source}: {where}: unknown realm role {role_name!r}")
        for client_id, names in client_roles.items():
            client = realm.clients.get(client_id)
            if client is None:
                raise RealmFileError(f"{realm.source}: {where}: unknown client {client_id!r}")
            for role_name in names:
                if role_name not in client.roles:
                    raise RealmFileError(
                        f"{realm.source}: {where}: unknown role {role_name!r} of client {client_id!r}"
                    )

    for role in realm.roles.values():
        check(role.composites, role.client_composites, f"roles.realm[{role.name!r}].composites")
    for client in realm.clients.values():
        for role in client.roles.values():
            check(
                role.composites,
                role.client_composites,
                f"clients[{client.client_id!r}].roles[{role.name!r}]",
            )
    for group in realm.groups.values():
        check(group.realm_roles, group.client_roles, f"groups[{group.path!r}]")
    for user in realm.users.values():
        where = (
            f"clients[{user.service_account_client!r}].serviceAccount"
            if user.service_account_client
            else f"users[{user.username!r}]"
        )
        check(user.realm_roles, user.client_roles, where)
