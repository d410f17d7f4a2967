"""The identity server's application: one realm, its keys and tokens, and the URL routes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tornado import httputil, web

from . import admin, oidc
from .keys import RealmKeys
from .realm import Realm
from .sessions import TokenService

TEMPLATES = Path(__file__).with_name("templates")
REALM = r"/realms/(?P<realm>[^/]+)"
ADMIN = r"/admin/realms/(?P<realm>[^/]+)"
ID = r"[^/]+"


class IdentityServer:
    """State shared by the handlers: the realm (mutable through the admin API), keys, sessions."""

    def __init__(self, realm: Realm, public_url: str) -> None:
        self.realm = realm
        self.public_url = public_url.rstrip("/")
        self.issuer = f"{self.public_url}/realms/{realm.name}"
        self.browser_issuer = self.issuer
        self.keys = RealmKeys(realm.name)
        self.tokens = TokenService(realm, self.keys, self.issuer)
        self.pending_logins: dict[str, oidc.AuthRequest] = {}
        self.requests: Counter[str] = Counter()
        self.admin_latency = 0.0  # seconds added to every admin API request (fault injection)

    def count(self, request: httputil.HTTPServerRequest) -> None:
        self.requests[f"{request.method} {request.path}"] += 1

    def application(self) -> web.Application:
        return web.Application(
            [
                (rf"{REALM}/?", oidc.RealmInfoHandler),
                (rf"{REALM}/\.well-known/openid-configuration", oidc.DiscoveryHandler),
                (rf"{REALM}/protocol/openid-connect/auth", oidc.AuthHandler),
                (rf"{REALM}/login-actions/authenticate", oidc.LoginActionHandler),
                (rf"{REALM}/protocol/openid-connect/token", oidc.TokenHandler),
                (rf"{REALM}/protocol/openid-connect/token/introspect", oidc.IntrospectHandler),
                (rf"{REALM}/protocol/openid-connect/userinfo", oidc.UserinfoHandler),
                (rf"{REALM}/protocol/openid-connect/certs", oidc.CertsHandler),
                (rf"{REALM}/protocol/openid-connect/logout", oidc.LogoutHandler),
                (rf"{ADMIN}/users", admin.UsersHandler),
                (rf"{ADMIN}/users/count", admin.UsersCountHandler),
                (rf"{ADMIN}/users/(?P<user_id>{ID})", admin.UserHandler),
                (rf"{ADMIN}/users/(?P<user_id>{ID})/groups", admin.UserGroupsHandler),
                (
                    rf"{ADMIN}/users/(?P<user_id>{ID})/groups/(?P<group_id>{ID})",
                    admin.UserGroupMembershipHandler,
                ),
                (rf"{ADMIN}/users/(?P<user_id>{ID})/role-mappings", admin.UserRoleMappingsHandler),
                (
                    rf"{ADMIN}/users/(?P<user_id>{ID})/role-mappings/realm(?P<composite>/composite)?",
                    admin.UserRealmRolesHandler,
                ),
                (
                    rf"{ADMIN}/users/(?P<user_id>{ID})/role-mappings/clients/(?P<client_uuid>{ID})"
                    r"(?P<composite>/composite)?",
                    admin.UserClientRolesHandler,
                ),
                (rf"{ADMIN}/groups", admin.GroupsHandler),
                (rf"{ADMIN}/groups/count", admin.GroupsCountHandler),
                (rf"{ADMIN}/groups/(?P<group_id>{ID})", admin.GroupHandler),
                (rf"{ADMIN}/groups/(?P<group_id>{ID})/children", admin.GroupChildrenHandler),
                (rf"{ADMIN}/groups/(?P<group_id>{ID})/members", admin.GroupMembersHandler),
                (
                    rf"{ADMIN}/groups/(?P<group_id>{ID})/role-mappings",
                    admin.GroupRoleMappingsHandler,
                ),
                (
                    rf"{ADMIN}/groups/(?P<group_id>{ID})/role-mappings/realm(?P<composite>/composite)?",
                    admin.GroupRealmRolesHandler,
                ),
                (rf"{ADMIN}/group-by-path/(?P<path>.+)", admin.GroupByPathHandler),
                (rf"{ADMIN}/roles", admin.RealmRolesHandler),
                (
                    rf"{ADMIN}/roles/(?P<role_name>[^/]+)(?:/(?P<relation>composites|groups|users))?",
                    admin.RealmRoleHandler,
                ),
                (rf"{ADMIN}/clients", admin.ClientsHandler),
                (r"/devstack/requests", RequestStatsHandler),
                (r"/devstack/latency", LatencyHandler),
            ],
            template_path=str(TEMPLATES),
            identity=self,
            autoescape="xhtml_escape",
        )


class RequestStatsHandler(web.RequestHandler):
    """Not Keycloak: ``GET`` the requests counted so far (by method and path), ``DELETE`` to reset.

    Tests use it to count the admin calls a login costs, at the server."""

    def check_xsrf_cookie(self) -> None:
        return

    def get(self) -> None:
        requests: Counter[str] = self.settings["identity"].requests
        admin_calls = sum(
            n for key, n in requests.items() if key.split(" ", 1)[1].startswith("/admin/")
        )
        self.finish(
            {"total": sum(requests.values()), "admin": admin_calls, "by_path": dict(requests)}
        )

    def delete(self) -> None:
        self.settings["identity"].requests.clear()
        self.set_status(204)


class LatencyHandler(web.RequestHandler):
    """Not Keycloak: ``PUT {"admin": seconds}`` delays every admin API answer by that much."""

    def check_xsrf_cookie(self) -> None:
        return

    def put(self) -> None:
        self.settings["identity"].admin_latency = float(json.loads(self.request.body)["admin"])
        self.set_status(204)


def make_app(realm: Realm, public_url: str) -> tuple[IdentityServer, Any]:
    server = IdentityServer(realm, public_url)
    return server, server.application()
