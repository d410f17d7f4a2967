"""A notebook server's REST API and a kernel, driven through the hub's proxy as the user's browser
would: the server's OAuth with the hub first, then its API with the ``_xsrf`` cookie as header."""

from __future__ import annotations

import html
import json
import re
import uuid
from typing import Any

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class KernelError(Exception):
    """The code sent to the kernel raised."""


class NotebookServer:
    """The Jupyter server of ``user`` (and ``server``, if named) behind the hub at ``hub_url``."""

    def __init__(self, http: httpx.AsyncClient, hub_url: str, user: str, server: str = "") -> None:
        self.http = http
        self.prefix = f"/user/{user}/" + (f"{server}/" if server else "")
        self.base = hub_url + self.prefix
        self.user = user

    async def open(self, authorize: bool = False) -> bool:
        """Visit the server's page (its OAuth with the hub sets its cookie); True if it answers.
        Another user's server first asks her to authorize access (JupyterHub's consent page):
        with ``authorize``, she does."""
        page = await self.http.get(self.base + "lab", follow_redirects=True)
        if authorize and page.status_code == 200 and "/oauth2/authorize" in str(page.url):
            fields: dict[str, list[str]] = {}
            for name, value in re.findall(
                r'<input type="hidden" name="(_xsrf|scopes)" value="([^"]*)"', page.text
            ):
                fields.setdefault(name, []).append(html.unescape(value))
            page = await self.http.post(str(page.url), data=fields, follow_redirects=True)
        return page.status_code == 200 and "JupyterLab" in page.text

    @property
    def _headers(self) -> dict[str, str]:
        return {"X-XSRFToken": self.http.cookies.get("_xsrf", path=self.prefix) or ""}

    async def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return await self.http.request(
            method, self.base + "api/" + path, json=body, headers=self._headers
        )

    async def put_text(self, path: str, text: str) -> httpx.Response:
        model = {"type": "file", "format": "text", "content": text}
        return await self.request("PUT", f"contents/{path}", model)

    async def run(self, code: str, timeout: float = 60) -> str:
        """Run ``code`` in a new kernel; return what it printed. Raises KernelError if it raised."""
        started = await self.request("POST", "kernels", {"name": "python3"})
        started.raise_for_status()
        kernel = started.json()["id"]
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)
        url = self.base.replace("http://", "ws://", 1) + f"api/kernels/{kernel}/channels"
        socket = await websocket_connect(
            HTTPRequest(url, headers={"Cookie": cookies}, request_timeout=timeout)
        )
        try:
            return await self._execute(socket, code)
        finally:
            socket.close()
            await self.request("DELETE", f"kernels/{kernel}")

    async def _execute(self, socket: Any, code: str) -> str:
        session, msg_id = uuid.uuid4().hex, uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "session": session,
            "username": self.user,
            "msg_type": "execute_request",
            "version": "5.3",
        }
        content = {"code": code, "silent": False, "store_history": False, "allow_stdin": False}
        message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        await socket.write_message(json.dumps({**message, "channel": "shell", "buffers": []}))
        printed: list[str] = []
        while True:
            raw = await socket.read_message()
            if raw is None:
                raise KernelError("the kernel's websocket closed: " + "".join(printed))
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, body = reply["msg_type"], reply["content"]
            if kind == "stream":
                printed.append(body["text"])
            elif kind == "error":
                raise KernelError(f"{body['ename']}: {body['evalue']}")
            elif kind == "status" and body["execution_state"] == "idle":
                return "".join(printed)
