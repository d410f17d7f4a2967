"""The Notebooks admin page (PrimeHub's "Notebooks Admin"): every running server with its user,
group, instance type, image, resources and age, filterable by group, with stop; each group's
totals against its quota at the top.

``/hub/primehub/notebooks[?group=<group>]`` needs JupyterHub's ``admin-ui`` and ``read:servers``
on every user, as the hub's own admin page does for its server list; stopping goes through
JupyterHub's REST API with the admin's session (``servers`` scope). Rendered by the hub's
autoescaping templates (``primehub_notebooks.html``).
"""

from __future__ import annotations

import functools

from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from .servers import group_totals, running_servers, utcnow
from .sharing import is_shared


def format_age(seconds: int | None) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``7 min``, ``40 s``; ``—`` when not started."""
    if seconds is None:
        return "—"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


class NotebooksAdminHandler(BaseHandler):
    """Every running server of the hub, by group."""

    @web.authenticated
    @needs_scope("admin-ui")
    async def get(self) -> None:
        if not self.has_scope("read:servers"):
            raise web.HTTPError(403, "The Notebooks page needs read:servers on every user")
        wanted = self.get_query_argument("group", "")
        now = utcnow()
        servers = sorted(
            running_servers(self.users.values(), shared=functools.partial(is_shared, self.db)),
            key=lambda s: (s.record.group_display_name.casefold(), s.owner, s.name),
        )
        totals = group_totals(servers)
        if wanted:
            servers = [s for s in servers if s.record.group_key == wanted]
        html = await self.render_template(
            "primehub_notebooks.html",
            servers=[(server, format_age(server.age(now))) for server in servers],
            totals=totals,
            selected_group=wanted,
        )
        self.set_header("Cache-Control", "no-store")
        self.finish(html)
