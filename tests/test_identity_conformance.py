"""The identity server, driven only through python-keycloak 7 (sync and async), behaves like Keycloak."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import urllib.parse
from pathlib import Path

import httpx
import pytest
from keycloak import KeycloakAdmin, KeycloakOpenID, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakGetError, KeycloakPostError

from devstack.login import LoginFailed, login
from devstack.testing import http_client

REALM = Path(__file__).with_name("data") / "realm-conformance.yaml"
REDIRECT = "http://127.0.0.1:9/callback"
SECRET = "s3cret"


@pytest.fixture
def server(identity_server_factory):
    return identity_server_factory(REALM)


def openid(server, client_id="jupyterhub", secret=SECRET) -> KeycloakOpenID:
    return KeycloakOpenID(
        server_url=server.url,
        realm_name=server.realm,
        client_id=client_id,
        client_secret_key=secret,
    )


def admin(server, client_id="jupyterhub", secret=SECRET) -> KeycloakAdmin:
    connection = KeycloakOpenIDConnection(
        server_url=server.url,
        realm_name=server.realm,
        client_id=client_id,
        client_secret_key=secret,
    )
    return KeycloakAdmin(connection=connection)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


async def authorization_code(
    server,
    username="alice",
    password="alice",
    challenge=None,
    redirect_uri=REDIRECT,
    http: httpx.AsyncClient | None = None,
) -> str:
    """The browser-free login: auth URL → login form → code from the redirect."""
    params = {
        "client_id": "jupyterhub",
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": "openid profile email",
        "state": "st4te",
        "nonce": "n0nce",
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    url = f"{server.oidc}/auth?{urllib.parse.urlencode(params)}"
    async with http_client(http) as client:
        response = await login(
            client, url, username, password, stop=lambda u: u.startswith(redirect_uri)
        )
    location = urllib.parse.urlsplit(response.headers["location"])
    query = dict(urllib.parse.parse_qsl(location.query))
    assert query["state"] == "st4te"
    assert query["iss"] == server.issuer
    return query["code"]


# -- discovery and keys -------------------------------------------------------------------------


def test_discovery_public_key_and_certs(server):
    oidc = openid(server)
    known = oidc.well_known()
    assert known["issuer"] == server.issuer
    assert known["token_endpoint"] == f"{server.oidc}/token"
    assert "S256" in known["code_challenge_methods_supported"]
    assert len(oidc.public_key()) > 300
    keys = oidc.certs()["keys"]
    assert keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig" and keys[0]["kid"]


# -- the authorization code flow ----------------------------------------------------------------


async def test_code_flow_with_pkce_sync_and_async(server):
    verifier, challenge = pkce()
    code = await authorization_code(server, challenge=challenge)
    oidc = openid(server)
    tokens = await oidc.a_token(
        grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier
    )
    assert {"access_token", "refresh_token", "id_token", "expires_in"} <= set(tokens)
    claims = await oidc.a_decode_token(tokens["access_token"], validate=True)
    assert (
        claims["iss"] == server.issuer
        and claims["azp"] == "jupyterhub"
        and claims["typ"] == "Bearer"
    )
    assert claims["preferred_username"] == "alice" and claims["email"] == "alice@example.org"
    assert claims["groups"] == ["/ml/research", "/everyone"]
    assert {"ml-power", "it:gpu-1", "img:pytorch", "ds:papers", "it:cpu-1"} <= set(
        claims["realm_access"]["roles"]
    )
    identity = oidc.decode_token(tokens["id_token"], validate=True)
    assert (
        identity["aud"] == "jupyterhub"
        and identity["nonce"] == "n0nce"
        and identity["sub"] == claims["sub"]
    )
    assert identity["timezone"] == "Asia/Taipei"  # a user-attribute mapper on the ID token only
    assert "timezone" not in claims
    info = await oidc.a_userinfo(tokens["access_token"])
    assert info["sub"] == claims["sub"] and info["preferred_username"] == "alice"
    assert info["groups"] == ["/ml/research", "/everyone"]
    assert "realm_access" not in info  # Keycloak's roles mapper does not add them to userinfo


async def test_sso_session_skips_the_form_the_second_time(server):
    async with httpx.AsyncClient() as http:
        first = await authorization_code(server, http=http)
        second = await authorization_code(server, username="nobody", password="wrong", http=http)
    assert first != second


async def test_refresh_token_rotates(server):
    oidc = openid(server)
    tokens = oidc.token(username="alice", password="alice", grant_type="password")
    refreshed = await oidc.a_refresh_token(tokens["refresh_token"])
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]
    assert oidc.userinfo(refreshed["access_token"])["preferred_username"] == "alice"


async def test_logout_ends_the_session(server):
    oidc = openid(server)
    tokens = oidc.token(username="alice", password="alice")
    await oidc.a_logout(tokens["refresh_token"])
    with pytest.raises(KeycloakPostError) as refused:
        oidc.refresh_token(tokens["refresh_token"])
    assert refused.value.response_code == 400
    assert b"Session not active" in refused.value.response_body
    with pytest.raises(KeycloakAuthenticationError):
        oidc.userinfo(tokens["access_token"])


def test_introspection(server):
    oidc = openid(server)
    tokens = oidc.token(username="alice", password="alice")
    assert oidc.introspect(tokens["access_token"])["active"] is True
    assert oidc.introspect("not-a-token")["active"] is False


def test_client_credentials_token_is_the_service_account(server):
    tokens = openid(server).token(grant_type="client_credentials")
    claims = openid(server).decode_token(tokens["access_token"])
    assert claims["preferred_username"] == "service-account-jupyterhub"
    assert {"view-users", "query-groups"} <= set(
        claims["resource_access"]["realm-management"]["roles"]
    )
    assert "refresh_token" not in tokens


def test_public_client_password_grant(server):
    tokens = openid(server, client_id="cli", secret=None).token(username="admin", password="admin")
    assert tokens["access_token"]


# -- refusals, as Keycloak refuses --------------------------------------------------------------


def _error(raised) -> tuple[int, str]:
    import json

    body = json.loads(raised.value.response_body)
    return raised.value.response_code, body.get("error_description") or body.get("error")


async def test_wrong_client_secret(server):
    with pytest.raises(KeycloakAuthenticationError) as raised:
        openid(server, secret="wrong").token(grant_type="client_credentials")
    assert _error(raised) == (401, "Invalid client or Invalid client credentials")


async def test_wrong_redirect_uri(server):
    verifier, challenge = pkce()
    code = await authorization_code(server, challenge=challenge)
    with pytest.raises(KeycloakPostError) as raised:
        openid(server).token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT + "x",
            code_verifier=verifier,
        )
    assert _error(raised) == (400, "Incorrect redirect_uri")


async def test_reused_code(server):
    verifier, challenge = pkce()
    code = await authorization_code(server, challenge=challenge)
    oidc = openid(server)
    oidc.token(
        grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier
    )
    with pytest.raises(KeycloakPostError) as raised:
        oidc.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=verifier,
        )
    assert _error(raised) == (400, "Code not valid")


async def test_wrong_or_missing_pkce_verifier(server):
    _, challenge = pkce()
    oidc = openid(server)
    code = await authorization_code(server, challenge=challenge)
    with pytest.raises(KeycloakPostError) as raised:
        oidc.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT,
            code_verifier="x" * 43,
        )
    assert _error(raised) == (400, "PKCE verification failed: Code mismatch")
    code = await authorization_code(server, challenge=challenge)
    with pytest.raises(KeycloakPostError) as raised:
        oidc.token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert _error(raised) == (400, "PKCE code verifier not specified")


async def test_expired_code(identity_server_factory):
    server = identity_server_factory(REALM, access_code_lifespan=1)
    code = await authorization_code(server)
    await asyncio.sleep(1.2)
    with pytest.raises(KeycloakPostError) as raised:
        openid(server).token(grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert _error(raised) == (400, "Code not valid")


async def test_expired_access_token(identity_server_factory):
    server = identity_server_factory(REALM, access_token_lifespan=1)
    oidc = openid(server)
    tokens = oidc.token(username="alice", password="alice")
    await asyncio.sleep(1.5)
    with pytest.raises(KeycloakAuthenticationError) as raised:
        await oidc.a_userinfo(tokens["access_token"])
    assert _error(raised) == (401, "Token verification failed")
    from jwcrypto.jwt import JWTExpired

    oidc.decode_token(
        tokens["access_token"], validate=True
    )  # python-keycloak allows 60 s of leeway …
    with pytest.raises(JWTExpired):
        oidc.decode_token(
            tokens["access_token"], validate=True, leeway=0
        )  # … without it, the exp is real
    assert oidc.refresh_token(tokens["refresh_token"])[
        "access_token"
    ]  # the refresh token still works


async def test_bad_credentials_show_keycloaks_message(server):
    with pytest.raises(LoginFailed, match=r"^Invalid username or password\.$"):
        await authorization_code(server, password="wrong")
    with pytest.raises(LoginFailed, match="Account is disabled"):
        await authorization_code(server, username="mallory", password="mallory")
    with pytest.raises(KeycloakAuthenticationError) as raised:
        openid(server).token(username="alice", password="wrong")
    assert _error(raised) == (401, "Invalid user credentials")


async def test_unknown_client_and_redirect_uri_at_the_auth_endpoint(server):
    async with httpx.AsyncClient() as http:
        unknown = await http.get(
            f"{server.oidc}/auth",
            params={"client_id": "nope", "redirect_uri": REDIRECT, "response_type": "code"},
        )
        wrong_uri = await http.get(
            f"{server.oidc}/auth",
            params={
                "client_id": "no-admin",
                "response_type": "code",
                "redirect_uri": "http://evil.example/cb",
            },
        )
    assert unknown.status_code == 400 and "Client not found." in unknown.text
    assert wrong_uri.status_code == 400 and "Invalid parameter: redirect_uri" in wrong_uri.text


def test_admin_api_refuses_a_client_without_admin_roles(server):
    with pytest.raises(KeycloakGetError) as raised:
        admin(server, client_id="no-admin", secret="no-admin-secret").get_users({})
    assert raised.value.response_code == 403


async def test_admin_api_refuses_missing_and_expired_tokens(identity_server_factory):
    server = identity_server_factory(REALM, access_token_lifespan=1)
    async with httpx.AsyncClient() as http:
        anonymous = await http.get(f"{server.url}/admin/realms/{server.realm}/users")
        token = openid(server).token(grant_type="client_credentials")["access_token"]
        await asyncio.sleep(1.5)
        expired = await http.get(
            f"{server.url}/admin/realms/{server.realm}/users",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "HTTP 401 Unauthorized"})
    assert expired.status_code == 401
    # python-keycloak notices the expiry itself and fetches a new token
    assert admin(server).get_users({})


# -- the admin REST subset ----------------------------------------------------------------------


def test_admin_users_groups_and_roles_sync(server):
    kc = admin(server)
    alice_id = kc.get_user_id("Alice")
    alice = kc.get_user(alice_id)
    assert alice["username"] == "alice" and alice["attributes"] == {"timezone": ["Asia/Taipei"]}
    assert [u["username"] for u in kc.get_users({})] == ["admin", "alice", "mallory"]
    assert [u["username"] for u in kc.get_users({"first": 1, "max": 1})] == ["alice"]
    assert kc.get_user_id("nobody") is None
    groups = kc.get_user_groups(alice_id, brief_representation=False)
    assert [(g["path"], g["attributes"].get("displayName")) for g in groups] == [
        ("/everyone", None),
        ("/ml/research", ["Research"]),
    ]
    top = kc.get_groups()
    assert [(g["name"], g["subGroupCount"]) for g in top] == [("everyone", 0), ("ml", 1)]
    ml = next(g for g in top if g["name"] == "ml")
    assert [g["path"] for g in ml["subGroups"]] == [
        "/ml/research"
    ]  # python-keycloak fetched the children
    ml_full = kc.get_group(ml["id"])
    assert ml_full["attributes"] == {"displayName": ["ML"], "quota-gpu": ["1", "2"]}
    research = kc.get_group_by_path("/ml/research")
    assert research["realmRoles"] == ["ds:papers"]
    with pytest.raises(KeycloakGetError) as missing:
        kc.get_group_by_path("/nope")
    assert missing.value.response_code == 404
    assert [u["username"] for u in kc.get_group_members(research["id"])] == ["alice"]
    assert [r["name"] for r in kc.get_group_realm_roles(ml["id"])] == ["ml-power"]
    effective = kc.connection.raw_get(
        f"admin/realms/{server.realm}/groups/{research['id']}/role-mappings/realm/composite"
    )
    assert {r["name"] for r in effective.json()} == {
        "ds:papers",
        "ml-power",
        "it:gpu-1",
        "img:pytorch",
    }
    assert {r["name"] for r in kc.get_composite_realm_roles_of_user(alice_id)} >= {
        "ml-power",
        "it:gpu-1",
        "it:cpu-1",
    }
    assert [r["name"] for r in kc.get_realm_roles_of_user(alice_id)] == [
        "default-roles-conformance"
    ]
    assert kc.get_realm_role("ml-power")["composite"] is True
    assert "it:gpu-1" in [r["name"] for r in kc.get_realm_roles()]


async def test_admin_async_and_client_roles(server):
    service_account = admin(server)
    with pytest.raises(
        KeycloakGetError
    ) as raised:  # listing clients needs query-clients, as in Keycloak
        await service_account.a_get_client_id("realm-management")
    assert raised.value.response_code == 403
    await service_account.connection.aclose()
    # A realm admin logged in through a public client with direct access grants may.
    kc = KeycloakAdmin(
        connection=KeycloakOpenIDConnection(
            server_url=server.url,
            realm_name=server.realm,
            client_id="cli",
            username="admin",
            password="admin",
        )
    )
    admin_id = await kc.a_get_user_id("admin")
    management = await kc.a_get_client_id("realm-management")
    direct = await kc.a_get_client_roles_of_user(admin_id, management)
    assert [r["name"] for r in direct] == ["realm-admin"]
    effective = await kc.a_get_composite_client_roles_of_user(admin_id, management)
    assert {"view-users", "query-groups", "manage-users"} <= {r["name"] for r in effective}
    mappings = await kc.a_get_all_roles_of_user(admin_id)
    assert [r["name"] for r in mappings["realmMappings"]] == ["default-roles-conformance"]
    assert [r["name"] for r in mappings["clientMappings"]["realm-management"]["mappings"]] == [
        "realm-admin"
    ]
    groups = await kc.a_get_user_groups(admin_id, brief_representation=False)
    assert [g["path"] for g in groups] == ["/everyone", "/ml"]
    await kc.connection.aclose()


async def test_admin_changes_take_effect(server):
    kc = admin(server)
    alice_id = kc.get_user_id("alice")
    kc.update_user(alice_id, {"attributes": {"predefinedEnvs": ['[{"name": "A", "value": "1"}]']}})
    assert kc.get_user(alice_id)["attributes"] == {
        "predefinedEnvs": ['[{"name": "A", "value": "1"}]']
    }
    research = kc.get_group_by_path("/ml/research")
    kc.group_user_remove(alice_id, research["id"])
    assert [g["path"] for g in kc.get_user_groups(alice_id)] == ["/everyone"]
    kc.group_user_add(alice_id, research["id"])
    paper = kc.get_realm_role("ds:papers")
    kc.delete_group_realm_roles(research["id"], [paper])
    assert kc.get_group_realm_roles(research["id"]) == []
    kc.assign_group_realm_roles(research["id"], [paper])
    assert [r["name"] for r in kc.get_group_realm_roles(research["id"])] == ["ds:papers"]
    tokens = openid(server).token(username="alice", password="alice")
    assert (
        "ds:papers" in openid(server).decode_token(tokens["access_token"])["realm_access"]["roles"]
    )


async def test_end_session_logout_redirects_and_ends_the_sso_session(server):
    verifier, challenge = pkce()
    async with httpx.AsyncClient() as http:
        code = await authorization_code(server, challenge=challenge, http=http)
        tokens = openid(server).token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=verifier,
        )
        after = "http://127.0.0.1:9/callback/bye"
        logout = await http.get(
            f"{server.oidc}/logout",
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": after,
                "state": "s",
            },
        )
        assert logout.status_code == 302 and logout.headers["location"] == f"{after}?state=s"
        with pytest.raises(LoginFailed):  # the SSO cookie is gone: the form is shown again
            await authorization_code(server, password="wrong", http=http)
    with pytest.raises(KeycloakPostError):
        openid(server).refresh_token(tokens["refresh_token"])


async def test_end_session_refuses_a_foreign_redirect(server):
    tokens = openid(server).token(username="alice", password="alice")
    async with httpx.AsyncClient() as http:
        refused = await http.get(
            f"{server.oidc}/logout",
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": "http://evil.example/",
            },
        )
    async with httpx.AsyncClient(cookies={"KEYCLOAK_IDENTITY": "x"}) as http:
        confirm = await http.get(f"{server.oidc}/logout")
    assert refused.status_code == 400 and "Invalid redirect uri" in refused.text
    assert confirm.status_code == 200 and "Do you want to log out?" in confirm.text
    assert openid(server).userinfo(tokens["access_token"])["preferred_username"] == "alice"
