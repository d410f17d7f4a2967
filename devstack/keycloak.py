"""Real Keycloak for the test ground and the demo: ``kc.sh start --optimized`` on loopback ports.

``scripts/install-keycloak.sh`` fetches ``org.keycloak:keycloak-quarkus-dist`` (the version in
``devstack/data/keycloak-version``) and builds it once into the cache. Each instance runs from a
home directory of its own (hard links to the built distribution plus its own ``data/``: the H2
database, Keycloak's transaction logs), so the demo and a test run never share state.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .paths import cache_dir
from .processes import ManagedProcess, unshared_port

DATA_DIR = Path(__file__).resolve().parent / "data"
KEYCLOAK_VERSION = (DATA_DIR / "keycloak-version").read_text().strip()
# Debian's OpenJDK 17, which Keycloak 26 supports, whatever else lies in /usr/lib/jvm.
_DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
JAVA_HOME = Path(f"/usr/lib/jvm/java-17-openjdk-{_DEBIAN_ARCH}")
BUILT_MARKER = ".primehub-built"
# The bootstrap admin of the master realm (the demo prints it; test servers use it too).
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"


def keycloak_distribution() -> Path:
    """The built distribution in the cache (``make setup`` puts it there)."""
    home = cache_dir() / "keycloak" / KEYCLOAK_VERSION
    if not (home / BUILT_MARKER).is_file():
        raise FileNotFoundError(
            f"{home} is missing: run `make setup` (scripts/install-keycloak.sh)"
        )
    return home


def _link_home(distribution: Path, home: Path) -> None:
    """``home`` as hard links to ``distribution`` (a copy on another file system), keeping
    ``home/data`` (the instance's state)."""
    home.mkdir(parents=True, exist_ok=True)
    for entry in home.iterdir():
        if entry.name != "data":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    same_device = os.stat(distribution).st_dev == os.stat(home).st_dev
    for entry in distribution.iterdir():
        if entry.name != "data":
            mode = "-al" if same_device else "-a"
            subprocess.run(["cp", mode, str(entry), str(home / entry.name)], check=True)
    (home / "data").mkdir(exist_ok=True)


@dataclass
class KeycloakProcess:
    """One Keycloak server: HTTP on ``port``, health and metrics on ``management_port``.

    ``realms`` are written to ``data/import`` and imported at start (``--import-realm``; a realm
    that exists already is skipped, as Keycloak does). The bootstrap admin ``admin_user`` is
    created in the ``master`` realm at the first start of a home directory."""

    home: Path
    log_path: Path
    port: int = 0
    management_port: int = 0
    realms: Iterable[Mapping[str, Any]] = ()
    admin_user: str = ADMIN_USER
    admin_password: str = ADMIN_PASSWORD
    process: ManagedProcess | None = None
    _admin_token: tuple[float, str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def start(self, timeout: float = 300) -> KeycloakProcess:
        """Start and wait until ready. Ports this object chose are chosen again if another
        process took one before Keycloak bound it (it binds at the end of its start)."""
        chosen = not (self.port and self.management_port)
        for _ in range(3):
            self.port = self.port or unshared_port()
            self.management_port = self.management_port or unshared_port()
            try:
                return self._start(timeout)
            except RuntimeError as error:
                if not (chosen and "Port already bound" in str(error)):
                    raise
                self.port = self.management_port = 0
        raise RuntimeError("keycloak: no free ports after three tries")

    def _start(self, timeout: float) -> KeycloakProcess:
        _link_home(keycloak_distribution(), self.home)
        imports = self.home / "data" / "import"
        shutil.rmtree(imports, ignore_errors=True)
        imports.mkdir()
        for realm in self.realms:
            (imports / f"{realm['realm']}-realm.json").write_text(json.dumps(realm))
        argv = [
            self.home / "bin" / "kc.sh",
            "start",
            "--optimized",
            "--http-enabled=true",
            "--http-host=127.0.0.1",
            f"--http-port={self.port}",
            f"--http-management-port={self.management_port}",
            # Tokens name this URL as issuer however Keycloak was reached (the hub's calls may go
            # through a proxy), as a deployment's public hostname does.
            f"--hostname={self.url}",
            "--hostname-backchannel-dynamic=true",
            # Not every /health/ready poll while starting (the log's tail should show errors).
            "--log-level=INFO,io.smallrye.health:WARN",
            "--cache=local",
            # H2 writes committed transactions to its file up to a second later (WRITE_DELAY), so
            # a SIGKILL lost the sessions of the last second; a production database keeps what it
            # committed, and the kill tests rely on it.
            "--db-url-properties=;WRITE_DELAY=0",
            "--import-realm",
        ]
        env = {
            **os.environ,
            "JAVA_HOME": str(JAVA_HOME),
            "PATH": f"{JAVA_HOME / 'bin'}:{os.environ.get('PATH', '')}",
            "KC_BOOTSTRAP_ADMIN_USERNAME": self.admin_user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
        }
        env.pop("JAVA_OPTS", None)
        self.process = ManagedProcess("keycloak", argv, self.log_path, env=env).start()
        self.process.wait_until(self.ready, timeout=timeout, what="/health/ready answering UP")
        return self

    def ready(self) -> bool:
        """Whether the management port's ``/health/ready`` says UP."""
        try:
            response = httpx.get(f"{self.management_url}/health/ready", timeout=2)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    def stop(self, grace: float = 20) -> None:
        if self.process is not None:
            self.process.stop(grace=grace)
        self._admin_token = None

    def kill(self) -> None:
        """SIGKILL, as an OOM kill or a node loss would end it."""
        self._signal(signal.SIGKILL)
        if self.process is not None and self.process.popen is not None:
            self.process.popen.wait(10)

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None and self.process.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.popen.pid, sig)

    # -- the admin API as the bootstrap admin --------------------------------------------------

    def admin_token(self) -> str:
        """An access token of the ``master`` realm's admin (cached until shortly before expiry)."""
        if self._admin_token and time.monotonic() < self._admin_token[0]:
            return self._admin_token[1]
        response = httpx.post(
            f"{self.url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": self.admin_user,
                "password": self.admin_password,
            },
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        self._admin_token = (time.monotonic() + body["expires_in"] - 15, body["access_token"])
        return body["access_token"]

    def admin(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        """A call to ``/admin/<path>`` as the bootstrap admin; the JSON answer (None if empty)."""
        response = httpx.request(
            method,
            f"{self.url}/admin/{path.lstrip('/')}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token()}"},
            timeout=timeout,
        )
        if response.status_code >= 400:
            raise KeycloakAdminError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def request_counts(self) -> dict[tuple[str, str], int]:
        """Requests served so far by (method, URI template), from Keycloak's own metrics
        (``http_server_requests_seconds_count``), once two readings 0.1 s apart agree: Keycloak
        counts a request when its answer has been written, which may be just after the client
        has it."""
        counts = self._request_counts()
        while True:
            time.sleep(0.1)
            again = self._request_counts()
            if again == counts:
                return counts
            counts = again

    def _request_counts(self) -> dict[tuple[str, str], int]:
        text = httpx.get(f"{self.management_url}/metrics", timeout=10).text
        counts: dict[tuple[str, str], int] = {}
        for line in text.splitlines():
            match = re.match(r"http_server_requests_seconds_count\{(.*)\} (\S+)$", line)
            if match:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
                if labels.get("uri", "").startswith(("/metrics", "/health")):
                    continue  # the management port's own
                key = (labels.get("method", ""), labels.get("uri", ""))
                counts[key] = counts.get(key, 0) + int(float(match.group(2)))
        return counts


class KeycloakAdminError(Exception):
    """An admin API call answered with an error status."""

    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        self.status = status
        super().__init__(f"{method} /admin/{path}: HTTP {status}: {text[:500]}")


class RequestCounter:
    """Keycloak requests between two points in time: ``counter.admin`` after ``counter.reset()``.

    Keycloak's metrics count every request since start; this takes differences."""

    def __init__(self, keycloak: KeycloakProcess) -> None:
        self.keycloak = keycloak
        self._base = keycloak.request_counts()

    def reset(self) -> None:
        self._base = self.keycloak.request_counts()

    def since(self) -> dict[tuple[str, str], int]:
        now = self.keycloak.request_counts()
        return {
            key: n - self._base.get(key, 0) for key, n in now.items() if n > self._base.get(key, 0)
        }

    @property
    def admin(self) -> int:
        """Admin REST calls into realms (``/admin/realms/…``)."""
        return sum(n for (_, uri), n in self.since().items() if uri.startswith("/admin/realms/"))

    def calls(self, uri_part: str) -> int:
        return sum(n for (_, uri), n in self.since().items() if uri_part in uri)
