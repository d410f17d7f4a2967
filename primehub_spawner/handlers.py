"""Hub pages of the plugin: launch links that preselect the Server Options form."""

from __future__ import annotations

from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

from .form import Presets


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
        if server and not self.allow_named_servers:
            raise web.HTTPError(400, "Named servers are not enabled on this hub")
        spawner = user.get_or_create_spawner(server, server)
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
