"""Secrets stay secret: no token or client secret in the hub's log or pages, auth state encrypted,
and a hub that would store auth state in the clear does not start."""

from __future__ import annotations

import json

import pytest

from devstack.hub import HubProcess
from devstack.realms import DEMO_CLIENT_SECRET, group, user
from tests.hub_stack import browser_session, log_in, primehub_config

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.mark.reliability("secrets")
async def test_tokens_and_the_client_secret_appear_in_no_log_or_page(hub_factory, tmp_path):
    hub = hub_factory()
    await log_in(hub, "alice")
    status, _ = hub.api("POST", "users/alice/server", {"user_options": {}})
    assert status in (201, 202)
    async with browser_session(hub, "alice") as http:
        pages = [
            (await http.get(f"{hub.url}/hub/{page}")).text for page in ("home", "spawn", "token")
        ]
    auth_state = hub.api("GET", "users/alice")[1]["auth_state"]
    secrets = {
        "client secret": DEMO_CLIENT_SECRET,
        "access token": auth_state["token_response"]["access_token"],
        "refresh token": auth_state["refresh_token"],
        "id token": auth_state["id_token"],
    }
    stored = json.dumps(auth_state)
    assert all(
        stored.count(value) == 1 for value in secrets.values() if value != DEMO_CLIENT_SECRET
    )
    assert "access_token" not in auth_state and "oauth_user" not in auth_state  # kept once, below
    hub_log = (hub.directory / "jupyterhub.log").read_text()
    for what, value in secrets.items():
        assert value and value not in hub_log, f"{what} in the hub's log"
        assert all(value not in page for page in pages), f"{what} in a page"
    database = (hub.directory / "jupyterhub.sqlite").read_bytes()
    assert auth_state["token_response"]["access_token"].encode() not in database  # encrypted
    assert b"ml-team" in database  # (the groups are in the clear, as JupyterHub keeps them)


@pytest.mark.reliability("secrets")
async def test_the_hub_refuses_to_start_without_a_crypt_key(realm, tmp_path, test_ground):
    hub = HubProcess(
        tmp_path / "hub",
        environment={"KUBECONFIG": str(test_ground.kubeconfig), "JUPYTERHUB_CRYPT_KEY": ""},
    )
    hub.config = primehub_config(hub, realm, "default")
    with pytest.raises(RuntimeError, match="exited"):
        hub.start(timeout=60)
    assert "JUPYTERHUB_CRYPT_KEY" in (hub.directory / "jupyterhub.log").read_text()


@pytest.mark.reliability("secrets")
async def test_malformed_attributes_reach_the_log_by_name_not_value(hub_factory, realm_factory):
    """Credentials in group attributes (MLflow's artifact store) and a user's variables, malformed
    or multi-valued in Keycloak, are logged by attribute name and reason only."""
    secret = "AKIA-s3cr3t-in-an-attribute"
    realm = realm_factory.variant()
    group(realm, "ml-team")["attributes"] |= {
        "mlflow-artifact-envs": [f"AWS_SECRET_ACCESS_KEY={secret}"],  # not JSON
        "mlflow-ui-url": [f"https://{secret}.example.org", "https://other.example.org"],
    }
    user(realm, "alice")["attributes"]["predefinedEnvs"] = [json.dumps([{"value": secret}])]
    hub = hub_factory(realm)
    await log_in(hub, "alice")
    status, _ = hub.api("POST", "users/alice/server", {"user_options": {"group": "ml-team"}})
    assert status in (201, 202), hub.log()
    hub_log = (hub.directory / "jupyterhub.log").read_text()
    assert "group /ml-team: attribute mlflow-artifact-envs ignored: not JSON" in hub_log
    assert "group /ml-team: attribute mlflow-ui-url has 2 values; using the first" in hub_log
    assert "user alice: attribute predefinedEnvs[0] ignored: not {name, value}" in hub_log
    assert secret not in hub_log
