"""OpenID Connect endpoints at Keycloak's URL layout: ``/realms/{realm}/protocol/openid-connect/…``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import jwt
from tornado import web

from .realm import Client, User
from .sessions import GrantError

SSO_COOKIE = "KEYCLOAK_IDENTITY"
LOGIN_TIMEOUT = 1800


@dataclass
class AuthRequest:
    """An authorization request waiting for the user to log in (Keycloak's authentication session)."""

    client_id: str
    redirect_uri: str
    state: str | None
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    response_mode: str
    created: float


def redirect_uri_allowed(uri: str, allowed: list[str]) -> bool:
    """Exact match, or a prefix match for patterns ending in ``*``, as Keycloak's valid redirect URIs."""
    for pattern in allowed:
        if (
            pattern == "*"
            or uri == pattern
            or (pattern.endswith("*") and uri.startswith(pattern[:-1]))
        ):
            return True
    return False


def with_query(uri: str, params: dict[str, str | None]) -> str:
    parts = urllib.parse.urlsplit(uri)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


class RealmHandler(web.RequestHandler):
    """Base: the realm in the path must exist; JSON and HTML helpers; request counting."""

    @property
    def server(self) -> Any:
        return self.settings["identity"]

    def prepare(self) -> None:
        self.server.count(self.request)
        realm_name = self.path_kwargs.get("realm")
        if realm_name is not None and realm_name != self.server.realm.name:
            self.set_status(404)
            self.finish({"error": "Realm does not exist"})

    def check_xsrf_cookie(self) -> None:  # OAuth endpoints are called by other servers
        return

    def json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Pragma", "no-cache")
        self.finish(json.dumps(payload))

    def oauth_error(self, error: GrantError) -> None:
        if error.status == 401 and error.error == "invalid_token":
            self.set_header(
                "WWW-Authenticate",
                f'Bearer realm="{self.server.realm.name}", error="invalid_token", '
                f'error_description="{error.description}"',
            )
        self.json({"error": error.error, "error_description": error.description}, error.status)

    def page(self, template: str, status: int = 200, **values: Any) -> None:
        self.set_status(status)
        self.render(template, realm=self.server.realm, **values)

    def client_from_request(self) -> Client:
        """Client authentication: HTTP Basic or form parameters (client_secret_basic / _post)."""
        client_id = self.get_body_argument("client_id", None)
        secret = self.get_body_argument("client_secret", None)
        header = self.request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
                basic_id, _, basic_secret = decoded.partition(":")
                client_id = urllib.parse.unquote_plus(basic_id)
                secret = urllib.parse.unquote_plus(basic_secret)
            except (ValueError, UnicodeDecodeError) as error:
                raise GrantError(
                    "invalid_client", "Invalid client or Invalid client credentials", 401
                ) from error
        client = self.server.realm.clients.get(client_id or "")
        if client is None or client.bearer_only:
            raise GrantError("invalid_client", "Invalid client or Invalid client credentials", 401)
        if not client.public and not hmac.compare_digest(
            (secret or "").encode(), (client.secret or "").encode()
        ):
            raise GrantError(
                "unauthorized_client", "Invalid client or Invalid client credentials", 401
            )
        return client


class RealmInfoHandler(RealmHandler):
    def get(self, realm: str) -> None:
        base = self.server.issuer
        self.json(
            {
                "realm": realm,
                "public_key": self.server.keys.public_key_base64(),
                "token-service": f"{base}/protocol/openid-connect",
                "account-service": f"{base}/account",
                "tokens-not-before": 0,
            }
        )


class DiscoveryHandler(RealmHandler):
    def get(self, realm: str) -> None:
        browser, internal = self.server.browser_issuer, self.server.issuer
        endpoint = f"{internal}/protocol/openid-connect"
        self.json(
            {
                "issuer": self.server.issuer,
                "authorization_endpoint": f"{browser}/protocol/openid-connect/auth",
                "token_endpoint": f"{endpoint}/token",
                "introspection_endpoint": f"{endpoint}/token/introspect",
                "userinfo_endpoint": f"{endpoint}/userinfo",
                "end_session_endpoint": f"{browser}/protocol/openid-connect/logout",
                "jwks_uri": f"{endpoint}/certs",
                "grant_types_supported": [
                    "authorization_code",
                    "client_credentials",
                    "password",
                    "refresh_token",
                ],
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["plain", "S256"],
                "scopes_supported": ["openid", "profile", "email", "roles", "offline_access"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "name",
                    "given_name",
                    "family_name",
                    "preferred_username",
                    "email",
                    "email_verified",
                    "acr",
                ],
                "frontchannel_logout_supported": False,
                "backchannel_logout_supported": False,
            }
        )


class CertsHandler(RealmHandler):
    def get(self, realm: str) -> None:
        self.json(self.server.keys.jwks())


class AuthHandler(RealmHandler):
    """``/auth``: validate the request; reuse a live SSO session, else show the login form."""

    def get(self, realm: str) -> None:
        argument = self.get_query_argument
        client = self.server.realm.clients.get(argument("client_id", ""))
        if client is None or client.bearer_only:
            return self.page("error.html", 400, message="Client not found.")
        redirect_uri = argument("redirect_uri", "")
        if not redirect_uri or not redirect_uri_allowed(redirect_uri, client.redirect_uris):
            return self.page("error.html", 400, message="Invalid parameter: redirect_uri")
        state = argument("state", None)

        def fail(error: str, description: str) -> None:
            self.redirect(
                with_query(
                    redirect_uri, {"error": error, "error_description": description, "state": state}
                )
            )

        if argument("response_type", "") != "code":
            return fail(
                "unsupported_response_type",
                "Client is not allowed to initiate browser login with given response_type.",
            )
        if not client.standard_flow:
            return fail(
                "unauthorized_client",
                "Client is not allowed to initiate browser login with given response_type. Standard flow is disabled for the client.",
            )
        method = argument("code_challenge_method", None)
        challenge = argument("code_challenge", None)
        if challenge and (method or "plain") not in ("plain", "S256"):
            return fail("invalid_request", "Invalid parameter: code_challenge_method")
        request = AuthRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            state=state,
            scope=argument("scope", "openid"),
            nonce=argument("nonce", None),
            code_challenge=challenge,
            code_challenge_method=(method or "plain") if challenge else None,
            response_mode=argument("response_mode", "query"),
            created=time.time(),
        )
        session = self.server.tokens.live_session(self.get_cookie(SSO_COOKIE))
        if session is not None and argument("prompt", "") != "login":
            return self.finish_login(request, session)
        if argument("prompt", "") == "none":
            return fail("login_required", "Login required")
        pending = self.server.pending_logins
        for stale in [k for k, r in pending.items() if time.time() - r.created > LOGIN_TIMEOUT]:
            del pending[stale]
        session_code = secrets.token_urlsafe(24)
        pending[session_code] = request
        self.login_form(session_code, request, username=argument("login_hint", ""), error=None)

    def login_form(
        self,
        session_code: str,
        request: AuthRequest,
        username: str,
        error: str | None,
        status: int = 200,
    ) -> None:
        action = with_query(
            f"/realms/{self.server.realm.name}/login-actions/authenticate",
            {
                "session_code": session_code,
                "execution": "auth-username-password-form",
                "client_id": request.client_id,
                "tab_id": session_code[:11],
            },
        )
        self.page("login.html", status, action=action, username=username, error=error)

    def finish_login(self, request: AuthRequest, session: Any) -> None:
        client = self.server.realm.clients[request.client_id]
        code = self.server.tokens.issue_code(
            session,
            client,
            request.redirect_uri,
            request.scope,
            request.nonce,
            request.code_challenge,
            request.code_challenge_method,
        )
        self.redirect(
            with_query(
                request.redirect_uri,
                {
                    "state": request.state,
                    "session_state": session.id,
                    "iss": self.server.browser_issuer,
                    "code": code,
                },
            )
        )


