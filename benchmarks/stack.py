"""What the benchmarks share: one test ground with roomy nodes, real Keycloak with the demo realm
plus generated users, namespaces with the demo's catalog and claims, and hubs to measure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from devstack.demo_hub import create, prepare_namespace
from devstack.ground import DATA_DIR, TestGround
from devstack.hub import HubProcess, oauth_login
from devstack.keycloak import KeycloakProcess
from devstack.kubeapi import Credentials, KubeAPI
from devstack.manifests import install_crds
from devstack.realms import Realm, add_user, demo_realm

CROWD = 10_000  # generated users crowd0000…crowd9999, all in group "crowd"
SERVER_CMD = [sys.executable, "-m", "http.server", "8888"]  # the same small server for every hub
BENCH_TYPE = {
    "apiVersion": "primehub.io/v1alpha1",
    "kind": "InstanceType",
    "metadata": {"name": "crowd-1"},
    "spec": {
        "displayName": "Crowd",
        "limits": {"cpu": 1, "memory": "256M"},
        "requests": {"cpu": 0.01, "memory": "32M"},
    },
}
NODES = {
    "nodes": [
        {
            "name": "big-node",
            "labels": {"component": "singleuser-server"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
        },
        {
            "name": "gpu-node",
            "labels": {"component": "singleuser-server"},
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "nvidia.com/gpu": "2"},
        },
    ]
}


@dataclass(frozen=True)
class Target:
    """One of issue 20's targets as a benchmark measured it; ``met`` None: reported, no bound."""

    measure: str
    target: str
    figure: str
    met: bool | None


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table (readable in a terminal too)."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(
        next(
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    )
    release = (
        dict(
            line.split("=", 1)
            for line in Path("/etc/os-release").read_text().splitlines()
            if "=" in line
        )
        .get("PRETTY_NAME", platform.platform())
        .strip('"')
    )
    return f"{os.cpu_count()} × {cpu}, {memory_kb / 1024**2:.0f} GiB, {release}, Python {platform.python_version()}"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def bench_realm() -> dict:
    """The demo realm plus the crowd: users crowd0000… in group "crowd" (project CPU quota 90).

    Passwords are hashed with one round of PBKDF2 (the realm's password policy), so importing and
    logging in a thousand users measures the hub, not Keycloak's Argon2."""
    realm = demo_realm(hub_url="http://127.0.0.1:*")
    realm["passwordPolicy"] = "hashAlgorithm(pbkdf2-sha256) and hashIterations(1)"
    realm["roles"]["realm"].append({"name": "it:crowd-1"})
    realm["groups"].append(
        {
            "name": "crowd",
            "path": "/crowd",
            "attributes": {"displayName": ["Crowd"], "project-quota-cpu": ["90"]},
            "realmRoles": ["it:crowd-1"],
        }
    )
    for i in range(CROWD):
        add_user(realm, f"crowd{i:04}", ["/crowd"])
    return realm


