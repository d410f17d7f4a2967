"""Toxiproxy (built by ``scripts/install-toxiproxy.sh``) between the hub and Keycloak: outages,
latency, hangs and cut connections on a real TCP path, controlled through Toxiproxy's HTTP API."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .paths import cache_dir
from .processes import ManagedProcess, free_port


def toxiproxy_bin() -> Path:
    path = cache_dir() / "bin" / "toxiproxy-server"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `make setup` (scripts/install-toxiproxy.sh)"
        )
    return path


@dataclass
class ToxiproxyProcess:
    """``toxiproxy-server`` with its API on a loopback port."""

    log_path: Path
    port: int = 0
    process: ManagedProcess | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ToxiproxyProcess:
        self.port = self.port or free_port()
        argv = [toxiproxy_bin(), "-host", "127.0.0.1", "-port", str(self.port)]
        self.process = ManagedProcess("toxiproxy", argv, self.log_path).start()
        self.process.wait_until(self._answering, timeout=30, what="GET /version")
        return self

    def _answering(self) -> bool:
        try:
            return httpx.get(f"{self.api}/version", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.api}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else None

    def proxy(self, upstream: str) -> Proxy:
        """A new proxy on a loopback port of the kernel's choice to ``upstream`` (``host:port``)."""
        name = f"p-{secrets.token_hex(4)}"
        created = self.call(
            "POST",
            "/proxies",
            {"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": True},
        )
        return Proxy(self, name, int(created["listen"].rsplit(":", 1)[1]))


@dataclass
class Proxy:
    """One proxy: ``url`` is where clients connect instead of the upstream."""

    server: ToxiproxyProcess
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def disable(self) -> None:
        """Close the listener and every connection: the upstream is down, as clients see it."""
        self.server.call("POST", f"/proxies/{self.name}", {"enabled": False})

    def add_toxic(self, kind: str, stream: str = "downstream", **attributes: Any) -> str:
        """Add a toxic (``latency``, ``timeout``, ``reset_peer``, …); returns its name."""
        name = f"{kind}-{stream}-{secrets.token_hex(2)}"
        self.server.call(
            "POST",
            f"/proxies/{self.name}/toxics",
            {
                "name": name,
                "type": kind,
                "stream": stream,
                "toxicity": 1.0,
                "attributes": attributes,
            },
        )
        return name

    def latency(self, seconds: float) -> str:
        """Delay every answer by ``seconds``."""
        return self.add_toxic("latency", latency=int(seconds * 1000))

    def remove_toxic(self, name: str) -> None:
        """Remove the toxic ``name``; data a latency toxic holds goes through at once."""
        self.server.call("DELETE", f"/proxies/{self.name}/toxics/{name}")

    def replace(self) -> None:
        """The same proxy made anew, enabled and without toxics: every connection cut, then new
        ones served at once. (Removing a latency toxic waits for the data it holds, which a
        streaming connection never stops sending.)"""
        proxy = self.server.call("GET", f"/proxies/{self.name}")
        self.delete()
        self.server.call(
            "POST",
            "/proxies",
            {
                "name": self.name,
                "listen": proxy["listen"],
                "upstream": proxy["upstream"],
                "enabled": True,
            },
        )

    def delete(self) -> None:
        self.server.call("DELETE", f"/proxies/{self.name}")
