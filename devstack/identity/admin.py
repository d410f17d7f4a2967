"""The Keycloak Admin REST subset at ``/admin/realms/{realm}/…``, with Keycloak's representations.

Every request needs a bearer token of this realm whose subject holds the ``realm-management``
client roles the endpoint asks for (composites count, ``realm-admin`` holds them all); Keycloak's
answers otherwise: 401 ``{"error": "HTTP 401 Unauthorized"}``, 403 ``{"error": "unknown_error"}``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado import web

from .oidc import RealmHandler
from .realm import REALM_MANAGEMENT, Group, Realm, User
from .representations import (
    group_representation,
    mappings_representation,
    role_representation,
    user_representation,
)
from .sessions import GrantError

# The realm-management roles that grant each kind of access (any one suffices).
PERMISSIONS = {
    "query-users": {"query-users", "view-users", "manage-users"},
    "view-users": {"view-users", "manage-users"},
    "manage-users": {"manage-users"},
    "query-groups": {"query-groups", "view-users", "manage-users"},
    "view-roles": {"view-realm", "manage-realm", "view-users", "manage-users"},
    "query-clients": {"query-clients", "view-clients", "manage-clients"},
}


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.lower() == "true"


class AdminHandler(RealmHandler):
    """Authenticates the bearer and checks its realm-management roles before every request."""

    permission = "view-users"

    async def prepare(self) -> None:
        super().prepare()
        if self._finished:
            return
        if self.server.admin_latency:
            await asyncio.sleep(self.server.admin_latency)
        header = self.request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return self._deny(401)
        try:
            _, user, _ = self.server.tokens.bearer_user(header[7:].strip())
        except GrantError:
            return self._deny(401)
        _, client_roles = self.server.realm.user_effective(user)
        needed = PERMISSIONS[self.required_permission()]
        if not needed & client_roles.get(REALM_MANAGEMENT, set()):
            return self._deny(403)
        self.subject = user

    def required_permission(self) -> str:
        return self.permission

    def _deny(self, status: int) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish({"error": "HTTP 401 Unauthorized" if status == 401 else "unknown_error"})

    @property
    def realm(self) -> Realm:
        return self.server.realm

    def page_of(self, items: list[Any], default_max: int = 100) -> list[Any]:
        first = max(int(self.get_query_argument("first", "0") or 0), 0)
        maximum = int(self.get_query_argument("max", str(default_max)) or default_max)
        return items[first:] if maximum < 0 else items[first : first + maximum]

    def brief(self, default: bool) -> bool:
        return _flag(self.get_query_argument("briefRepresentation", None), default)

    def not_found(self, message: str) -> None:
        self.json({"error": message}, 404)

    def user(self, user_id: str) -> User | None:
        user = self.realm.users.get(user_id)
        if user is None:
            self.not_found("User not found")
        return user

    def group(self, group_id: str) -> Group | None:
        group = self.realm.groups.get(group_id)
        if group is None:
            self.not_found("Could not find group by id")
        return group

    def body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except json.JSONDecodeError as error:
            raise web.HTTPError(400, "invalid JSON") from error


class UsersHandler(AdminHandler):
    permission = "query-users"

    def get(self, realm: str) -> None:
        users = sorted(
            (u for u in self.realm.users.values() if not u.service_account_client),
            key=lambda u: u.username,
        )
        exact = _flag(self.get_query_argument("exact", None), False)
        for field, attribute in (
            ("username", "username"),
            ("email", "email"),
            ("firstName", "first_name"),
            ("lastName", "last_name"),
        ):
            wanted = self.get_query_argument(field, None)
            if wanted is None:
                continue
            wanted = wanted.lower()
            users = [
                u
                for u in users
                if (
                    getattr(u, attribute).lower() == wanted
                    if exact
                    else wanted in getattr(u, attribute).lower()
                )
            ]
        search = self.get_query_argument("search", None)
        if search:
            term = search.strip("*").lower()
            users = [
                u
                for u in users
                if any(term in v.lower() for v in (u.username, u.email, u.first_name, u.last_name))
            ]
        brief = self.brief(False)
        self.json([user_representation(self.realm, u, brief) for u in self.page_of(users)])


class UsersCountHandler(AdminHandler):
    permission = "query-users"

    def get(self, realm: str) -> None:
        self.json(sum(1 for u in self.realm.users.values() if not u.service_account_client))


class UserHandler(AdminHandler):
    def required_permission(self) -> str:
        return "manage-users" if self.request.method == "PUT" else "view-users"

    def get(self, realm: str, user_id: str) -> None:
        user = self.user(user_id)
        if user is not None:
            self.json(user_representation(self.realm, user))

    def put(self, realm: str, user_id: str) -> None:
        """Update a user: the given fields replace the stored ones (``attributes`` as a whole)."""
        user = self.user(user_id)
        if user is None:
            return
        body = self.body()
        if not isinstance(body, dict):
            return self.json({"error": "unknown_error"}, 400)
        if "attributes" in body:
            attributes = body["attributes"] or {}
            if not isinstance(attributes, dict) or not all(
                isinstance(v, list) for v in attributes.values()
            ):
                return self.json({"errorMessage": "Invalid attributes"}, 400)
            user.attributes = {str(k): [str(x) for x in v] for k, v in attributes.items()}
        for field, attribute in (
            ("email", "email"),
            ("firstName", "first_name"),
            ("lastName", "last_name"),
            ("enabled", "enabled"),
            ("emailVerified", "email_verified"),
        ):
            if field in body:
                setattr(user, attribute, body[field])
        self.set_status(204)
        self.finish()


class UserGroupsHandler(AdminHandler):
    def get(self, realm: str, user_id: str) -> None:
        user = self.user(user_id)
        if user is None:
            return
        groups = sorted((self.realm.groups[g] for g in user.groups), key=lambda g: g.path)
        search = self.get_query_argument("search", None)
        if search:
            groups = [g for g in groups if search.lower() in g.name.lower()]
        brief = self.brief(True)
        self.json([group_representation(self.realm, g, brief) for g in self.page_of(groups)])


class UserGroupMembershipHandler(AdminHandler):
    """``PUT``/``DELETE /users/{id}/groups/{groupId}``: join or leave a group."""

    permission = "manage-users"

    def put(self, realm: str, user_id: str, group_id: str) -> None:
        user, group = self.user(user_id), None
        if user is not None:
            group = self.group(group_id)
        if group is None:
            return
        if group.id not in user.groups:
            user.groups.append(group.id)
        self.set_status(204)
        self.finish()

    def delete(self, realm: str, user_id: str, group_id: str) -> None:
        user, group = self.user(user_id), None
        if user is not None:
            group = self.group(group_id)
        if group is None:
            return
        if group.id in user.groups:
            user.groups.remove(group.id)
        self.set_status(204)
        self.finish()


def _realm_roles(realm: Realm, names: set[str] | list[str], brief: bool) -> list[dict[str, Any]]:
    return [role_representation(realm, realm.roles[n], brief) for n in sorted(set(names))]


class UserRoleMappingsHandler(AdminHandler):
    """``/users/{id}/role-mappings``: all direct mappings (realm and per client)."""

    def get(self, realm: str, user_id: str) -> None:
        user = self.user(user_id)
        if user is None:
            return
        self.json(mappings_representation(self.realm, user.realm_roles, user.client_roles))


class UserRealmRolesHandler(AdminHandler):
    def get(self, realm: str, user_id: str, composite: str | None = None) -> None:
        user = self.user(user_id)
        if user is None:
            return
        if composite:
            names, _ = self.realm.user_effective(user)
            self.json(_realm_roles(self.realm, names, self.brief(True)))
        else:
            self.json(_realm_roles(self.realm, user.realm_roles, True))


class UserClientRolesHandler(AdminHandler):
    def get(self, realm: str, user_id: str, client_uuid: str, composite: str | None = None) -> None:
        user = self.user(user_id)
        if user is None:
            return
        client = self.realm.client_by_uuid(client_uuid)
        if client is None:
            return self.not_found("Client not found")
        if composite:
            _, client_roles = self.realm.user_effective(user)
            names = client_roles.get(client.client_id, set())
        else:
            names = set(user.client_roles.get(client.client_id, ()))
        self.json([role_representation(self.realm, client.roles[n]) for n in sorted(names)])


class GroupsHandler(AdminHandler):
    permission = "query-groups"

    def get(self, realm: str) -> None:
        groups = self.realm.top_groups()
        search = self.get_query_argument("search", None)
        if search:
            matching = {
                g.id for g in self.realm.groups.values() if search.lower() in g.name.lower()
            }
            groups = [g for g in groups if any(m.id in matching for m in self._subtree(g))]
        brief = self.brief(True)
        self.json([group_representation(self.realm, g, brief) for g in self.page_of(groups)])

    def _subtree(self, group: Group) -> list[Group]:
        found = [group]
        for child in group.children:
            found += self._subtree(child)
        return found


class GroupsCountHandler(AdminHandler):
    permission = "query-groups"

    def get(self, realm: str) -> None:
        top = self.get_query_argument("top", "false").lower() == "true"
        self.json({"count": len(self.realm.top_groups()) if top else len(self.realm.groups)})


class GroupHandler(AdminHandler):
    def get(self, realm: str, group_id: str) -> None:
        group = self.group(group_id)
        if group is not None:
            self.json(group_representation(self.realm, group, brief=False))


class GroupByPathHandler(AdminHandler):
    def get(self, realm: str, path: str) -> None:
        group = self.realm.group_by_path(path)
        if group is None:
            return self.not_found("Group path does not exist")
        self.json(group_representation(self.realm, group, brief=False))


class GroupChildrenHandler(AdminHandler):
    permission = "query-groups"

    def get(self, realm: str, group_id: str) -> None:
        group = self.group(group_id)
        if group is None:
            return
        children = sorted(group.children, key=lambda g: g.name)
        brief = self.brief(True)
        self.json(
            [
                group_representation(self.realm, g, brief)
                for g in self.page_of(children, default_max=10)
            ]
        )


class GroupMembersHandler(AdminHandler):
    def get(self, realm: str, group_id: str) -> None:
        group = self.group(group_id)
        if group is None:
            return
        brief = self.brief(False)
        self.json(
            [
                user_representation(self.realm, u, brief)
                for u in self.page_of(self.realm.members(group))
            ]
        )


class GroupRoleMappingsHandler(AdminHandler):
    def get(self, realm: str, group_id: str) -> None:
        group = self.group(group_id)
        if group is None:
            return
        self.json(mappings_representation(self.realm, group.realm_roles, group.client_roles))


class GroupRealmRolesHandler(AdminHandler):
    """Direct (``GET``, ``POST`` to add, ``DELETE`` to remove) and effective (``/composite``) realm roles."""

    def required_permission(self) -> str:
        return "view-users" if self.request.method == "GET" else "manage-users"

    def get(self, realm: str, group_id: str, composite: str | None = None) -> None:
        group = self.group(group_id)
        if group is None:
            return
        if composite:
            names, _ = self.realm.group_effective(group)
            self.json(_realm_roles(self.realm, names, self.brief(True)))
        else:
            self.json(_realm_roles(self.realm, group.realm_roles, True))

    def _roles_in_body(self) -> list[str] | None:
        body = self.body()
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            self.json({"error": "unknown_error"}, 400)
            return None
        names = []
        for entry in body:
            role = self.realm.roles.get(entry.get("name", "")) or self.realm.role_by_id(
                entry.get("id", "")
            )
            if role is None or role.client is not None:
                self.not_found("Could not find role")
                return None
            names.append(role.name)
        return names

    def post(self, realm: str, group_id: str, composite: str | None = None) -> None:
        group = self.group(group_id)
        names = self._roles_in_body() if group is not None else None
        if names is None:
            return
        group.realm_roles += [n for n in names if n not in group.realm_roles]
        self.set_status(204)
        self.finish()

    def delete(self, realm: str, group_id: str, composite: str | None = None) -> None:
        group = self.group(group_id)
        names = self._roles_in_body() if group is not None else None
        if names is None:
            return
        group.realm_roles = [n for n in group.realm_roles if n not in names]
        self.set_status(204)
        self.finish()


class RealmRolesHandler(AdminHandler):
    permission = "view-roles"

    def get(self, realm: str) -> None:
        roles = sorted(self.realm.roles.values(), key=lambda r: r.name)
        search = self.get_query_argument("search", None)
        if search:
            roles = [r for r in roles if search.lower() in r.name.lower()]
        brief = self.brief(True)
        self.json([role_representation(self.realm, r, brief) for r in self.page_of(roles)])


class RealmRoleHandler(AdminHandler):
    permission = "view-roles"

    def get(self, realm: str, role_name: str, relation: str | None = None) -> None:
        role = self.realm.roles.get(role_name)
        if role is None:
            return self.not_found("Could not find role")
        if relation is None:
            return self.json(role_representation(self.realm, role, brief=False))
        if relation == "composites":
            composites = [self.realm.roles[n] for n in role.composites]
            for client_id, names in role.client_composites.items():
                composites += [self.realm.clients[client_id].roles[n] for n in names]
            return self.json([role_representation(self.realm, r) for r in composites])
        if relation == "groups":
            groups = sorted(
                (g for g in self.realm.groups.values() if role_name in g.realm_roles),
                key=lambda g: g.path,
            )
            return self.json(
                [
                    group_representation(self.realm, g, self.brief(True))
                    for g in self.page_of(groups)
                ]
            )
        users = [
            u
            for u in self.realm.users.values()
            if role_name in u.realm_roles and not u.service_account_client
        ]
        self.json(
            [
                user_representation(self.realm, u, self.brief(True))
                for u in self.page_of(sorted(users, key=lambda u: u.username))
            ]
        )


class ClientsHandler(AdminHandler):
    permission = "query-clients"

    def get(self, realm: str) -> None:
        wanted = self.get_query_argument("clientId", None)
        clients = [
            c for c in self.realm.clients.values() if wanted is None or c.client_id == wanted
        ]
        self.json(
            [
                {
                    "id": c.id,
                    "clientId": c.client_id,
                    "enabled": True,
                    "publicClient": c.public,
                    "bearerOnly": c.bearer_only,
                    "serviceAccountsEnabled": c.service_accounts,
                    "standardFlowEnabled": c.standard_flow,
                    "directAccessGrantsEnabled": c.direct_access_grants,
                    "redirectUris": c.redirect_uris,
                }
                for c in self.page_of(clients)
            ]
        )
