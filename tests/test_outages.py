"""Which errors are an API-server outage, and what the spawner makes of them."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from primehub_spawner.outages import KubernetesUnavailable, is_outage, outage_is_503


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ApiException(status=503, reason="server is starting"), True),
        (ApiException(status=500), True),
        (ApiException(status=0), True),  # no answer at all
        (ApiException(status=404), False),
        (ApiException(status=403), False),
        (aiohttp.ClientConnectionError("refused"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError(), True),
        (ValueError("a bug"), False),
        (KeyError("metadata"), False),
    ],
    ids=lambda value: value if isinstance(value, bool) else type(value).__name__,
)
def test_what_counts_as_an_outage(error, outage):
    assert is_outage(error) is outage


def test_an_outage_becomes_a_503_naming_the_kubernetes_api():
    with pytest.raises(KubernetesUnavailable) as raised, outage_is_503("checking the launch"):
        raise aiohttp.ClientConnectionError("refused")
    assert raised.value.status_code == 503
    assert raised.value.reason == "kubernetes_unavailable"
    assert raised.value.message.startswith("The Kubernetes API is unavailable, so checking the")
    assert "refused" in raised.value.log_message  # the cause goes to the log, not to the user
    assert "refused" not in raised.value.message


def test_other_errors_pass_through():
    with pytest.raises(ApiException), outage_is_503("checking the launch"):
        raise ApiException(status=404)
