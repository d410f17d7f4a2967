"""Hub pages of the plugin: launch links that preselect the Server Options form, and the form's
per-group parts fetched when the user switches groups.

Neither page creates a server: only a launch does, through JupyterHub's own checks (its named-server
limit among them). Access is by JupyterHub's scopes, as on its spawn page: ``servers`` on the
user's server (``servers!server=<user>/<name>``, or a broader filter).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.slugs import is_valid_safe_slug
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httputil import url_concat

from .form import LaunchPresets, Presets


def _launch_presets_of(spawner_class: type) -> LaunchPresets:
    """Where the hub's spawner class keeps launch links' presets (a throwaway store for a spawner
    class that shows no PrimeHub form)."""
    return getattr(spawner_class, "launch_presets", None) or LaunchPresets()


def _check_server_name(handler: BaseHandler, user: Any, server: str) -> None:
    """400 unless ``server`` is the user's default or existing server, or a name JupyterHub would
    accept for a new one."""
    if not server or server in user.orm_spawners:
        return
    if not handler.allow_named_servers:
        raise web.HTTPError(400, "server: named servers are not enabled on this hub")
    if not is_valid_safe_slug(server):
        raise web.HTTPError(400, f"server: {server[:100]!r} is not a valid server name")


def _existing_spawner(user: Any, server: str) -> Any:
    """The spawner of the user's ``server`` if it exists, else her default server's (which
    JupyterHub always has): what the form shows depends on the user, not on the server."""
    return user.spawners[server if server in user.orm_spawners else ""]


def _deep_link(path: str) -> str:
    """A launch link's ``path=`` (e.g. ``lab/tree/project/ml-team/report.ipynb``), checked to stay
    inside the user's server: relative, without ``..``, empty segments or control characters."""
    if not path:
        return ""
    segments = [unquote(segment) for segment in path.split("/")]  # browsers read %2e%2e as ..
    if (
        len(path) > 2000
        or path.startswith("/")
        or "\\" in path
        or any(segment in ("", ".", "..") for segment in segments[:-1])
        or segments[-1] in (".", "..")
        or any(ord(char) < 32 or ord(char) == 127 for char in path)
    ):
        raise web.HTTPError(400, "path: must be a path inside the server, such as lab/tree/x.ipynb")
    return path


class LaunchHandler(BaseHandler):
    """``/hub/primehub/launch?group=&instancetype=&image=&autolaunch=1[&server=<name>][&path=<p>]``

    Remembers the presets for the user's (named) server and opens its Server Options form; a
    running server is opened instead (at ``path`` if given, as after the start). An unavailable preset is reported on the form, which then
    picks a default; ``autolaunch=1`` asks the user to confirm with Start.
    """

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        server = self.get_query_argument("server", "")
        if not self.has_scope(f"servers!server={user.name}/{server}"):
            raise web.HTTPError(403, "Launching needs the servers scope on this server")
        _check_server_name(self, user, server)
        path = _deep_link(self.get_query_argument("path", ""))
        if server in user.orm_spawners and user.spawners[server].ready:
            self.redirect(url_path_join(user.server_url(server), path))
            return
        _launch_presets_of(self.spawner_class).put(
            user.name,
            server,
            Presets(
                group=self.get_query_argument("group", None) or None,
                instance_type=self.get_query_argument("instancetype", None) or None,
                image=self.get_query_argument("image", None) or None,
                autolaunch=self.get_query_argument("autolaunch", "") in ("1", "true"),
            ),
        )
        target = url_path_join(self.hub.base_url, "spawn", user.escaped_name)
        if server:
            target = url_path_join(target, server)
        if path:  # where the browser lands once the server runs (JupyterHub's `next`)
            target = url_concat(target, {"next": url_path_join(user.server_url(server), path)})
        self.redirect(target)


class GroupOptionsHandler(BaseHandler):
    """``/hub/primehub/options/<user>[/<server>]?group=<name>``: one group's part of that server's
    Server Options form (HTML), for whoever may launch that server."""

    @web.authenticated
    @needs_scope("servers")
    async def get(self, user_name: str, server_name: str = "") -> None:
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {user_name}")
        _check_server_name(self, user, server_name)
        group = self.get_query_argument("group", "")
        render = getattr(_existing_spawner(user, server_name), "render_group_options", None)
        html = await render(group) if render is not None and group else None
        if html is None:
            raise web.HTTPError(404, f"group: {user_name} is not a member of group {group!r}")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(html)
