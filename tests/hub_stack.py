"""The hub stack of the spawner tests: test ground + a realm on real Keycloak + CRDs + a real
JupyterHub with PrimeHubAuthenticator and PrimeHubSpawner, and helpers to drive it over HTTP."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from traitlets.config.loader import PyFileConfigLoader

from devstack.ground import DATA_DIR
from devstack.hub import HubProcess, oauth_login
from devstack.keycloak import ADMIN_PASSWORD, ADMIN_USER
from devstack.manifests import apply_file, install_crds
from devstack.realms import Realm, RealmFactory, add_user, group
from devstack.toxiproxy import Proxy
from primehub_spawner.keycloak import KeycloakDirectory

RESOURCES = DATA_DIR / "resources.yaml"
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "jupyterhub_config.py"


def keycloak_admin(realm: Realm) -> KeycloakAdmin:
    """python-keycloak in ``realm`` as Keycloak's bootstrap admin (``master``), as a PrimeHub
    administrator changes groups, roles and users."""
    return KeycloakAdmin(
        connection=KeycloakOpenIDConnection(
            server_url=realm.url,
            realm_name=realm.realm,
            user_realm_name="master",
            client_id="admin-cli",
            username=ADMIN_USER,
            password=ADMIN_PASSWORD,
        )
    )


def directory_for(realm: Realm, **options: Any) -> KeycloakDirectory:
    """The plugin's admin-API reader on ``realm``, as the hub's authenticator makes it."""
    options.setdefault("client_secret", realm.client_secret)
    return KeycloakDirectory(realm.url, realm.realm, realm.client_id, **options)


def realm_with(realm_factory: RealmFactory, **group_attributes: dict[str, str]) -> dict[str, Any]:
    """A demo-realm variant whose groups (``ml_team`` for ml-team) have these attributes too."""
    realm = realm_factory.variant()
    for key, attributes in group_attributes.items():
        entry = group(realm, key.replace("_", "-"))
        entry["attributes"].update({name: [value] for name, value in attributes.items()})
    return realm


SHARED_VOLUME = {
    "enabled-shared-volume": ["true"],
    "shared-volume-capacity": ["1"],
    "launch-group-only": ["true"],
}


def realm_with_twins(realm_factory: RealmFactory) -> dict[str, Any]:
    """A demo-realm variant with groups whose names PrimeHub turns into the demo's ``ml-team``,
    each with a shared volume: ``ML_Team`` (erin) and the subgroup ``/x/ml-team`` (frank, with a
    group CPU quota of 1)."""
    realm = realm_factory.variant()
    realm["groups"] += [
        {"name": "ML_Team", "path": "/ML_Team", "attributes": dict(SHARED_VOLUME)},
        {
            "name": "x",
            "path": "/x",
            "subGroups": [
                {
                    "name": "ml-team",
                    "path": "/x/ml-team",
                    "attributes": {**SHARED_VOLUME, "project-quota-cpu": ["1"]},
                }
            ],
        },
    ]
    add_user(realm, "erin", ["/ML_Team"])
    add_user(realm, "frank", ["/x/ml-team"])
    return realm


@pytest.fixture
async def hub_factory(test_ground, kube, namespace, realm_factory, tmp_path):
    await install_crds(kube)
    await apply_file(kube, RESOURCES, namespace)
    hubs = []

    def start(
        realm: dict[str, Any] | None = None,
        cmd: list[str] | None = None,
        proxy: Proxy | None = None,
        extra_config: str = "",
        **authenticator: Any,
    ) -> HubProcess:
        """A hub on ``namespace`` and a new realm (``realm``, default the demo realm), reached
        through ``proxy`` for the hub's own calls if given; ``authenticator``:
        PrimeHubAuthenticator settings; ``extra_config``: more lines of hub configuration.
        ``hub.realm`` is the realm."""
        created = realm_factory.create(realm)
        hub = HubProcess(
            tmp_path / f"hub{len(hubs)}", environment={"KUBECONFIG": str(test_ground.kubeconfig)}
        )
        hub.realm = created
        hub.config = "\n".join(
            [
                primehub_config(hub, created.via(proxy.url) if proxy else created, namespace, cmd),
                f"c.PrimeHubAuthenticator.keycloak_public_url = {created.url!r}",
                *(
                    f"c.PrimeHubAuthenticator.{key} = {value!r}"
                    for key, value in authenticator.items()
                ),
                extra_config,
            ]
        )
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:
        hub.stop()


def shipped_config() -> Any:
    """The project's jupyterhub_config.py as JupyterHub loads it (without deployment variables)."""
    return PyFileConfigLoader(SHIPPED_CONFIG.name, path=str(SHIPPED_CONFIG.parent)).load_config()


