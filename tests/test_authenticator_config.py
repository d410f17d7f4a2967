"""PrimeHubAuthenticator's configuration: traits, environment defaults and derived endpoints."""

import pytest
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
    ],
    ids=[
        "defaults",
        "split-urls",
        "environment",
        "oauth-client-id",
        "config-beats-environment",
        "explicit-url",
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
    assert authenticator.refresh_pre_spawn is True
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
