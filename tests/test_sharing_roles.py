"""Group shares and their access roles in JupyterHub's own database (SQLite in memory): granted
and revoked together, a server counted as shared only with both, orphaned roles reconciled."""

from __future__ import annotations

import pytest
from jupyterhub import orm
from sqlalchemy import event

from primehub_spawner import sharing


@pytest.fixture
def db():
    session = orm.new_session_factory("sqlite:///:memory:")()
    yield session
    session.close()


def running_server(db, owner: str, name: str) -> orm.Spawner:
    user = orm.User(name=owner)
    db.add(user)
    db.commit()
    spawner = orm.Spawner(name=name, user=user)
    spawner.server = orm.Server()
    db.add(spawner)
    db.commit()
    return spawner


def group(db, name: str) -> orm.Group:
    made = orm.Group(name=name)
    db.add(made)
    db.commit()
    return made


def test_a_share_comes_with_its_role_on_that_group_alone(db):
    team, other = group(db, "ml-team"), group(db, "vision")
    server = running_server(db, "alice", "team")
    stale = orm.Role(name=f"primehub-share-{server.id}", scopes=["x"], groups=[other])
    db.add(stale)  # a role left with this id by a server that is gone
    db.commit()
    sharing.grant_group_share(db, server, team)
    role = orm.Role.find(db, f"primehub-share-{server.id}")
    assert role.groups == [team] and role.scopes == ["access:servers!server=alice/team"]
    assert sharing.is_shared(db, server, "ml-team")
    assert not sharing.is_shared(db, server, "vision")
    assert sharing.revoke_group_share(db, server, "ml-team")
    assert orm.Role.find(db, role.name) is None
    assert not sharing.is_shared(db, server, "ml-team")
    assert not sharing.revoke_group_share(db, server, "ml-team")


def test_a_share_without_its_role_does_not_count(db):
    team = group(db, "ml-team")
    server = running_server(db, "alice", "team")
    orm.Share.grant(db, server, team)  # as JupyterHub's own API makes it
    assert not sharing.is_shared(db, server, "ml-team")


@pytest.mark.parametrize("left", ["share", "role", "both"])
def test_a_share_or_role_left_alone_is_revoked(db, left):
    team = group(db, "ml-team")
    server = running_server(db, "alice", "team")
    if left in ("share", "both"):
        orm.Share.grant(db, server, team)
    if left in ("role", "both"):
        db.add(orm.Role(name=f"primehub-share-{server.id}", scopes=["x"], groups=[team]))
        db.commit()
    assert sharing.revoke_group_share(db, server, "ml-team")
    assert sharing.group_share(db, server, "ml-team") is None
    assert orm.Role.find(db, f"primehub-share-{server.id}") is None


def test_ending_no_share_costs_two_lookups(db):
    """Every start and stop of a server ends its share with its launch group, mostly none: that
    must not load the group (its roles, every share with it) on the hub's event loop."""
    team = group(db, "ml-team")
    for index in range(20):
        other = running_server(db, f"user{index}", "")
        orm.Share.grant(db, other, team)
    server = running_server(db, "alice", "team")
    statements = []
    engine = db.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert not sharing.revoke_group_share(db, server, "ml-team")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    lookups = [s for s in statements if "FROM" in s]  # not the connection's ping (SELECT 1)
    assert len(lookups) == 2, lookups


def test_reconciling_deletes_roles_whose_share_or_server_is_gone(db):
    team = group(db, "ml-team")
    kept, revoked, stopped, renamed = (
        running_server(db, owner, "team") for owner in ("alice", "bob", "carol", "dave")
    )
    for server in (kept, revoked, stopped, renamed):
        sharing.grant_group_share(db, server, team)
    db.delete(orm.Share.find(db, revoked, share_with=team))  # JupyterHub's API revoked it
    stopped.server = None
    renamed.name = "renamed"
    orphan = orm.Role(name="primehub-share-999", scopes=["access:servers!server=x/y"])
    db.add(orphan)
    db.commit()
    deleted = sharing.reconcile_roles(db)
    assert set(deleted) == {
        *(f"primehub-share-{s.id}" for s in (revoked, stopped, renamed)),
        "primehub-share-999",
    }
    assert sharing.is_shared(db, kept, "ml-team")
    assert sharing.reconcile_roles(db) == []