def shipped_claim_template() -> list[str]:
    """The home claims' names as the shipped configuration sets them, if it does."""
    spawner = shipped_config().KubeSpawner
    if "pvc_name_template" not in spawner:
        return []
    return [f"c.KubeSpawner.pvc_name_template = {spawner.pvc_name_template!r}"]


def primehub_config(
    hub: HubProcess, realm: Realm, namespace: str, cmd: list[str] | None = None
) -> str:
    """The plugin's hub on the test ground: Keycloak realm ``realm``, pods in ``namespace``."""
    return "\n".join(
        [
            'c.JupyterHub.authenticator_class = "primehub"',
            'c.JupyterHub.spawner_class = "primehub"',
            "c.JupyterHub.allow_named_servers = True",
            "c.JupyterHub.named_server_limit_per_user = 50",
            'c.JupyterHub.default_url = "/hub/home"',
            f"c.PrimeHubAuthenticator.keycloak_url = {realm.url!r}",
            f"c.PrimeHubAuthenticator.realm = {realm.realm!r}",
            f"c.PrimeHubAuthenticator.client_secret = {realm.client_secret!r}",
            f'c.PrimeHubAuthenticator.oauth_callback_url = "{hub.url}/hub/oauth_callback"',
            f"c.KubeSpawner.namespace = {namespace!r}",
            f"c.KubeSpawner.cmd = {cmd or [sys.executable, '-m', 'http.server', '8888']!r}",
            *shipped_claim_template(),
            "c.KubeSpawner.start_timeout = 60",
            "c.KubeSpawner.http_timeout = 30",
            "import primehub_spawner",
            "c.JupyterHub.template_paths = [str(primehub_spawner.TEMPLATES_DIR)]",
        ]
    )


def mock_spawner_hub(
    realm: Realm, directory, public: Realm | None = None, **settings
) -> HubProcess:
    """A hub with MockSpawner on ``realm``; ``public``: the realm as browsers reach it, when the
    hub's own calls go through a proxy."""
    hub = HubProcess(directory)
    lines = [
        'c.JupyterHub.authenticator_class = "primehub"',
        'c.JupyterHub.spawner_class = "jupyterhub.tests.mocking.MockSpawner"',
        'c.JupyterHub.default_url = "/hub/home"',
        f"c.PrimeHubAuthenticator.keycloak_url = {realm.url!r}",
        f"c.PrimeHubAuthenticator.keycloak_public_url = {(public or realm).url!r}",
        f"c.PrimeHubAuthenticator.realm = {realm.realm!r}",
        f"c.PrimeHubAuthenticator.client_secret = {realm.client_secret!r}",
        f'c.PrimeHubAuthenticator.oauth_callback_url = "{hub.url}/hub/oauth_callback"',
        *(f"c.PrimeHubAuthenticator.{key} = {value!r}" for key, value in settings.items()),
    ]
    hub.config = "\n".join(lines)
    return hub.start()


async def log_in(hub: HubProcess, *usernames: str) -> None:
    """Log each user in once, so the hub knows them (and holds their launch context)."""
    for username in usernames:
        async with browser_session(hub, username):
            pass


async def pods(kube, namespace) -> list[dict]:
    return (await kube.get(f"/api/v1/namespaces/{namespace}/pods"))["items"]


def spawn_counts(hub: HubProcess) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in hub.metrics().splitlines():
        match = re.match(r"jupyterhub_server_spawn_duration_seconds_count\{(.*)\} (\S+)", line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            key = f"{labels['status']}/{labels['reason']}"
            counts[key] = counts.get(key, 0) + float(match.group(2))
    return counts


@contextlib.asynccontextmanager
async def browser_session(hub: HubProcess, username: str):
    """An HTTP client logged in as ``username`` (hub and Keycloak cookies)."""
    async with httpx.AsyncClient() as http:
        await oauth_login(http, hub.url, username)
        yield http


def xsrf(page: str) -> str:
    return re.search(r'xsrf_token: "([^"]+)"', page).group(1)  # JupyterHub 6 puts it in jhdata


async def progress_events(hub: HubProcess, user: str, server: str, timeout: float = 30):
    """The spawn's progress events (what the spawn-pending page shows), as they come."""
    async with (
        httpx.AsyncClient(timeout=timeout) as http,
        http.stream(
            "GET",
            f"{hub.url}/hub/api/users/{user}/"
            + (f"servers/{server}" if server else "server")
            + "/progress",
            headers={"Authorization": f"token {hub.api_token}"},
        ) as stream,
    ):
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                yield json.loads(line[5:])


async def progress_messages(
    hub: HubProcess, user: str, server: str, until: str, timeout: float = 30
) -> list[str]:
    """The spawn's progress messages until one contains ``until``."""
    messages: list[str] = []
    async for event in progress_events(hub, user, server, timeout):
        messages.append(event.get("message", ""))
        if until in messages[-1]:
            break
    return messages
