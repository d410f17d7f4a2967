"""5. Memory: the hub's resident set size after 1,000 users logged in through Keycloak (each with a
launch context in its auth state, the group roles cached), against a plain JupyterHub (dummy
authenticator, KubeSpawner) after the same 1,000 users logged in. RSS is read from /proc."""

from __future__ import annotations

import asyncio
import os
import re

import httpx

from .stack import CROWD, Stack, common_spawner_config, log_in, rss_kib, table

USERS = int(os.environ.get("BENCH_MEMORY_USERS", str(CROWD)))


async def _dummy_logins(hub, names: list[str], concurrency: int = 8) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> None:
        async with gate, httpx.AsyncClient(timeout=60) as http:
            page = await http.get(f"{hub.url}/hub/login")
            token = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
            data = {
                "username": name,
                "password": name,
                **({"_xsrf": token.group(1)} if token else {}),
            }
            answer = await http.post(f"{hub.url}/hub/login", data=data)
            if answer.status_code not in (200, 302):
                raise RuntimeError(f"dummy login of {name}: {answer.status_code}")

    await asyncio.gather(*(one(name) for name in names))


async def _measure(hub, login, names: list[str]) -> dict[str, float]:
    await login(hub, names[:1])  # everything loaded once
    await asyncio.sleep(1)
    before = rss_kib(hub.process.pid)
    await login(hub, names[1:])
    await asyncio.sleep(1)
    after = rss_kib(hub.process.pid)
    database = (hub.directory / "jupyterhub.sqlite").stat().st_size
    return {"before": before, "after": after, "database": database}


async def run(stack: Stack, users: int = USERS) -> tuple[str, str]:
    names = [f"crowd{i:04}" for i in range(users)]
    namespace = await stack.namespace("bench-memory")
    hub = stack.hub("hub-memory")
    hub.config = stack.primehub_config(hub, namespace)
    await asyncio.to_thread(hub.start)
    primehub = await _measure(hub, log_in, names)
    await asyncio.to_thread(stack.stop_hub, hub)

    plain = stack.hub("hub-memory-plain")
    plain.config = "\n".join(
        [
            'c.JupyterHub.authenticator_class = "dummy"',
            'c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"',
            *common_spawner_config(namespace),
        ]
    )
    await asyncio.to_thread(plain.start)
    baseline = await _measure(plain, _dummy_logins, names)
    await asyncio.to_thread(stack.stop_hub, plain)

    def row(label: str, result: dict[str, float]) -> list[object]:
        grown = result["after"] - result["before"]
        return [
            label,
            f"{result['before'] / 1024:.0f} MiB",
            f"{result['after'] / 1024:.0f} MiB",
            f"{grown / 1024:+.0f} MiB",
            f"{grown / (users - 1):.1f} KiB",
            f"{result['database'] / 1024**2:.1f} MiB",
        ]

    extra = (primehub["after"] - baseline["after"]) / 1024
    report = "\n".join(
        [
            table(
                ["hub", "RSS after 1 login", f"after {users}", "growth", "per user", "database"],
                [
                    row("PrimeHubAuthenticator + PrimeHubSpawner", primehub),
                    row("dummy + KubeSpawner", baseline),
                ],
            ),
            "",
            f"With {users} users logged in the PrimeHub hub holds {extra:+.0f} MiB more than plain "
            "JupyterHub. Launch contexts live in the encrypted auth state in the database, not in "
            "the hub's memory; the memory held per group is the cached role set.",
        ]
    )
    key = (
        f"memory: hub RSS {primehub['after'] / 1024:.0f} MiB with {users} users logged in "
        f"({(primehub['after'] - primehub['before']) / (users - 1):.1f} KiB per user; plain JupyterHub "
        f"{baseline['after'] / 1024:.0f} MiB, {(baseline['after'] - baseline['before']) / (users - 1):.1f} KiB per user)"
    )
    return report, key
