"""Share a running server with its launch group, through JupyterHub's sharing.

A share here is JupyterHub's own (``orm.Share``): ``access:servers!server=<owner>/<server>``
granted to the JupyterHub group that mirrors the server's launch group in Keycloak (its
``GroupContext.key``). So whoever is in that Keycloak group at her last refresh may open the
server, and nobody else: JupyterHub resyncs group membership at every refresh, a member removed in
Keycloak loses the share then, and the share goes with the server — when it stops, however it
stopped (a restart may be in another group, with other data), and when it is deleted.

JupyterHub 6.1 resolves a token's permissions from its owner's roles and *direct* shares only
(``scopes.get_scopes_for``), not from shares granted to her groups: a group share alone lets
members see the server in the hub's API but not use it, since the server checks their OAuth
tokens. So each group share comes with a role, ``primehub-share-<server id>``, holding the same
scope and assigned to that group alone, which tokens do honour; the two are granted and revoked
together, and a server counts as shared only when it has both. :func:`reconcile_roles` (at the
hub's start and every minute) deletes a role whose share is gone — revoked through JupyterHub's
own API, or its server stopped while the hub was down. The role is marked as managed by the
authenticator, so that restarting the hub keeps it (unless
``Authenticator.reset_managed_roles_on_startup``, which then ends every group share).

Granting needs JupyterHub's ``shares`` scope on the server (admins have it) or
:data:`GROUP_SHARE_SCOPE`, which allows only this: sharing with the server's launch group.
:func:`enable_group_sharing` gives every user that scope on her own servers; JupyterHub's
``shares`` (sharing with anyone, share codes) stays with whom the deployment grants it.
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub import orm, roles
from jupyterhub.apihandlers.base import APIHandler
from tornado import web
from traitlets.config import LazyConfigValue

GROUP_SHARE_SCOPE = "custom:primehub:share-with-launch-group"


def enable_group_sharing(c: Any) -> None:
    """Let every user share her own running servers with their launch groups: defines
    :data:`GROUP_SHARE_SCOPE` and gives it, filtered to her own servers, to JupyterHub's ``user``
    role — through ``extra_user_scopes``, or in the ``user`` role of ``load_roles`` when the
    configuration redefines it there (JupyterHub then ignores ``extra_user_scopes``)."""
    hub = c.JupyterHub
    hub.custom_scopes = {
        **(dict(hub.custom_scopes) if "custom_scopes" in hub else {}),
        GROUP_SHARE_SCOPE: {"description": "Share servers with the group they were launched in."},
    }
    scope = f"{GROUP_SHARE_SCOPE}!user"
    configured = hub.load_roles if "load_roles" in hub else []
    if isinstance(configured, LazyConfigValue):  # roles appended by other helpers
        configured = configured.get_value([])
    roles = [dict(role) for role in configured]
    user_role = next((r for r in roles if r.get("name") == "user" and "scopes" in r), None)
    if user_role is None:
        hub.extra_user_scopes.add(scope)
        return
    if scope not in user_role["scopes"]:
        user_role["scopes"] = [*user_role["scopes"], scope]
    hub.load_roles = roles


def _hub_group(db: Any, key: str) -> Any:
    return orm.Group.find(db, name=key)


ROLE_PREFIX = "primehub-share-"


def _role_name(orm_spawner: Any) -> str:
    """The access role of a shared server, by its database id."""
    return f"{ROLE_PREFIX}{orm_spawner.id}"


def _access(orm_spawner: Any) -> str:
    return f"access:servers!server={orm_spawner.user.name}/{orm_spawner.name}"


def group_share(db: Any, orm_spawner: Any, key: str) -> Any:
    """The server's share with JupyterHub group ``key``, if there is one."""
    group = _hub_group(db, key)
    return None if group is None else orm.Share.find(db, orm_spawner, share_with=group)


def is_shared(db: Any, orm_spawner: Any, key: str) -> bool:
    """Whether the server is shared with group ``key``: the share, and its role on the group."""
    share = group_share(db, orm_spawner, key)
    role = orm.Role.find(db, _role_name(orm_spawner))
    return share is not None and role is not None and share.group in role.groups


def grant_group_share(db: Any, orm_spawner: Any, group: Any) -> None:
    """Share the server with ``group``: JupyterHub's share, and the role that makes it count for
    the members' tokens, assigned to that group only, in one commit."""
    scopes = [_access(orm_spawner)]
    role = roles.create_role(
        db,
        {
            "name": _role_name(orm_spawner),
            "description": f"{orm_spawner.user.name}/{orm_spawner.name} shared with group "
            f"{group.name} (PrimeHub)",
            "scopes": scopes,
            "managed_by_auth": True,
        },
        commit=False,
    )
    role.groups = [group]  # a role left with this id by another server never keeps its groups
    try:
        orm.Share.grant(db, orm_spawner, group, scopes=scopes)  # commits the role too
    except BaseException:
        db.rollback()
        raise


def _share_or_role_exists(db: Any, orm_spawner: Any, key: str) -> bool:
    """Whether the server has a share with group ``key`` or its access role, by two lookups of an
    id: no ORM objects (loading a group loads its roles and every share with it), as every start
    and stop of an unshared server asks."""
    share = (
        db.query(orm.Share.id)
        .join(orm.Group, orm.Share.group_id == orm.Group.id)
        .filter(orm.Share.spawner_id == orm_spawner.id, orm.Group.name == key)
        .first()
    )
    role = db.query(orm.Role.id).filter_by(name=_role_name(orm_spawner)).first()
    return share is not None or role is not None