class LoginActionHandler(AuthHandler):
    """The login form's POST: check the credentials, start the SSO session, redirect with a code."""

    def post(self, realm: str) -> None:
        session_code = self.get_query_argument("session_code", "")
        request = self.server.pending_logins.get(session_code)
        if request is None or time.time() - request.created > LOGIN_TIMEOUT:
            return self.page(
                "error.html",
                400,
                message="Your login attempt timed out. Login will start from the beginning.",
            )
        username = self.get_body_argument("username", "").strip()
        password = self.get_body_argument("password", "")
        user: User | None = self.server.realm.user_by_name(username)
        if (
            user is None
            or user.service_account_client
            or user.password is None
            or not hmac.compare_digest(password.encode(), user.password.encode())
        ):
            return self.login_form(session_code, request, username, "Invalid username or password.")
        if not user.enabled:
            return self.login_form(
                session_code, request, username, "Account is disabled, contact your administrator."
            )
        del self.server.pending_logins[session_code]
        session = self.server.tokens.start_session(user)
        cookie_path = f"/realms/{self.server.realm.name}/"
        self.set_cookie(SSO_COOKIE, session.id, path=cookie_path, httponly=True, samesite="Lax")
        self.set_cookie(
            "KEYCLOAK_SESSION",
            f"{self.server.realm.name}/{user.id}/{session.id}",
            path=cookie_path,
            samesite="Lax",
        )
        self.finish_login(request, session)


