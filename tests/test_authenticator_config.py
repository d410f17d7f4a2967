"""PrimeHubAuthenticator's configuration: traits, environment defaults and derived endpoints."""

import asyncio
import contextlib

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets.config import Config

from primehub_spawner import PrimeHubAuthenticator
from primehub_spawner.keycloak import AdminRole

ENV = (
    "KEYCLOAK_URL",
    "KEYCLOAK_PUBLIC_URL",
    "KEYCLOAK_REALM",
    "KEYCLOAK_CLIENT_ID",
    "OAUTH_CLIENT_ID",
    "KEYCLOAK_CLIENT_SECRET",
    "OAUTH_CLIENT_SECRET",
    "KEYCLOAK_ROLE_PREFIX",
    "PRIMEHUB_REFRESH_ALONGSIDE_SPAWN",
    "PRIMEHUB_GLOBAL_GROUP",
    "PRIMEHUB_ADMIN_ROLE",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("environ", "config", "expected"),
    [
        (
            {"KEYCLOAK_URL": "http://kc:8080/"},
            {},
            {
                "authorize_url": "http://kc:8080/realms/primehub/protocol/openid-connect/auth",
                "token_url": "http://kc:8080/realms/primehub/protocol/openid-connect/token",
                "userdata_url": "http://kc:8080/realms/primehub/protocol/openid-connect/userinfo",
                "client_id": "jupyterhub",
                "realm": "primehub",
                "global_group": "everyone",
                "admin_role": "realm-management/realm-admin",
                "role_prefix": "",
            },
        ),
        (
            {
                "KEYCLOAK_URL": "http://kc.svc:8080",
                "KEYCLOAK_PUBLIC_URL": "https://id.example.org",
                "KEYCLOAK_REALM": "lab",
            },
            {},
            {
                "authorize_url": "https://id.example.org/realms/lab/protocol/openid-connect/auth",
                "token_url": "http://kc.svc:8080/realms/lab/protocol/openid-connect/token",
            },
        ),
        (
            {
                "KEYCLOAK_CLIENT_ID": "hub",
                "KEYCLOAK_CLIENT_SECRET": "s",
                "KEYCLOAK_ROLE_PREFIX": "ph",
                "PRIMEHUB_GLOBAL_GROUP": "all",
                "PRIMEHUB_ADMIN_ROLE": "hub-admin",
            },
            {},
            {
                "client_id": "hub",
                "client_secret": "s",
                "role_prefix": "ph",
                "global_group": "all",
                "admin_role": "hub-admin",
            },
        ),
        ({"OAUTH_CLIENT_ID": "generic"}, {}, {"client_id": "generic"}),
        (
            {"KEYCLOAK_URL": "http://env"},
            {"keycloak_url": "http://config", "realm": "r"},
            {"token_url": "http://config/realms/r/protocol/openid-connect/token"},
        ),
        ({}, {"token_url": "http://explicit/token"}, {"token_url": "http://explicit/token"}),
        ({}, {}, {"refresh_alongside_spawn": True, "refresh_pre_spawn": False}),
        (
            {"PRIMEHUB_REFRESH_ALONGSIDE_SPAWN": "false"},
            {},
            {"refresh_alongside_spawn": False, "refresh_pre_spawn": True},
        ),
        (
            {},
            {"refresh_alongside_spawn": False, "enable_auth_state": False},
            {"refresh_pre_spawn": False},
        ),
        ({}, {"refresh_pre_spawn": True}, {"refresh_alongside_spawn": True}),
    ],
    ids=[
        "defaults",
        "split-urls",
        "environment",
        "oauth-client-id",
        "config-beats-environment",
        "explicit-url",
        "refresh-alongside-spawn",
        "refresh-before-spawn-from-environment",
        "no-auth-state-no-refresh",
        "both-refreshes",
    ],
)
def test_configuration_matrix(monkeypatch, environ, config, expected):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    authenticator = PrimeHubAuthenticator(config=Config({"PrimeHubAuthenticator": config}))
    for trait, value in expected.items():
        assert getattr(authenticator, trait) == value


def test_login_defaults():
    authenticator = PrimeHubAuthenticator()
    assert authenticator.username_claim == "preferred_username"
    assert authenticator.enable_pkce is True
    assert authenticator.manage_groups is True
    assert authenticator.enable_auth_state is True
    assert authenticator.refresh_pre_spawn is False  # refresh_alongside_spawn instead
    assert authenticator.allow_all is True
    assert authenticator.scope == ["openid", "profile", "email"]


def test_missing_keycloak_url_is_a_clear_error():
    with pytest.raises(ValueError, match=r"keycloak_url \(or \$KEYCLOAK_URL\) is not set"):
        PrimeHubAuthenticator().directory  # noqa: B018


@pytest.mark.parametrize(
    ("text", "client", "name"),
    [
        ("realm-management/realm-admin", "realm-management", "realm-admin"),
        ("hub-admin", None, "hub-admin"),
    ],
)
def test_admin_role(text, client, name):
    role = AdminRole.parse(text)
    assert (role.client, role.name) == (client, name)
    claims = {"resource_access": {"realm-management": {"roles": ["realm-admin"]}}}
    assert role.held(frozenset({"hub-admin"}), claims) is True
    assert role.held(frozenset(), {}) is False


def test_end_session_url():
    authenticator = PrimeHubAuthenticator(
        keycloak_url="http://kc", keycloak_public_url="https://id", realm="r"
    )
    url = authenticator.end_session_url("ID.TOKEN", "http://hub/hub/login")
    assert url == (
        "https://id/realms/r/protocol/openid-connect/logout?client_id=jupyterhub&"
        "post_logout_redirect_uri=http%3A%2F%2Fhub%2Fhub%2Flogin&id_token_hint=ID.TOKEN"
    )


@pytest.mark.parametrize(
    ("config", "at_once"), [({}, 30), ({"oidc_max_concurrent_requests": 5}, 5)]
)
async def test_oidc_requests_are_not_queued_behind_tornados_ten(config, at_once):
    """30 userinfo requests at once (a burst of spawns) are all in flight together, up to the
    limit: tornado's shared client would hold all but 10 back. The server answers once
    ``at_once`` requests are waiting (or after 10 s)."""
    in_flight, most = 0, 0
    filled = asyncio.Event()

    class Held(web.RequestHandler):
        async def get(self) -> None:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            if in_flight >= at_once:
                filled.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(filled.wait(), 10)
            in_flight -= 1
            self.finish("{}")

    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([(r"/userinfo", Held)]))
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/userinfo"
    try:
        client = PrimeHubAuthenticator(config=Config({"PrimeHubAuthenticator": config})).http_client
        await asyncio.gather(*(client.fetch(url) for _ in range(30)))
    finally:
        server.stop()
    assert most == at_once
