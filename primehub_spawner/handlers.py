"""Hub pages of the plugin: launch links that preselect the Server Options form, and the form's
per-group parts fetched when the user switches groups."""

from __future__ import annotations

from typing import Any

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

from .form import Presets


def _spawner(handler: BaseHandler, user: Any, server: str) -> Any:
    """The user's (named) server's spawner; 400 if that server name cannot be."""
    if server and not handler.allow_named_servers:
        raise web.HTTPError(400, "Named servers are not enabled on this hub")
    try:
        return user.get_or_create_spawner(server, server)
    except ValueError as error:
        raise web.HTTPError(400, f"server: {error}") from None


class LaunchHandler(BaseHandler):
    """``/hub/primehub/launch?group=&instancetype=&image=&autolaunch=1[&server=<name>]``

    Remembers the presets for the user's (named) server and opens its Server Options form; a
    running server is opened instead. An unavailable preset is reported on the form, which then
    picks a default; ``autolaunch=1`` asks the user to confirm with Start.
    """

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        server = self.get_query_argument("server", "")
        spawner = _spawner(self, user, server)
        if spawner.ready:
            self.redirect(user.server_url(server))
            return
        spawner.primehub_presets = Presets(
            group=self.get_query_argument("group", None) or None,
            instance_type=self.get_query_argument("instancetype", None) or None,
            image=self.get_query_argument("image", None) or None,
            autolaunch=self.get_query_argument("autolaunch", "") in ("1", "true"),
        )
        target = url_path_join(self.hub.base_url, "spawn", user.escaped_name)
        if server:
            target = url_path_join(target, server)
        self.redirect(target)


class GroupOptionsHandler(BaseHandler):
    """``/hub/primehub/options/<user>[/<server>]?group=<name>``: one group's part of that server's
    Server Options form (HTML), for the user herself or an admin."""

    @web.authenticated
    async def get(self, user_name: str, server_name: str = "") -> None:
        current = self.current_user
        if current.name != user_name and not current.admin:
            raise web.HTTPError(403, "Only admins can see the server options of other users")
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {user_name}")
        group = self.get_query_argument("group", "")
        spawner = _spawner(self, user, server_name)
        render = getattr(spawner, "render_group_options", None)
        html = await render(group) if render is not None and group else None
        if html is None:
            raise web.HTTPError(404, f"group: {user_name} is not a member of group {group!r}")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(html)
