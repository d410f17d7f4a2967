"""The hub stack of the spawner tests: test ground + identity server + CRDs + a real JupyterHub with
PrimeHubAuthenticator and PrimeHubSpawner, and helpers to drive it over HTTP."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection

from devstack.ground import DATA_DIR
from devstack.hub import HubProcess, oauth_login
from devstack.manifests import apply_file, install_crds

RESOURCES = DATA_DIR / "resources.yaml"
DEMO_REALM = DATA_DIR / "realm.yaml"


DEMO_CLIENT_SECRET = "demo-jupyterhub-secret"


def keycloak_admin(server) -> KeycloakAdmin:
    """python-keycloak as the demo client's service account, on identity server ``server``."""
    return KeycloakAdmin(
        connection=KeycloakOpenIDConnection(
            server_url=server.url,
            realm_name=server.realm,
            client_id="jupyterhub",
            client_secret_key=DEMO_CLIENT_SECRET,
        )
    )


def realm_with(tmp_path: Path, **group_attributes: dict[str, str]) -> Path:
    realm = yaml.safe_load(DEMO_REALM.read_text())
    for group in realm["groups"]:
        group.setdefault("attributes", {}).update(
            group_attributes.get(group["name"].replace("-", "_"), {})
        )
    path = tmp_path / "realm.yaml"
    path.write_text(yaml.safe_dump(realm))
    return path


@pytest.fixture
async def hub_factory(test_ground, kube, namespace, identity_server_factory, tmp_path):
    await install_crds(kube)
    await apply_file(kube, RESOURCES, namespace)
    hubs = []

    def start(
        realm_file: Path = DEMO_REALM, cmd: list[str] | None = None, **authenticator: Any
    ) -> HubProcess:
        """A hub on ``namespace``; ``authenticator``: PrimeHubAuthenticator settings."""
        server = identity_server_factory(realm_file)
        hub = HubProcess(
            tmp_path / f"hub{len(hubs)}", environment={"KUBECONFIG": str(test_ground.kubeconfig)}
        )
        hub.identity = server
        hub.config = "\n".join(
            [
                primehub_config(hub, server, namespace, cmd),
                *(
                    f"c.PrimeHubAuthenticator.{key} = {value!r}"
                    for key, value in authenticator.items()
                ),
            ]
        )
        hubs.append(hub)
        return hub.start()

    yield start
    for hub in hubs:
        hub.stop()


def primehub_config(hub: HubProcess, server, namespace: str, cmd: list[str] | None = None) -> str:
    """The plugin's hub on the test ground: identity server ``server``, pods in ``namespace``."""
    return "\n".join(
        [
            'c.JupyterHub.authenticator_class = "primehub"',
            'c.JupyterHub.spawner_class = "primehub"',
            "c.JupyterHub.allow_named_servers = True",
            "c.JupyterHub.named_server_limit_per_user = 50",
            'c.JupyterHub.default_url = "/hub/home"',
            f"c.PrimeHubAuthenticator.keycloak_url = {server.url!r}",
            f"c.PrimeHubAuthenticator.realm = {server.realm!r}",
            f"c.PrimeHubAuthenticator.client_secret = {DEMO_CLIENT_SECRET!r}",
            f'c.PrimeHubAuthenticator.oauth_callback_url = "{hub.url}/hub/oauth_callback"',
            f"c.KubeSpawner.namespace = {namespace!r}",
            f"c.KubeSpawner.cmd = {cmd or [sys.executable, '-m', 'http.server', '8888']!r}",
            "c.KubeSpawner.start_timeout = 60",
            "c.KubeSpawner.http_timeout = 30",
            "import primehub_spawner",
            "c.JupyterHub.template_paths = [str(primehub_spawner.TEMPLATES_DIR)]",
        ]
    )


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
    """An HTTP client logged in as ``username`` (hub and identity-server cookies)."""
    async with httpx.AsyncClient() as http:
        await oauth_login(http, hub.url, username)
        yield http


def xsrf(page: str) -> str:
    return re.search(r'xsrf_token: "([^"]+)"', page).group(1)  # JupyterHub 6 puts it in jhdata


async def progress_messages(
    hub: HubProcess, user: str, server: str, until: str, timeout: float = 30
) -> list[str]:
    """Read the spawn's progress event stream (what the spawn-pending page shows) until ``until``."""
    messages: list[str] = []
    async with (
        httpx.AsyncClient(timeout=timeout) as http,
        http.stream(
            "GET",
            f"{hub.url}/hub/api/users/{user}/servers/{server}/progress",
            headers={"Authorization": f"token {hub.api_token}"},
        ) as stream,
    ):
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                messages.append(json.loads(line[5:]).get("message", ""))
                if until in messages[-1]:
                    break
    return messages
