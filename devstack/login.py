"""A browser-free login over HTTP: follow redirects, fill in Keycloak's login form, go on.

Keycloak's login page has ``form#kc-form-login`` with ``username`` and ``password``."""

from __future__ import annotations

import http.cookiejar
import ipaddress
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx


@dataclass
class LoginPage:
    action: str | None = None
    error: str | None = None


class _LoginPageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = LoginPage()
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and attributes.get("id") == "kc-form-login":
            self.page.action = attributes.get("action")
        if attributes.get("id") == "input-error":
            self._in_error = True
            self.page.error = ""

    def handle_endtag(self, tag: str) -> None:
        self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.page.error = (self.page.error or "") + data.strip()


def parse_login_page(html: str) -> LoginPage:
    parser = _LoginPageParser()
    parser.feed(html)
    return parser.page


class BrowserCookiePolicy(http.cookiejar.DefaultCookiePolicy):
    """A browser's cookie rules where Python's differ, as Keycloak's cookies need them.

    ``Secure`` cookies from loopback hosts are sent back over plain HTTP (browsers treat loopback
    as a secure context; Keycloak marks its session cookies ``Secure`` on ``http://127.0.0.1``
    too), and a ``Version=1`` attribute, which Keycloak adds and browsers ignore, does not make a
    cookie RFC 2965's (which Python's jar would refuse to send). httpx copies cookies into a jar
    with the default policy for each request, so the cookie is adjusted as it is stored."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        cookie.version = 0
        host = urllib.parse.urlsplit(request.get_full_url()).hostname or ""  # type: ignore[attr-defined]
        if cookie.secure and (host == "localhost" or _is_loopback(host)):
            cookie.secure = False
        return super().set_ok(cookie, request)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def browser_cookies(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client`` with a browser's cookie rules for loopback (see BrowserCookiePolicy)."""
    client.cookies.jar.set_policy(BrowserCookiePolicy())
    return client


class LoginFailed(Exception):
    """The login form came back (with its error message, e.g. "Invalid username or password.")."""


async def login(
    http: httpx.AsyncClient,
    start_url: str,
    username: str,
    password: str,
    stop: Callable[[str], bool] = lambda url: False,
    max_steps: int = 20,
) -> httpx.Response:
    """GET ``start_url``, follow redirects, submit the login form once, and follow on.

    Returns the first response whose URL (or redirect target) satisfies ``stop`` — the redirect
    itself, unfollowed, so a callback nobody serves can still be read — or the final page.
    Cookies live in ``http``, so a second call reuses Keycloak's SSO session.
    """
    browser_cookies(http)
    response = await http.get(start_url)
    submitted = False
    for _ in range(max_steps):
        if response.is_redirect:
            target = urllib.parse.urljoin(str(response.url), response.headers["location"])
            if stop(target):
                return response
            response = await http.get(target)
            continue
        if stop(str(response.url)):
            return response
        page = parse_login_page(response.text) if "kc-form-login" in response.text else LoginPage()
        if page.action is None:
            return response
        if submitted:
            raise LoginFailed(page.error or "the login form was shown again")
        submitted = True
        action = urllib.parse.urljoin(str(response.url), page.action)
        response = await http.post(action, data={"username": username, "password": password})
    raise LoginFailed(f"no end after {max_steps} steps (last {response.url})")
