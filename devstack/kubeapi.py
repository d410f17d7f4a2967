"""A small raw-JSON client for the test ground's own controllers (kubelet, scheduler, binder).

The product talks to Kubernetes through kubernetes_asyncio. The test ground plays the cluster's side,
where plain JSON, merge patches, bindings and line-by-line watches are what it needs; the generated
models get in the way there (bindings fail to deserialize, status patches need special content types).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{status}: {message}")


UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError)


def api_unavailable(error: BaseException) -> bool:
    """The API server unreachable, timing out or failing (5xx): worth retrying, like a kubelet."""
    if isinstance(error, ApiError):
        return error.status >= 500
    return isinstance(error, UNREACHABLE)


class WatchExpired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


@dataclass(frozen=True)
class Credentials:
    server: str
    ca_file: Path
    token: str

    @classmethod
    def from_kubeconfig(cls, path: Path, context: str | None = None) -> Credentials:
        config = yaml.safe_load(path.read_text())
        context_name = context or config["current-context"]
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
        ca_file = Path(cluster["certificate-authority"])
        if not ca_file.is_absolute():
            ca_file = path.parent / ca_file
        return cls(server=cluster["server"], ca_file=ca_file, token=user["token"])


class KubeAPI:
    """Async JSON requests against one API server with a bearer token."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._ssl = ssl.create_default_context(cafile=str(credentials.ca_file))
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeAPI:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self.credentials.server,
                headers={"Authorization": f"Bearer {self.credentials.token}"},
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=20),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        async with self.session.request(
            method,
            path,
            data=data,
            params=params,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            text = await response.text()
            try:
                payload = json.loads(text) if text else None
            except json.JSONDecodeError:
                payload = text
            if response.status >= 300:
                raise ApiError(response.status, payload)
            return payload

    async def get(self, path: str, **params: str) -> Any:
        return await self.request("GET", path, params=params or None)

    async def post(self, path: str, body: Any) -> Any:
        return await self.request("POST", path, body)

    async def patch(self, path: str, body: Any, content_type: str = MERGE_PATCH) -> Any:
        return await self.request("PATCH", path, body, content_type=content_type)

    async def delete(self, path: str, body: Any = None) -> Any:
        return await self.request("DELETE", path, body)

    async def get_or_none(self, path: str) -> Any:
        try:
            return await self.get(path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def watch(
        self, path: str, resource_version: str, timeout_seconds: int = 300, **params: str
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield (type, object) from a watch; raises WatchExpired on 410 Gone."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
            **params,
        }
        async with self.session.get(
            path,
            params=query,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30),
        ) as response:
            if response.status == 410:
                raise WatchExpired(path)
            if response.status >= 300:
                raise ApiError(response.status, await response.text())
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":
                    if event["object"].get("code") == 410:
                        raise WatchExpired(path)
                    raise ApiError(event["object"].get("code", 500), event["object"])
                yield event["type"], event["object"]


async def informer(
    api: KubeAPI,
    path: str,
    handle: Any,
    *,
    resync: float = 30.0,
    on_error: Any = None,
    **params: str,
) -> None:
    """List, then watch ``path`` forever, calling ``await handle(type, obj)`` for every change.

    Re-lists after 410 Gone, after errors (the API server restarting) and every ``resync`` seconds,
    reporting a relisted object as "ADDED" or "MODIFIED" and objects that vanished as "DELETED".
    """
    known: dict[str, dict[str, Any]] = {}
    while True:
        try:
            listing = await api.get(path, **params)
            seen = {}
            for obj in listing["items"]:
                uid = obj["metadata"]["uid"]
                seen[uid] = obj
                await handle("MODIFIED" if uid in known else "ADDED", obj)
            for uid, obj in known.items():
                if uid not in seen:
                    await handle("DELETED", obj)
            known = seen
            version = listing["metadata"]["resourceVersion"]
            try:
                async with asyncio.timeout(resync):
                    async for kind, obj in api.watch(path, version, **params):
                        if kind == "BOOKMARK":
                            continue
                        uid = obj["metadata"]["uid"]
                        if kind == "DELETED":
                            known.pop(uid, None)
                        else:
                            known[uid] = obj
                        await handle(kind, obj)
            except TimeoutError:
                continue
        except asyncio.CancelledError:
            raise
        except (TimeoutError, WatchExpired, ApiError, aiohttp.ClientError, OSError) as error:
            if on_error is not None:
                on_error(path, error)
            await asyncio.sleep(1.0)
