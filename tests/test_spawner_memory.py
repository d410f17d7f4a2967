"""What a PrimeHubSpawner keeps alive between requests."""

from __future__ import annotations

import gc

import pytest

from primehub_spawner import PrimeHubSpawner

pytestmark = pytest.mark.cluster  # a spawner loads a kubeconfig when created (the test ground's)


class Handler:
    """Stands for the request handler JupyterHub's spawn page assigns to ``spawner.handler``."""


async def test_the_request_handler_is_let_go_when_its_request_ends(test_ground):
    spawner = PrimeHubSpawner(_mock=True)
    handler = Handler()
    spawner.handler = handler  # as JupyterHub's spawn page does, and never undoes
    assert spawner.handler is handler  # while the request is handled
    del handler  # the request ends
    gc.collect()
    assert spawner.handler is None
    spawner.handler = None  # as JupyterHub does after a spawn
    assert spawner.handler is None
