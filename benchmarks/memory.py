"""5. Memory: the hub's resident set size as 10,000 users log in through Keycloak (each with a
launch context in its auth state, the group roles cached), against a plain JupyterHub (dummy
authenticator, KubeSpawner) as the same users log in. Each login ends as a browser's does, with the
hub's own redirect after the login (``/hub/`` → home) followed once, so both hubs answer one
authenticated request per user. RSS is read from /proc after 1, 1,000 and all logins."""

from __future__ import annotations

import asyncio
import os
import re

import httpx

from .stack import CROWD, Stack, Target, common_spawner_config, log_in, rss_kib, table

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
            landing = await http.get(f"{hub.url}/hub/")  # as after the OAuth login
            if landing.status_code != 302:
                raise RuntimeError(f"/hub/ after the login of {name}: {landing.status_code}")

    await asyncio.gather(*(one(name) for name in names))


CHECKPOINT = 1000


async def _measure(hub, login, names: list[str]) -> dict[str, float]:
    await login(hub, names[:1])  # everything loaded once
    await asyncio.sleep(1)
    before = rss_kib(hub.process.pid)
    await login(hub, names[1:CHECKPOINT])
    await asyncio.sleep(1)
    middle = rss_kib(hub.process.pid)
    await login(hub, names[CHECKPOINT:])
    await asyncio.sleep(1)
    after = rss_kib(hub.process.pid)
    database = (hub.directory / "jupyterhub.sqlite").stat().st_size
    return {"before": before, "middle": middle, "after": after, "database": database}


async def run(stack: Stack, users: int = USERS) -> tuple[str, str, list[Target]]:
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

    def per_user(result: dict[str, float], start: str, end: str, count: int) -> float:
        return (result[end] - result[start]) / count

    def row(label: str, result: dict[str, float]) -> list[object]:
        return [
            label,
            f"{result['before'] / 1024:.0f} MiB",
            f"{result['middle'] / 1024:.0f} MiB",
            f"{result['after'] / 1024:.0f} MiB",
            f"{per_user(result, 'before', 'middle', CHECKPOINT - 1):.1f} KiB",
            f"{per_user(result, 'middle', 'after', users - CHECKPOINT):.1f} KiB",
            f"{per_user(result, 'before', 'after', users - 1):.1f} KiB",
            f"{result['database'] / 1024**2:.1f} MiB",
        ]

    ours = per_user(primehub, "before", "after", users - 1)
    plain_per_user = per_user(baseline, "before", "after", users - 1)
    ratio = ours / plain_per_user
    report = "\n".join(
        [
            table(
                [
                    "hub",
                    "RSS after 1 login",
                    f"after {CHECKPOINT:,}",
                    f"after {users:,}",
                    f"per user to {CHECKPOINT:,}",
                    "per user beyond",
                    "per user, all",
                    "database",
                ],
                [
                    row("PrimeHubAuthenticator + PrimeHubSpawner", primehub),
                    row("dummy + KubeSpawner", baseline),
                ],
            ),
            "",
            f"Per logged-in user the PrimeHub hub holds {ours:.1f} KiB, plain JupyterHub "
            f"{plain_per_user:.1f} KiB: {ratio:.2f} × (target ≤ 2 ×). What PrimeHub adds per user is "
            "mostly the encrypted auth state (tokens and launch context) that JupyterHub keeps with "
            "the user's database row, and JupyterHub's scope caches for the requests of a login "
            "that ends on the spawn page; the spawn page's request handler, which JupyterHub keeps "
            "in spawner.handler, is held only weakly; the launch contexts are not cached in the "
            "hub's memory, and the group roles are cached per group.",
        ]
    )
    key = (
        f"memory: hub RSS {primehub['after'] / 1024:.0f} MiB with {users:,} users logged in "
        f"({ours:.1f} KiB per user; plain JupyterHub {baseline['after'] / 1024:.0f} MiB, "
        f"{plain_per_user:.1f} KiB per user): {ratio:.2f} ×"
    )
    targets = [
        Target(
            f"hub memory per logged-in user, {users:,} users",
            "≤ 2 × plain JupyterHub's",
            f"{ours:.1f} KiB vs {plain_per_user:.1f} KiB: {ratio:.2f} ×",
            ratio <= 2,
        )
    ]
    return report, key, targets
