"""SSO sessions, authorization codes and the claims of every token the realm issues."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

from .keys import RealmKeys
from .realm import Client, Realm, User


class GrantError(Exception):
    """An OAuth error answer: ``{"error": error, "error_description": description}`` with ``status``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class Session:
    """An SSO session (Keycloak's user session): one per login, shared by the clients that use it."""

    id: str
    user_id: str
    started: float
    last_refresh: float
    auth_time: int
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # client_id -> newest refresh jti
    ended: bool = False


@dataclass
class PendingCode:
    session_id: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float


class TokenService:
    """Issues and checks codes and tokens for one realm."""

    def __init__(self, realm: Realm, keys: RealmKeys, issuer: str) -> None:
        self.realm = realm
        self.keys = keys
        self.issuer = issuer
        self.sessions: dict[str, Session] = {}
        self.codes: dict[str, PendingCode] = {}

    # -- sessions and codes -----------------------------------------------------------------------

    def start_session(self, user: User) -> Session:
        now = time.time()
        session = Session(
            id=str(uuid.uuid4()), user_id=user.id, started=now, last_refresh=now, auth_time=int(now)
        )
        self.sessions[session.id] = session
        return session

    def live_session(self, session_id: str | None) -> Session | None:
        session = self.sessions.get(session_id or "")
        if session is None or session.ended:
            return None
        now = time.time()
        if (
            now - session.last_refresh > self.realm.sso_session_idle_timeout
            or now - session.started > self.realm.sso_session_max_lifespan
        ):
            session.ended = True
            return None
        user = self.realm.users.get(session.user_id)
        if user is None or not user.enabled:
            session.ended = True
            return None
        return session

    def end_session(self, session_id: str) -> None:
        session = self.sessions.get(session_id)
        if session is not None:
            session.ended = True

    def issue_code(
        self,
        session: Session,
        client: Client,
        redirect_uri: str,
        scope: str,
        nonce: str | None,
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> str:
        now = time.time()
        for stale in [c for c, p in self.codes.items() if p.expires < now]:
            del self.codes[stale]
        code = f"{uuid.uuid4()}.{session.id}.{uuid.uuid4()}"
        self.codes[code] = PendingCode(
            session_id=session.id,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            expires=time.time() + self.realm.access_code_lifespan,
        )
        return code

    def redeem_code(self, code: str, client: Client) -> PendingCode:
        """A code is good once, for its client, before it expires: otherwise "Code not valid"."""
        pending = self.codes.pop(code, None)  # single use, even when the rest of the request fails
        if (
            pending is None
            or pending.client_id != client.client_id
            or time.time() > pending.expires
        ):
            raise GrantError("invalid_grant", "Code not valid")
        if self.live_session(pending.session_id) is None:
            raise GrantError("invalid_grant", "Code not valid")
        return pending

    # -- claims -----------------------------------------------------------------------------------

    def _profile(self, user: User) -> dict[str, Any]:
        claims: dict[str, Any] = {"preferred_username": user.username}
        if not user.service_account_client:
            name = " ".join(part for part in (user.first_name, user.last_name) if part)
            claims.update(email_verified=user.email_verified)
            if name:
                claims["name"] = name
            if user.first_name:
                claims["given_name"] = user.first_name
            if user.last_name:
                claims["family_name"] = user.last_name
            if user.email:
                claims["email"] = user.email
        return claims

    def _mapped(self, user: User, client: Client, token: str) -> dict[str, Any]:
        realm_roles, client_roles = self.realm.user_effective(user)
        claims: dict[str, Any] = {}
        for mapper in client.mappers:
            if not getattr(mapper, token):
                continue
            if mapper.kind == "realm-roles":
                claims["realm_access"] = {"roles": sorted(realm_roles)}
            elif mapper.kind == "client-roles":
                claims["resource_access"] = {
                    cid: {"roles": sorted(names)} for cid, names in sorted(client_roles.items())
                }
            elif mapper.kind == "group-membership":
                groups = [self.realm.groups[g] for g in user.groups]
                claims[mapper.claim] = [g.path if mapper.full_path else g.name for g in groups]
            elif mapper.kind == "user-attribute":
                values = user.attributes.get(mapper.attribute, [])
                if values:
                    claims[mapper.claim] = values if mapper.multivalued else values[0]
        return claims

    def _audience(self, mapped: dict[str, Any], client: Client) -> list[str]:
        return sorted(cid for cid in mapped.get("resource_access", {}) if cid != client.client_id)

    def _signed_claims(
        self, now: int, session: Session, user: User, client: Client, kind: str
    ) -> dict[str, Any]:
        """The claims access and ID tokens share (Keycloak's), with the user's profile."""
        return {
            "exp": now + self.realm.access_token_lifespan,
            "iat": now,
            "auth_time": session.auth_time,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "sub": user.id,
            "typ": kind,
            "azp": client.client_id,
            "sid": session.id,
            "session_state": session.id,
            "acr": "1",
            **self._profile(user),
        }

    def tokens(
        self,
        session: Session,
        user: User,
        client: Client,
        scope: str,
        nonce: str | None = None,
        with_refresh: bool = True,
        with_id_token: bool = True,
    ) -> dict[str, Any]:
        """The token response for ``user`` through ``client`` in ``session``."""
        now = int(time.time())
        # Keycloak's default client scopes (profile, email) always apply; openid only when asked for.
        scopes = " ".join(dict.fromkeys([*scope.split(), "profile", "email"]))
        mapped = self._mapped(user, client, "access_token")
        access_claims = {
            **self._signed_claims(now, session, user, client, "Bearer"),
            "scope": scopes,
            **mapped,
        }
        audience = self._audience(mapped, client)
        if audience:
            access_claims["aud"] = audience if len(audience) > 1 else audience[0]
        if user.service_account_client:
            access_claims.update(
                client_id=client.client_id, clientHost="127.0.0.1", clientAddress="127.0.0.1"
            )
        access_token = self.keys.sign(access_claims)
        response: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": self.realm.access_token_lifespan,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session.id,
            "scope": scopes,
        }
        if with_refresh:
            refresh_jti = str(uuid.uuid4())
            session.refresh_tokens[client.client_id] = refresh_jti
            idle_left = int(
                min(
                    self.realm.sso_session_idle_timeout,
                    session.started + self.realm.sso_session_max_lifespan - now,
                )
            )
            response["refresh_token"] = self.keys.sign_refresh(
                {
                    "exp": now + idle_left,
                    "iat": now,
                    "jti": refresh_jti,
                    "iss": self.issuer,
                    "aud": self.issuer,
                    "sub": user.id,
                    "typ": "Refresh",
                    "azp": client.client_id,
                    "sid": session.id,
                    "session_state": session.id,
                    "scope": scopes,
                }
            )
            response["refresh_expires_in"] = idle_left
        if with_id_token and "openid" in scopes.split():
            id_claims = {
                **self._signed_claims(now, session, user, client, "ID"),
                "aud": client.client_id,
                "at_hash": self.keys.half_hash(access_token),
                **self._mapped(user, client, "id_token"),
            }
            if nonce:
                id_claims["nonce"] = nonce
            response["id_token"] = self.keys.sign(id_claims)
        return response

    def userinfo(self, user: User, client: Client) -> dict[str, Any]:
        return {"sub": user.id, **self._profile(user), **self._mapped(user, client, "userinfo")}

    # -- refresh ----------------------------------------------------------------------------------

    def refresh(self, refresh_token: str, client: Client) -> tuple[Session, User, str]:
        """Check a refresh token; returns its session, user and scope. Keycloak's error texts."""
        try:
            claims = self.keys.verify_refresh(refresh_token)
        except jwt.ExpiredSignatureError as error:
            raise GrantError("invalid_grant", "Token is not active") from error
        except jwt.InvalidTokenError as error:
            raise GrantError("invalid_grant", "Invalid refresh token") from error
        if claims.get("azp") != client.client_id:
            raise GrantError(
                "invalid_grant",
                "Invalid refresh token. Token client and authorized client don't match",
            )
        session = self.live_session(claims.get("sid"))
        if session is None:
            raise GrantError("invalid_grant", "Session not active")
        if (
            self.realm.revoke_refresh_token
            and session.refresh_tokens.get(client.client_id) != claims["jti"]
        ):
            raise GrantError("invalid_grant", "Maximum allowed refresh token reuse exceeded")
        user = self.realm.users.get(session.user_id)
        if user is None or not user.enabled:
            raise GrantError("invalid_grant", "User disabled")
        session.last_refresh = time.time()
        return session, user, str(claims.get("scope", "openid"))

    def bearer_user(self, token: str) -> tuple[dict[str, Any], User, Client]:
        """The claims, user and client of a valid access token (raises GrantError invalid_token)."""
        try:
            claims = self.keys.verify(token)
        except jwt.InvalidTokenError as error:
            raise GrantError("invalid_token", "Token verification failed", 401) from error
        if claims.get("typ") != "Bearer" or claims.get("iss") != self.issuer:
            raise GrantError("invalid_token", "Token verification failed", 401)
        user = self.realm.users.get(claims.get("sub", ""))
        client = self.realm.clients.get(claims.get("azp", ""))
        if user is None or client is None or not user.enabled:
            raise GrantError("invalid_token", "Token verification failed", 401)
        if not user.service_account_client and self.live_session(claims.get("sid")) is None:
            raise GrantError("invalid_token", "Token verification failed", 401)
        return claims, user, client
