"""A Keycloak-compatible identity server for the test ground, loaded from a realm file.

The bar it is held to: python-keycloak 7 and OAuthenticator 17 work against it unmodified, as they
would against Keycloak (26). ``python -m devstack.identity --realm FILE [--port N]``.

Reproduced, with Keycloak's URLs, JSON shapes, status codes and error texts:

- OIDC under ``/realms/{realm}``: discovery, ``GET /realms/{realm}`` (public key), JWKS (RS256,
  with ``x5c``), the login page (``form#kc-form-login``, ``username``/``password``, "Invalid
  username or password."), SSO cookie sessions, ``prompt=none``/``login``; the token endpoint's
  ``authorization_code`` (PKCE plain/S256, exact ``redirect_uri``, single-use codes that expire),
  ``refresh_token`` (a new refresh token each time; reuse refused when the realm sets
  ``revokeRefreshToken``), ``client_credentials`` (the client's service-account user) and
  ``password`` (for clients with direct access grants); client authentication by HTTP Basic or
  form; userinfo; introspection; end-session logout (``id_token_hint``, ``client_id``,
  ``post_logout_redirect_uri`` checked against the client, a confirmation page otherwise) and
  back-channel logout with a refresh token.
- Token claims: ``iss``, ``sub``, ``aud``, ``azp``, ``exp``, ``iat``, ``auth_time``, ``sid``,
  ``session_state``, ``preferred_username``, ``email``, names, ``realm_access``,
  ``resource_access``; protocol mappers for group membership (full paths), realm and client roles
  and user attributes, each to the access token, ID token and/or userinfo as configured.
- Role semantics: composites (realm and client), inheritance from parent groups, the realm's
  default roles, ``realm-management`` roles with their composites (``realm-admin`` holds all).
- The admin REST subset (see ``server.py`` for the routes) with pagination (``first``/``max``),
  ``briefRepresentation``, ``subGroupCount`` (Keycloak ≥ 23), and 401/403/404 as Keycloak answers.

Not reproduced: other realms (no ``master``), consent screens, required actions, OTP, identity
brokering, token exchange, offline tokens, client scopes beyond the fixed profile/email claims,
fine-grained admin permissions, events, persistence (state lives in memory; admin changes are lost
at restart). ``/devstack/requests`` (request counts) is the test ground's own, not Keycloak's.
"""