@dataclass
class Stack:
    """The shared parts; hubs are started per benchmark."""

    directory: Path
    ground: TestGround = field(init=False)
    keycloak: KeycloakProcess = field(init=False)
    realm: Realm = field(init=False)
    hubs: list[HubProcess] = field(default_factory=list)

    def start(self) -> Stack:
        nodes = self.directory / "nodes.yaml"
        nodes.write_text(
            yaml.safe_dump({**yaml.safe_load((DATA_DIR / "nodes.yaml").read_text()), **NODES})
        )
        self.ground = TestGround(self.directory / "ground", nodes_file=nodes).start()
        realm = bench_realm()
        self.keycloak = KeycloakProcess(
            self.directory / "keycloak", self.directory / "keycloak.log", realms=[realm]
        ).start()
        self.realm = Realm(self.keycloak.url, realm["realm"])
        return self

    def stop(self) -> None:
        for hub in self.hubs:
            hub.stop()
        self.keycloak.stop()
        self.ground.stop()

    def kube(self) -> KubeAPI:
        return KubeAPI(Credentials.from_kubeconfig(self.ground.kubeconfig))

    async def namespace(self, name: str) -> str:
        """A namespace with the CRDs' objects of the demo (plus crowd-1) and the demo's claims."""
        async with self.kube() as api:
            await install_crds(api)
            await prepare_namespace(api, name)
            await create(
                api, f"/apis/primehub.io/v1alpha1/namespaces/{name}/instancetypes", BENCH_TYPE
            )
        return name

    def hub(self, name: str) -> HubProcess:
        """A hub on the test ground (not started: set its ``config`` first)."""
        hub = HubProcess(
            self.directory / name, environment={"KUBECONFIG": str(self.ground.kubeconfig)}
        )
        self.hubs.append(hub)
        return hub

    def stop_hub(self, hub: HubProcess) -> None:
        hub.stop()
        self.hubs.remove(hub)

    def primehub_config(self, hub: HubProcess, namespace: str, extra: str = "") -> str:
        return "\n".join(
            [
                "import primehub_spawner",
                'c.JupyterHub.authenticator_class = "primehub"',
                'c.JupyterHub.spawner_class = "primehub"',
                "c.JupyterHub.template_paths = [str(primehub_spawner.TEMPLATES_DIR)]",
                f"c.PrimeHubAuthenticator.keycloak_url = {self.realm.url!r}",
                f"c.PrimeHubAuthenticator.realm = {self.realm.realm!r}",
                f"c.PrimeHubAuthenticator.client_secret = {self.realm.client_secret!r}",
                f'c.PrimeHubAuthenticator.oauth_callback_url = "{hub.url}/hub/oauth_callback"',
                *common_spawner_config(namespace),
                extra,
            ]
        )


def common_spawner_config(namespace: str) -> list[str]:
    return [
        f"c.KubeSpawner.namespace = {namespace!r}",
        f"c.KubeSpawner.cmd = {SERVER_CMD!r}",
        'c.KubeSpawner.pvc_name_template = "claim-{user_server}"',
        "c.KubeSpawner.start_timeout = 300",
        "c.KubeSpawner.http_timeout = 60",
        "c.JupyterHub.log_level = 'WARN'",
        "c.JupyterHub.concurrent_spawn_limit = 200",
    ]


@contextlib.asynccontextmanager
async def stack() -> AsyncIterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="primehub-bench-") as directory:
        shared = await asyncio.to_thread(Stack(Path(directory)).start)
        try:
            yield shared
        finally:
            await asyncio.to_thread(shared.stop)


async def log_in(hub: HubProcess, usernames: Iterable[str], concurrency: int = 8) -> None:
    """OAuth logins through Keycloak's login form, a few at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(username: str) -> None:
        async with gate, httpx.AsyncClient(timeout=120) as http:
            await oauth_login(http, hub.url, username)

    await asyncio.gather(*(one(name) for name in usernames))


async def api(
    http: httpx.AsyncClient, hub: HubProcess, method: str, path: str, body: object = None
) -> httpx.Response:
    return await http.request(
        method,
        f"{hub.url}/hub/api/{path}",
        headers={"Authorization": f"token {hub.api_token}"},
        content=None if body is None else json.dumps(body),
    )


async def wait_ready(
    http: httpx.AsyncClient, hub: HubProcess, user: str, server: str = "", timeout: float = 300
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        model = (await api(http, hub, "GET", f"users/{user}")).json()
        entry = model.get("servers", {}).get(server)
        if entry and entry.get("ready"):
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{user}'s server was not ready after {timeout}s")


async def stop_server(
    http: httpx.AsyncClient, hub: HubProcess, user: str, timeout: float = 120
) -> None:
    await api(http, hub, "DELETE", f"users/{user}/server")
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        model = (await api(http, hub, "GET", f"users/{user}")).json()
        if "" not in model.get("servers", {}):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{user}'s server did not stop")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
