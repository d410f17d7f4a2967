"""The kubelet's HTTPS endpoint, as the API server reaches it for ``pods/log``.

The API server proxies ``GET …/pods/{pod}/log`` to ``https://<node InternalIP>:<kubeletEndpoint
port>/containerLogs/{namespace}/{pod}/{container}`` with its kubelet client certificate. One
server answers for every fake node (all of them are 127.0.0.1); it serves only clients with a
certificate from the test ground's CA (the TLS handshake fails for others) and only
``/containerLogs`` (plus ``/healthz``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .logs import LogError, read_log

log = logging.getLogger("devstack.kubelet.server")
# (namespace, pod, container, previous) -> the log file to read; raises LogError
LogSource = Callable[[str, str, str, bool], Path]
TRUE = ("1", "t", "T", "true", "TRUE", "True")
FALSE = ("0", "f", "F", "false", "FALSE", "False")


@dataclass(frozen=True)
class ServingCerts:
    """The kubelet's serving certificate and key, and the CA its clients' certificates are from."""

    cert: Path
    key: Path
    client_ca: Path


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false")
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise LogError(400, f'invalid value "{value}" for {name}')


def _number(request: web.Request, name: str, minimum: int) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise LogError(400, f'invalid value "{value}" for {name}') from None
    if number < minimum:
        raise LogError(422, f"{name}: Invalid value: {number}: must be at least {minimum}")
    return number


class KubeletServer:
    """``/containerLogs`` over TLS with client certificates (kubelet's --tls-cert-file,
    --tls-private-key-file and --client-ca-file)."""

    def __init__(
        self,
        logs: LogSource,
        certs: ServingCerts,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.logs = logs
        self.host = host
        self.port = port
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs.client_ca))
        self._ssl.load_cert_chain(str(certs.cert), str(certs.key))
        self._ssl.verify_mode = ssl.CERT_REQUIRED
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen (on a free port unless one was given); return the port."""
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._container_logs)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("kubelet endpoint on https://%s:%d", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _container_logs(self, request: web.Request) -> web.Response:
        info = request.match_info
        try:
            previous = _flag(request, "previous")
            tail_lines = _number(request, "tailLines", 0)
            limit_bytes = _number(request, "limitBytes", 1)
            path = self.logs(info["namespace"], info["pod"], info["container"], previous)
            body = await asyncio.to_thread(read_log, path, tail_lines, limit_bytes)
        except LogError as error:
            return web.Response(status=error.status, text=error.message)
        return web.Response(body=body, content_type="text/plain", charset="utf-8")