def _pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        computed = verifier
    return hmac.compare_digest(computed, challenge)


class TokenHandler(RealmHandler):
    def post(self, realm: str) -> None:
        try:
            client = self.client_from_request()
            grant_type = self.get_body_argument("grant_type", "")
            if not grant_type:
                raise GrantError("invalid_request", "Missing form parameter: grant_type")
            handler = {
                "authorization_code": self._code,
                "refresh_token": self._refresh,
                "client_credentials": self._client_credentials,
                "password": self._password,
            }.get(grant_type)
            if handler is None:
                raise GrantError("unsupported_grant_type", "Unsupported grant_type")
            self.json(handler(client))
        except GrantError as error:
            self.oauth_error(error)

    def _code(self, client: Client) -> dict[str, Any]:
        tokens = self.server.tokens
        if not client.standard_flow:
            raise GrantError("unauthorized_client", "Client not allowed to exchange code")
        code = self.get_body_argument("code", "")
        if not code:
            raise GrantError("invalid_request", "Missing parameter: code")
        pending = tokens.redeem_code(code, client)
        if self.get_body_argument("redirect_uri", "") != pending.redirect_uri:
            raise GrantError("invalid_grant", "Incorrect redirect_uri")
        verifier = self.get_body_argument("code_verifier", None)
        if pending.code_challenge:
            if not verifier:
                raise GrantError("invalid_grant", "PKCE code verifier not specified")
            if not _pkce_matches(
                verifier, pending.code_challenge, pending.code_challenge_method or "plain"
            ):
                raise GrantError("invalid_grant", "PKCE verification failed: Code mismatch")
        session = tokens.live_session(pending.session_id)
        user = self.server.realm.users[session.user_id]
        return tokens.tokens(session, user, client, pending.scope, pending.nonce)

    def _refresh(self, client: Client) -> dict[str, Any]:
        token = self.get_body_argument("refresh_token", "")
        if not token:
            raise GrantError("invalid_request", "Missing form parameter: refresh_token")
        session, user, scope = self.server.tokens.refresh(token, client)
        return self.server.tokens.tokens(session, user, client, scope)

    def _client_credentials(self, client: Client) -> dict[str, Any]:
        if not client.service_accounts or client.public:
            raise GrantError(
                "unauthorized_client", "Client not enabled to retrieve service account"
            )
        account = self.server.realm.user_by_name(f"service-account-{client.client_id}")
        session = self.server.tokens.start_session(account)
        scope = self.get_body_argument("scope", "profile email")
        return self.server.tokens.tokens(
            session, account, client, scope, with_refresh=False, with_id_token=False
        )

    def _password(self, client: Client) -> dict[str, Any]:
        if not client.direct_access_grants:
            raise GrantError("unauthorized_client", "Client not allowed for direct access grants")
        user = self.server.realm.user_by_name(self.get_body_argument("username", ""))
        password = self.get_body_argument("password", "")
        if (
            user is None
            or user.service_account_client
            or user.password is None
            or not hmac.compare_digest(password.encode(), user.password.encode())
        ):
            raise GrantError("invalid_grant", "Invalid user credentials", 401)
        if not user.enabled:
            raise GrantError("invalid_grant", "Account disabled")
        session = self.server.tokens.start_session(user)
        return self.server.tokens.tokens(
            session, user, client, self.get_body_argument("scope", "openid")
        )


