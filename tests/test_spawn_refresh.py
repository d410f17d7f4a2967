"""spawn_refresh.prepared_alongside: a launch prepared while the refresh runs is used only if the
refresh left the launch state as it was; otherwise it is prepared again, as the refresh-first
order would have prepared it."""

from __future__ import annotations

import asyncio
import gc

import pytest
from tornado import web

from primehub_spawner import spawn_refresh


class Launches:
    """``prepare`` records each preparation and the launch state it saw; the state is changed by
    the refresh (``refresh``) when ``changes`` is set."""

    def __init__(self, changes: bool = False, refuse_stale: bool = False) -> None:
        self.state = "stored"
        self.changes = changes
        self.refuse_stale = refuse_stale
        self.prepared: list[tuple[str, bool]] = []  # (state seen, refresh answered yet)
        self.answered = asyncio.Event()

    async def refresh(self, result: object = "user") -> object:
        await asyncio.sleep(0.01)
        if self.changes:
            self.state = "refreshed"
        self.answered.set()
        return result

    async def prepare(self) -> str:
        self.prepared.append((self.state, self.answered.is_set()))
        if self.refuse_stale and self.state == "stored":
            raise ValueError("not a member")
        return f"launch from {self.state}"

    async def run(self, result: object = "user") -> str:
        refresh = asyncio.ensure_future(self.refresh(result))
        return await spawn_refresh.prepared_alongside(
            refresh, "alice", self.prepare, lambda: self.state
        )


async def test_an_unchanged_refresh_keeps_the_launch_prepared_meanwhile():
    launches = Launches()
    assert await launches.run() == "launch from stored"
    assert launches.prepared == [("stored", False)]  # once, before the refresh answered


async def test_a_refresh_that_changed_the_state_prepares_the_launch_again():
    launches = Launches(changes=True)
    assert await launches.run() == "launch from refreshed"
    assert launches.prepared == [("stored", False), ("refreshed", True)]


async def test_a_refusal_from_the_stale_state_gives_way_to_the_refreshed_one():
    launches = Launches(changes=True, refuse_stale=True)
    assert await launches.run() == "launch from refreshed"


async def test_a_refusal_from_an_unchanged_state_stands():
    launches = Launches(refuse_stale=True)
    with pytest.raises(ValueError, match="not a member"):
        await launches.run()
    assert launches.answered.is_set()  # refused only once the refresh had answered


@pytest.mark.parametrize("refuse_stale", [False, True])
async def test_a_login_to_renew_is_a_403_whatever_the_launch(refuse_stale):
    launches = Launches(refuse_stale=refuse_stale)
    with pytest.raises(web.HTTPError) as raised:
        await launches.run(result=None)
    assert raised.value.status_code == 403
    assert raised.value.log_message == "auth has expired for alice, login again"


async def test_a_refresh_that_failed_unexpectedly_is_a_500_saying_so():
    async def failing() -> None:
        raise OSError("Keycloak unreachable")

    launches = Launches()
    with pytest.raises(web.HTTPError) as raised:
        await spawn_refresh.prepared_alongside(
            asyncio.ensure_future(failing()), "alice", launches.prepare, lambda: "same"
        )
    assert raised.value.status_code == 500
    assert raised.value.log_message == "refreshing the login of alice failed"
    assert isinstance(raised.value.__cause__, OSError)


async def test_an_abandoned_refresh_is_retrieved():
    loop = asyncio.get_running_loop()
    unretrieved = []
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))

    class Handler:
        async def refresh_auth(self, user: object, force: bool = False) -> None:
            raise OSError("Keycloak unreachable")

    abandoned = spawn_refresh.begin(Handler(), object())
    await asyncio.sleep(0.01)
    assert abandoned.done()
    del abandoned
    gc.collect()
    assert unretrieved == []  # no "Task exception was never retrieved"
