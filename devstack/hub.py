"""A real JupyterHub process (with configurable-http-proxy) on free loopback ports, for tests.

The configuration is the caller's Python text, appended after the ports, the database, a service
``tester`` (with token ``HubProcess.api_token`` and admin scopes) and the crypt key are set.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .login import login
from .processes import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = Path(__file__).resolve().parent / "node_modules" / ".bin"


@dataclass
class HubProcess:
    """``jupyterhub -f <dir>/jupyterhub_config.py`` with everything under ``directory``."""

    directory: Path
    config: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    port: int = 0
    api_token: str = field(default_factory=lambda: secrets.token_hex(16))
    process: ManagedProcess | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()  # known before start, for callback URLs in the config

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> HubProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        base = f"""
            c = get_config()  # noqa
            c.JupyterHub.bind_url = "{self.url}/"
            c.JupyterHub.hub_bind_url = "http://127.0.0.1:{free_port()}"
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
            c.JupyterHub.db_url = "sqlite:///{self.directory / "jupyterhub.sqlite"}"
            c.JupyterHub.cookie_secret_file = "{self.directory / "cookie_secret"}"
            c.JupyterHub.pid_file = "{self.directory / "jupyterhub.pid"}"
            c.JupyterHub.services = [{{"name": "tester", "api_token": "{self.api_token}"}}]
            c.JupyterHub.load_roles = [{{"name": "tester", "services": ["tester"],
                "scopes": ["admin:users", "admin:auth_state", "admin:servers", "admin:groups", "list:users",
                           "read:users", "read:metrics"]}}]
        """
        config_file = self.directory / "jupyterhub_config.py"
        config_file.write_text(textwrap.dedent(base) + "\n" + textwrap.dedent(self.config))
        proxy = shutil.which(
            "configurable-http-proxy", path=f"{NODE_BIN}:{os.environ.get('PATH', '')}"
        )
        if proxy is None:
            raise FileNotFoundError("configurable-http-proxy is missing: run `make node-packages`")
        env = {
            **os.environ,
            "PATH": f"{NODE_BIN}:{os.environ.get('PATH', '')}",
            "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
            "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(16),
            **self.environment,
        }
        self.process = ManagedProcess(
            "jupyterhub",
            [sys.executable, "-m", "jupyterhub", "-f", config_file],
            self.directory / "jupyterhub.log",
            env=env,
            cwd=self.directory,
        ).start()
        self.process.wait_until(self._ready, timeout=timeout, what="GET /hub/api/ answering")
        return self

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/hub/api/", timeout=2) as response:  # noqa: S310
            return response.status == 200

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A hub REST API call as the ``tester`` service."""
        request = urllib.request.Request(  # noqa: S310 - http on loopback
            f"{self.url}/hub/api/{path.lstrip('/')}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"token {self.api_token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                text = response.read()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text)
            except json.JSONDecodeError:
                return error.code, text.decode(errors="replace")

    def metrics(self) -> str:
        """The hub's Prometheus metrics (the ``tester`` service may read them)."""
        request = urllib.request.Request(  # noqa: S310 - http on loopback
            f"{self.url}/hub/metrics", headers={"Authorization": f"token {self.api_token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.read().decode()

    def log(self) -> str:
        """The log's last 200 lines (for failure messages)."""
        return self.process.log_tail(200) if self.process else ""

    def full_log(self) -> str:
        """The whole log: for checking that a message was logged (a tail can lose it behind
        later tracebacks)."""
        return self.process.log_path.read_text(errors="replace") if self.process else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=15)


async def oauth_login(
    http: httpx.AsyncClient, hub_url: str, username: str, password: str | None = None
) -> httpx.Response:
    """Log in at a hub as a browser does: its OAuth login, Keycloak's form, back to the
    hub's home page (that response, unfollowed). The password defaults to the user name, as in the
    demo realm; cookies stay in ``http``."""
    return await login(
        http,
        f"{hub_url}/hub/oauth_login",
        username,
        password or username,
        stop=lambda url: urllib.parse.urlsplit(url).path == "/hub/home",
    )
