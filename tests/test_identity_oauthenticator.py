"""OAuthenticator's GenericOAuthenticator, unmodified, logs users in through the identity server.

A real JupyterHub process with configurable-http-proxy; the login is the browser's path over HTTP:
hub login → identity server's form → hub callback (code + PKCE) → hub home.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import httpx
import pytest

from devstack.hub import HubProcess
from devstack.login import login

pytestmark = pytest.mark.slow
REALM = Path(__file__).with_name("data") / "realm-conformance.yaml"


@pytest.fixture
def hub(identity_server_factory, tmp_path):
    server = identity_server_factory(REALM)
    oidc = server.oidc
    hub = HubProcess(tmp_path / "hub")
    hub.config = f"""
        c.JupyterHub.authenticator_class = "generic-oauth"
        c.JupyterHub.default_url = "/hub/home"
        c.Authenticator.enable_auth_state = True
        c.GenericOAuthenticator.client_id = "jupyterhub"
        c.GenericOAuthenticator.client_secret = "s3cret"
        c.GenericOAuthenticator.oauth_callback_url = "{hub.url}/hub/oauth_callback"
        c.GenericOAuthenticator.authorize_url = "{oidc}/auth"
        c.GenericOAuthenticator.token_url = "{oidc}/token"
        c.GenericOAuthenticator.userdata_url = "{oidc}/userinfo"
        c.GenericOAuthenticator.scope = ["openid", "profile", "email"]
        c.GenericOAuthenticator.username_claim = "preferred_username"
        c.GenericOAuthenticator.manage_groups = True
        c.GenericOAuthenticator.auth_state_groups_key = "oauth_user.groups"
        c.GenericOAuthenticator.allowed_groups = {{"/ml/research"}}
    """
    hub.start()
    yield hub, server
    hub.stop()


async def test_generic_oauthenticator_login_with_pkce(hub):
    hub, server = hub
    async with httpx.AsyncClient() as http:
        first = await http.get(f"{hub.url}/hub/oauth_login")
        authorize = urllib.parse.urlsplit(first.headers["location"])
        query = dict(urllib.parse.parse_qsl(authorize.query))
        assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{server.oidc}/auth"
        assert query["code_challenge_method"] == "S256" and query["code_challenge"]
        home = await login(
            http,
            f"{hub.url}/hub/oauth_login",
            "alice",
            "alice",
            stop=lambda url: urllib.parse.urlsplit(url).path == "/hub/home",
        )
        assert home.status_code in (200, 302), hub.log()
    status, user = hub.api("GET", "users/alice")
    assert status == 200, hub.log()
    assert sorted(user["groups"]) == ["/everyone", "/ml/research"]
    auth_state = user["auth_state"]
    assert auth_state["oauth_user"]["preferred_username"] == "alice"
    assert auth_state["access_token"] and auth_state["refresh_token"] and auth_state["id_token"]
    token_calls = server.stats()["by_path"].get(
        f"POST /realms/{server.realm}/protocol/openid-connect/token"
    )
    assert token_calls == 1


async def test_user_outside_the_allowed_groups_is_refused(hub):
    hub, _ = hub
    async with httpx.AsyncClient() as http:
        refused = await login(
            http,
            f"{hub.url}/hub/oauth_login",
            "admin",
            "admin",
        )
    assert refused.status_code == 403, refused.text[:500]
    status, _ = hub.api("GET", "users/admin")
    assert status == 404