class UserinfoHandler(RealmHandler):
    def _token(self) -> str:
        header = self.request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        if self.request.method == "POST":
            return self.get_body_argument("access_token", "")
        return ""

    def get(self, realm: str) -> None:
        token = self._token()
        if not token:
            return self.oauth_error(GrantError("invalid_request", "Token not provided", 401))
        try:
            _, user, client = self.server.tokens.bearer_user(token)
        except GrantError as error:
            return self.oauth_error(error)
        self.json(self.server.tokens.userinfo(user, client))

    post = get


class IntrospectHandler(RealmHandler):
    def post(self, realm: str) -> None:
        try:
            self.client_from_request()
        except GrantError as error:
            return self.oauth_error(error)
        token = self.get_body_argument("token", "")
        try:
            claims, _, _ = self.server.tokens.bearer_user(token)
        except GrantError:
            return self.json({"active": False})
        self.json(
            {
                **claims,
                "active": True,
                "client_id": claims.get("azp"),
                "username": claims.get("preferred_username"),
                "token_type": "Bearer",
            }
        )


class LogoutHandler(RealmHandler):
    """End-session (browser) and back-channel logout (``POST`` with a refresh token)."""

    def get(self, realm: str) -> None:
        argument = self.get_argument
        redirect = argument("post_logout_redirect_uri", None)
        hint = argument("id_token_hint", None)
        client_id = argument("client_id", None)
        session_id = None
        if hint:
            try:  # an expired hint still names the session, as Keycloak accepts it
                claims = self.server.keys.verify(hint, verify_exp=False)
            except jwt.InvalidTokenError:
                return self.page("error.html", 400, message="Invalid IDToken")
            client_id = client_id or claims.get("azp")
            session_id = claims.get("sid")
        if redirect:
            client = self.server.realm.clients.get(client_id or "")
            if client is None:
                return self.page("error.html", 400, message="Missing parameters: id_token_hint")
            if not redirect_uri_allowed(redirect, client.post_logout_redirect_uris):
                return self.page("error.html", 400, message="Invalid redirect uri")
        cookie_session = self.get_cookie(SSO_COOKIE)
        if (
            not hint
            and cookie_session
            and self.request.method == "GET"
            and not argument("confirm", None)
        ):
            return self.page(
                "logout-confirm.html",
                action=with_query(
                    f"/realms/{realm}/protocol/openid-connect/logout",
                    {
                        "post_logout_redirect_uri": redirect,
                        "client_id": client_id,
                        "state": argument("state", None),
                        "confirm": "1",
                    },
                ),
            )
        for sid in {session_id, cookie_session} - {None}:
            self.server.tokens.end_session(sid)
        cookie_path = f"/realms/{realm}/"
        self.clear_cookie(SSO_COOKIE, path=cookie_path)
        self.clear_cookie("KEYCLOAK_SESSION", path=cookie_path)
        if redirect:
            return self.redirect(with_query(redirect, {"state": argument("state", None)}))
        self.page("logged-out.html")

    def post(self, realm: str) -> None:
        refresh_token = self.get_body_argument("refresh_token", None)
        if refresh_token is None:
            return self.get(realm)
        try:
            client = self.client_from_request()
            session, _, _ = self.server.tokens.refresh(refresh_token, client)
        except GrantError as error:
            return self.oauth_error(error)
        self.server.tokens.end_session(session.id)
        self.set_status(204)
        self.finish()