def revoke_group_share(db: Any, orm_spawner: Any, key: str) -> bool:
    """End the server's share with JupyterHub group ``key`` (share and role); whether there was
    one."""
    if not _share_or_role_exists(db, orm_spawner, key):
        return False  # no commit: every start and stop of an unshared server comes here
    share = group_share(db, orm_spawner, key)
    role = orm.Role.find(db, _role_name(orm_spawner))
    if role is not None:
        db.delete(role)
    if share is not None:
        db.delete(share)
    db.commit()
    return True


def reconcile_roles(db: Any) -> list[str]:
    """Delete every share role whose server is gone or stopped, whose scope no longer names it,
    or whose groups no longer hold the share; the names deleted."""
    deleted = []
    for role in db.query(orm.Role).filter(orm.Role.name.startswith(ROLE_PREFIX)).all():
        suffix = role.name[len(ROLE_PREFIX) :]
        orm_spawner = db.get(orm.Spawner, int(suffix)) if suffix.isdigit() else None
        keep = (
            orm_spawner is not None
            and orm_spawner.server is not None
            and role.scopes == [_access(orm_spawner)]
            and len(role.groups) == 1
            and orm.Share.find(db, orm_spawner, share_with=role.groups[0]) is not None
        )
        if not keep:
            db.delete(role)
            deleted.append(role.name)
    if deleted:
        db.commit()
    return deleted


def start_reconciling(db: Any, log: Any, every: float = 60.0) -> None:
    """Reconcile share roles now and every ``every`` seconds (the hub's event loop)."""
    from tornado.ioloop import PeriodicCallback

    def reconcile() -> None:
        try:
            for name in reconcile_roles(db):
                log.info("Deleted share role %s: its share or server is gone", name)
        except Exception as error:  # the next round tries again
            db.rollback()
            log.warning("Could not reconcile share roles: %s", error)

    reconcile()
    PeriodicCallback(reconcile, every * 1000).start()


def end_group_share(spawner: Any) -> None:
    """End the share of ``spawner``'s server with its launch group (it stopped, or starts again,
    maybe in another group)."""
    record = getattr(spawner, "launch_record", None)
    orm_spawner = getattr(spawner, "orm_spawner", None)
    db = getattr(spawner, "db", None)
    if record is None or orm_spawner is None or db is None:
        return
    if revoke_group_share(db, orm_spawner, record.group_key):
        spawner.log.info(
            "Sharing of %s/%s with group %s ended: the server stopped or is deleted",
            spawner.user.name,
            spawner.name,
            record.group_key,
        )


class GroupShareAPIHandler(APIHandler):
    """``/hub/api/primehub/shares/<owner>/<server>``: whether the server is shared with its launch
    group (GET), share it (POST), stop sharing (DELETE). The default server is ``<owner>/``."""

    def _spawner(self, owner: str, server: str) -> Any:
        target = f"{owner}/{server}"
        if not (
            self.has_scope(f"shares!server={target}")
            or self.has_scope(f"{GROUP_SHARE_SCOPE}!server={target}")
        ):
            raise web.HTTPError(
                403, f"Sharing {target} needs the scope shares or {GROUP_SHARE_SCOPE} on it"
            )
        user = self.find_user(owner)
        if user is None or server not in user.orm_spawners:
            raise web.HTTPError(404, f"No such server: {target}")
        return user.spawners[server]

    def _model(self, spawner: Any) -> dict[str, Any]:
        record = spawner.launch_record
        shared = record is not None and is_shared(self.db, spawner.orm_spawner, record.group_key)
        return {
            "owner": spawner.user.name,
            "server": spawner.name,
            "url": spawner.user.server_url(spawner.name),
            "group": None
            if record is None
            else {
                "key": record.group_key,
                "name": record.group,
                "display_name": record.group_display_name,
            },
            "shared": shared,
            "running": bool(spawner.active),
        }

    def _running_record(self, spawner: Any) -> Any:
        record = getattr(spawner, "launch_record", None)
        if not spawner.ready or record is None:  # not while starting or stopping
            raise web.HTTPError(
                400,
                f"server: {spawner.user.name}/{spawner.name} is not running in a PrimeHub group; "
                "only a running server can be shared with its group",
            )
        return record

    async def get(self, owner: str, server: str) -> None:
        self.finish(json.dumps(self._model(self._spawner(owner, server))))

    async def post(self, owner: str, server: str) -> None:
        spawner = self._spawner(owner, server)
        record = self._running_record(spawner)
        access = f"access:servers!server={owner}/{server}"
        if not self.has_scope(access):  # as JupyterHub's own sharing: grant only what you have
            raise web.HTTPError(403, f"Do not have permission to grant share with scope {access}")
        group = _hub_group(self.db, record.group_key)
        if group is None or group not in spawner.user.orm_user.groups:
            raise web.HTTPError(
                400,
                f"group: {owner} is no longer a member of {record.group_display_name!r}, the "
                "group the server was launched in",
            )
        grant_group_share(self.db, spawner.orm_spawner, group)
        self.log.info(
            "%s shared %s/%s with group %s", self.current_user.name, owner, server, group.name
        )
        self.finish(json.dumps(self._model(spawner)))

    async def delete(self, owner: str, server: str) -> None:
        spawner = self._spawner(owner, server)
        record = getattr(spawner, "launch_record", None)
        if record is not None and revoke_group_share(
            self.db, spawner.orm_spawner, record.group_key
        ):
            self.log.info(
                "%s stopped sharing %s/%s with group %s",
                self.current_user.name,
                owner,
                server,
                record.group_key,
            )
        self.finish(json.dumps(self._model(spawner)))
