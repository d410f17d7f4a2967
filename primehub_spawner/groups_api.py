"""The group REST API: a user's groups with quotas, usage and what she may launch, and the servers
running in a group.

``GET /hub/api/primehub/groups`` (the caller's) and ``/hub/api/primehub/users/<user>/groups``
need ``read:users`` on the user (in JupyterHub's ``self``; a token with fewer scopes, say only
``access:servers``, does not have it). They read the launch context stored at her last login or
refresh and the pod watch: no call to Keycloak, so the Server Options form can poll them.

``GET /hub/api/primehub/groups/<group>/servers`` (``<group>`` is the JupyterHub group, a top-level
group's name) lists the active servers launched in the group, and only those (a member's servers
in her other groups are not the group's business). Allowed with ``read:servers`` on
every user or on the group (``read:servers!group=<group>``), or for a member of the group whose
token may read her own servers. Anyone else gets a 404, as for a group that does not exist.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.user import User
from tornado import web

from .catalog import Catalog
from .context import GroupContext, LaunchContext
from .permissions import resolve
from .quota import GroupUsage, Usage, exceeded
from .servers import quota_json, running_servers, usage_json, utcnow
from .sharing import is_shared


def groups_report(
    context: LaunchContext, catalog: Catalog, usage_of: Callable[[GroupContext], GroupUsage]
) -> list[dict[str, Any]]:
    """Each of the user's launch groups: quotas, current usage, and what she may launch there
    (an instance type's ``over_quota`` says why it does not fit now)."""
    report = []
    for group in context.groups:
        offer = resolve(context, group.name, catalog)
        if offer is None:
            continue
        used = usage_of(group)
        instance_types = []
        for offered in offer.instance_types:
            it = offered.instance_type
            wanted = Usage.of(it)
            over = exceeded(group.user_quota, used.user, wanted)
            over = over and f"your quota: {over}"
            if not over:
                over = exceeded(group.group_quota, used.group, wanted)
                over = over and f"the group's quota: {over}"
            instance_types.append(
                {
                    "name": it.name,
                    "display_name": it.display_name,
                    "cpu": float(it.cpu_limit),
                    "memory": int(it.memory_limit),
                    "gpu": it.gpu,
                    "global": offered.global_,
                    "over_quota": over or None,
                }
            )
        report.append(
            {
                "key": group.key,
                "name": group.name,
                "display_name": group.display_name,
                "quota": {
                    "user": quota_json(group.user_quota),
                    "group": quota_json(group.group_quota),
                },
                "usage": {"user": usage_json(used.user), "group": usage_json(used.group)},
                "instance_types": instance_types,
                "images": [
                    {
                        "name": o.image.name,
                        "display_name": o.image.display_name,
                        "kind": o.image.kind,
                        "ready": o.image.ready,
                        "global": o.global_,
                    }
                    for o in offer.images
                ],
                "datasets": [
                    {
                        "name": m.dataset.name,
                        "display_name": m.dataset.display_name,
                        "writable": m.writable,
                    }
                    for m in offer.datasets
                ],
            }
        )
    return report


class UserGroupsAPIHandler(APIHandler):
    """``/hub/api/primehub/groups`` and ``/hub/api/primehub/users/<user>/groups``."""

    async def get(self, user_name: str | None = None) -> None:
        caller = self.current_user
        if user_name is None:
            if not isinstance(caller, User):
                raise web.HTTPError(403, "Only users have PrimeHub groups; name the user")
            user_name = caller.name
        if not self.has_scope(f"read:users!user={user_name}"):
            raise web.HTTPError(403, f"Reading the groups of {user_name} needs read:users on them")
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {user_name}")
        report = getattr(user.spawners[""], "groups_report", None)
        groups = await report() if report is not None else None
        if groups is None:
            raise web.HTTPError(
                404, f"{user_name} has no PrimeHub launch context on this hub (not logged in)"
            )
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"user": user_name, "groups": groups}))


class GroupServersAPIHandler(APIHandler):
    """``/hub/api/primehub/groups/<group>/servers``: the servers running in a group."""

    def _may_list(self, key: str, group: Any) -> bool:
        if self.has_scope("read:servers") or self.has_scope(f"read:servers!group={key}"):
            return True
        caller = self.current_user
        return (
            isinstance(caller, User)
            and self.has_scope(f"read:servers!user={caller.name}")
            and group in caller.orm_user.groups
        )

    async def get(self, key: str) -> None:
        group = orm.Group.find(self.db, name=key)
        if group is None or not self._may_list(key, group):
            raise web.HTTPError(404, f"No such group: {key}")
        now = utcnow()
        shared = functools.partial(is_shared, self.db)
        servers = [
            server.to_json(now)
            for server in running_servers(self.users.values(), group_key=key, shared=shared)
        ]
        servers.sort(key=lambda s: (s["owner"], s["server"]))
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"group": key, "servers": servers}))
