"""2. External calls: Keycloak (admin API and OIDC) calls per login, per spawn-page view and per spawn,
counted from Keycloak's own metrics; Kubernetes calls of the hub per spawn after warm-up, counted in the
API server's audit log. PrimeHub paid a userinfo call and a GraphQL query (fanning out to Keycloak)
on every request, with the spawn page polling every 6.4 s."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from devstack.hub import HubProcess, oauth_login
from devstack.keycloak import RequestCounter

from .stack import Stack, Target, api, table, wait_ready

HUB_CLIENT = (
    "OpenAPI-Generator"  # kubernetes_asyncio's user agent: the hub's calls, not the kubelet's
)


def _kubernetes_calls(events: list[dict[str, Any]]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for event in events:
        if HUB_CLIENT not in event.get("userAgent", ""):
            continue
        resource = event.get("objectRef", {}).get("resource", "?")
        calls[f"{event['verb']} {resource}"] += 1
    return calls


class Counters:
    """Keycloak requests (from Keycloak's own metrics) and the hub's Kubernetes calls between two
    points in time."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.mark = 0
        self.keycloak: RequestCounter | None = None

    async def start(self) -> None:
        self.keycloak = await asyncio.to_thread(RequestCounter, self.stack.keycloak)
        self.mark = len(self.stack.ground.cluster.audit_events())

    async def read(self) -> tuple[int, int, Counter[str]]:
        await asyncio.sleep(0.5)  # late watch events and audit lines
        assert self.keycloak is not None
        since = await asyncio.to_thread(self.keycloak.since)
        admin = sum(n for (_, uri), n in since.items() if uri.startswith("/admin/"))
        oidc = sum(n for (_, uri), n in since.items() if uri.startswith("/realms/"))
        events = self.stack.ground.cluster.audit_events()[self.mark :]
        return admin, oidc, _kubernetes_calls(events)


async def _hub(stack: Stack, name: str, extra: str = "") -> HubProcess:
    namespace = await stack.namespace(f"bench-{name}")
    hub = stack.hub(f"hub-{name}")
    hub.config = stack.primehub_config(hub, namespace, extra)
    await asyncio.to_thread(hub.start)
    return hub


def _row(what: str, admin: int, oidc: int, kube: Counter[str], target: str) -> list[object]:
    lists = sum(n for call, n in kube.items() if call.startswith(("list ", "watch ")))
    others = ", ".join(f"{n} {call}" for call, n in sorted(kube.items())) or "none"
    return [what, admin, oidc, lists, others, target]


async def run(stack: Stack) -> tuple[str, str, list[Target]]:
    counters = Counters(stack)
    rows: list[list[object]] = []
    figures: dict[str, int] = {}
    for label, extra in (
        ("default", ""),
        ("launch_context_max_age=600", "c.PrimeHubAuthenticator.launch_context_max_age = 600"),
    ):
        hub = await _hub(stack, f"calls-{len(figures)}", extra)
        first, second = (f"crowd{len(figures) * 2 + i:04}" for i in range(2))
        async with (
            httpx.AsyncClient(timeout=120) as early,
            httpx.AsyncClient(timeout=120) as browser,
            httpx.AsyncClient(timeout=120) as http,
        ):
            if label == "default":
                await counters.start()
                await oauth_login(early, hub.url, first)
                admin, oidc, kube = await counters.read()
                rows.append(_row("login, group roles not cached yet", admin, oidc, kube, "—"))
            else:
                await oauth_login(early, hub.url, first)
            await early.get(f"{hub.url}/hub/spawn")  # warm-up: catalog and pod reflectors
            await counters.start()
            await oauth_login(browser, hub.url, second)
            admin, oidc, kube = await counters.read()
            figures[f"login {label}"] = admin
            rows.append(_row(f"login ({label})", admin, oidc, kube, "≤ 3 admin"))
            await counters.start()
            page = await browser.get(f"{hub.url}/hub/spawn")
            assert page.status_code == 200 and "primehub-group" in page.text, page.text[:300]
            admin, oidc, kube = await counters.read()
            figures[f"view {label}"] = admin
            figures[f"view all {label}"] = admin + oidc
            rows.append(_row(f"spawn-page view ({label})", admin, oidc, kube, "0 admin"))
            for user in (first, second):  # the first spawn also warms the spawner's reflectors
                await counters.start()
                response = await api(
                    http, hub, "POST", f"users/{user}/server", {"user_options": {}}
                )
                assert response.status_code in (201, 202), response.text
                await wait_ready(http, hub, user)
                admin, oidc, kube = await counters.read()
            figures[f"spawn {label}"] = admin
            figures[f"spawn all {label}"] = admin + oidc
            figures[f"lists {label}"] = sum(
                n for call, n in kube.items() if call.startswith(("list ", "watch "))
            )
            rows.append(
                _row(f"spawn, fresh auth_state ({label})", admin, oidc, kube, "0 admin, 0 list")
            )
        await asyncio.to_thread(stack.stop_hub, hub)

    report = "\n".join(
        [
            table(
                [
                    "event",
                    "Keycloak admin calls",
                    "other Keycloak calls",
                    "Kubernetes list/watch",
                    "hub's Kubernetes calls",
                    "target",
                ],
                rows,
            ),
            "",
            '"Other Keycloak calls" are OIDC: the login page, token, userinfo and the service '
            "account's token. The default refresh at every spawn asks for userinfo, whose groups and "
            "roles claims show a group or role removed in Keycloak at the next spawn; the admin API "
            "is read only when they changed or the stored attributes are older than "
            "`attribute_refresh_interval`. With `launch_context_max_age` a context loaded that "
            "recently is used as is.",
        ]
    )
    key = (
        f"external calls: Keycloak admin calls per login {figures['login default']}, per spawn-page view "
        f"{figures['view default']}, per spawn {figures['spawn launch_context_max_age=600']} with a fresh "
        f"context ({figures['spawn default']} with the default refresh at every spawn); Kubernetes "
        f"list/watch per spawn after warm-up {figures['lists default']}"
    )
    targets = [
        Target(
            "Keycloak requests per spawn, default settings (token, userinfo, admin)",
            "≤ 2",
            str(figures["spawn all default"]),
            figures["spawn all default"] <= 2,
        ),
        Target(
            "Keycloak requests per spawn-page view",
            "0",
            str(figures["view all default"]),
            figures["view all default"] == 0,
        ),
    ]
    return report, key, targets
