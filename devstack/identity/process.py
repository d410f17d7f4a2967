"""Running the identity server as its own process: for the pytest fixtures and the demo stack."""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..processes import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class IdentityServerProcess:
    """``python -m devstack.identity`` on a loopback port; ``url`` is python-keycloak's server_url."""

    realm_file: Path
    log_path: Path
    port: int = 0
    lifespans: dict[str, int] = field(default_factory=dict)
    url: str = ""
    realm: str = ""
    process: ManagedProcess | None = None

    def start(self) -> IdentityServerProcess:
        self.port = self.port or free_port()
        argv: list[Any] = [
            sys.executable,
            "-m",
            "devstack.identity",
            "--realm",
            self.realm_file,
            "--port",
            str(self.port),
        ]
        for option, seconds in self.lifespans.items():
            argv += [f"--{option.replace('_', '-')}", str(seconds)]
        self.log_path.write_text("")
        self.process = ManagedProcess("identity-server", argv, self.log_path, cwd=ROOT).start()
        self.process.wait_until(self._listening, timeout=30, what="'listening on'")
        return self

    def _listening(self) -> bool:
        match = re.search(r"listening on (\S+) \(realm (\S+)\)", self.log_path.read_text())
        if match:
            self.url, self.realm = match.group(1), match.group(2)
        return bool(match)

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{self.realm}"

    @property
    def oidc(self) -> str:
        return f"{self.issuer}/protocol/openid-connect"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/devstack/requests", timeout=5) as response:  # noqa: S310
            return json.load(response)

    def reset_stats(self) -> None:
        request = urllib.request.Request(f"{self.url}/devstack/requests", method="DELETE")  # noqa: S310
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310

    def set_admin_latency(self, seconds: float) -> None:
        """Delay every admin API answer by ``seconds`` from now on (0 to stop)."""
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/devstack/latency",
            method="PUT",
            data=json.dumps({"admin": seconds}).encode(),
        )
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=5)
