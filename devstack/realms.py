"""The demo realm (``devstack/data/primehub-realm.json``, Keycloak's realm-export format) and the
variants tests create through Keycloak's admin API."""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .keycloak import KeycloakAdminError, KeycloakProcess

DEMO_REALM_FILE = Path(__file__).resolve().parent / "data" / "primehub-realm.json"
DEMO_CLIENT_ID = "jupyterhub"
DEMO_CLIENT_SECRET = "demo-jupyterhub-secret"  # the demo realm's
PROFILE_COMPONENT = "org.keycloak.userprofile.UserProfileProvider"


def demo_realm(name: str = "primehub", hub_url: str | None = None) -> dict[str, Any]:
    """The demo realm as a dict, renamed to ``name``; with ``hub_url``, the client's redirect and
    post-logout URIs point at that hub instead of ``http://127.0.0.1:8000``."""
    realm = json.loads(DEMO_REALM_FILE.read_text())
    realm["realm"] = name
    for user in realm["users"]:
        user["realmRoles"] = [
            f"default-roles-{name}" if role == "default-roles-primehub" else role
            for role in user.get("realmRoles", [])
        ]
    if hub_url is not None:
        set_hub_url(realm, hub_url)
    return realm


def set_hub_url(realm: dict[str, Any], hub_url: str) -> None:
    """Point the demo client's redirect and post-logout URIs at ``hub_url`` (``*`` allowed last,
    Keycloak's only wildcard)."""
    hub_url = hub_url.rstrip("/")
    client = find(realm["clients"], "clientId", DEMO_CLIENT_ID)
    client["rootUrl"] = hub_url.rstrip("*:")
    wildcard = hub_url.endswith("*")
    client["redirectUris"] = [hub_url if wildcard else f"{hub_url}/hub/oauth_callback"]
    client["attributes"]["post.logout.redirect.uris"] = (
        hub_url if wildcard else f"{hub_url}/hub/login"
    )


def find(entries: list[dict[str, Any]], key: str, value: str) -> dict[str, Any]:
    for entry in entries:
        if entry.get(key) == value:
            return entry
    raise KeyError(f"no entry with {key}={value!r}")


def group(realm: dict[str, Any], name: str) -> dict[str, Any]:
    """A top-level group of ``realm`` by name."""
    return find(realm["groups"], "name", name)


def user(realm: dict[str, Any], username: str) -> dict[str, Any]:
    return find(realm["users"], "username", username)


def add_user(
    realm: dict[str, Any], username: str, groups: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A user as the demo's are made (password = user name, in /everyone, with names and email,
    so Keycloak's default user profile asks nothing at the first login)."""
    entry = {
        "username": username,
        "enabled": True,
        "emailVerified": True,
        "email": f"{username}@example.org",
        "firstName": username.capitalize(),
        "lastName": "Example",
        "credentials": [{"type": "password", "value": username, "temporary": False}],
        "groups": ["/everyone", *(groups or [])],
        "realmRoles": [f"default-roles-{realm['realm']}"],
        **extra,
    }
    realm["users"].append(entry)
    return entry


def user_profile(realm: dict[str, Any]) -> dict[str, Any]:
    """The realm's declarative user profile (a JSON document inside a component's config)."""
    component = realm["components"][PROFILE_COMPONENT][0]
    return json.loads(component["config"]["kc.user.profile.config"][0])


def set_user_profile(realm: dict[str, Any], profile: dict[str, Any]) -> None:
    component = realm["components"][PROFILE_COMPONENT][0]
    component["config"]["kc.user.profile.config"] = [json.dumps(profile)]


@dataclass
class Realm:
    """A realm on a Keycloak server, as the plugin sees it: ``url`` is python-keycloak's
    ``server_url`` (Keycloak's base URL, or a proxy in front of it)."""

    url: str
    realm: str
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{self.realm}"

    @property
    def oidc(self) -> str:
        return f"{self.issuer}/protocol/openid-connect"

    def via(self, url: str) -> Realm:
        """The same realm reached through ``url`` (a proxy)."""
        return Realm(url.rstrip("/"), self.realm, self.client_id, self.client_secret)


class RealmFactory:
    """Creates realms on ``keycloak`` through its admin API; :meth:`delete_all` removes them."""

    def __init__(self, keycloak: KeycloakProcess, prefix: str = "t") -> None:
        self.keycloak = keycloak
        self.prefix = prefix
        self.created: list[str] = []

    def variant(self, hub_url: str = "http://127.0.0.1:*") -> dict[str, Any]:
        """The demo realm under a fresh name, its client accepting any hub on loopback."""
        return demo_realm(f"{self.prefix}-{secrets.token_hex(4)}", hub_url=hub_url)

    def create(self, realm: dict[str, Any] | None = None, **settings: Any) -> Realm:
        """Create ``realm`` (default: a fresh :meth:`variant`); ``settings`` are realm settings
        such as ``accessTokenLifespan``."""
        body = copy.deepcopy(realm) if realm is not None else self.variant()
        body.update(settings)
        self.keycloak.admin("POST", "realms", body, timeout=120)
        self.created.append(body["realm"])
        return Realm(self.keycloak.url, body["realm"])

    def delete_all(self) -> None:
        for name in reversed(self.created):
            try:
                self.keycloak.admin("DELETE", f"realms/{name}", timeout=120)
            except KeycloakAdminError as error:
                if error.status != 404:
                    raise
        self.created.clear()


def realm_users(realm: dict[str, Any]) -> Iterator[str]:
    """The user names of ``realm`` that can log in (not service accounts)."""
    for entry in realm["users"]:
        if "serviceAccountClientId" not in entry:
            yield entry["username"]


def service_account(realm: dict[str, Any], client_id: str = DEMO_CLIENT_ID) -> dict[str, Any]:
    """The service-account user of ``client_id`` (its ``clientRoles`` are the client's rights)."""
    return find(realm["users"], "serviceAccountClientId", client_id)
