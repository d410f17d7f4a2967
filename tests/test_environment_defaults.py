"""Every setting of the plugin's classes that containers need takes its default from the environment;
configuration beats the environment; a variable that does not parse is an error naming it."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from primehub_spawner import PrimeHubAuthenticator, PrimeHubSpawner

CASES = [
    (PrimeHubAuthenticator, "group_cache_ttl", "PRIMEHUB_GROUP_CACHE_TTL", "30", 30.0, 300.0),
    (
        PrimeHubAuthenticator,
        "identity_service_grace",
        "PRIMEHUB_IDENTITY_SERVICE_GRACE",
        "5",
        5.0,
        600.0,
    ),
    (PrimeHubAuthenticator, "admin_api_timeout", "KEYCLOAK_ADMIN_API_TIMEOUT", "2.5", 2.5, 10.0),
    (PrimeHubAuthenticator, "required_role", "PRIMEHUB_REQUIRED_ROLE", "hub-user", "hub-user", ""),
    (
        PrimeHubAuthenticator,
        "refused_launch_refresh_interval",
        "PRIMEHUB_REFUSED_LAUNCH_REFRESH_INTERVAL",
        "0",
        0.0,
        10.0,
    ),
    (
        PrimeHubAuthenticator,
        "launch_context_max_age",
        "PRIMEHUB_LAUNCH_CONTEXT_MAX_AGE",
        "60",
        60.0,
        0.0,
    ),
    (
        PrimeHubAuthenticator,
        "post_logout_redirect_url",
        "KEYCLOAK_POST_LOGOUT_REDIRECT_URL",
        "https://hub/bye",
        "https://hub/bye",
        "",
    ),
    (
        PrimeHubAuthenticator,
        "oidc_max_concurrent_requests",
        "PRIMEHUB_OIDC_MAX_CONCURRENT_REQUESTS",
        "20",
        20,
        100,
    ),
    (PrimeHubSpawner, "home_capacity", "PRIMEHUB_HOME_CAPACITY", "20Gi", "20Gi", "1Gi"),
    (PrimeHubSpawner, "phfs_claim", "PRIMEHUB_PHFS_CLAIM", "store", "store", "primehub-store"),
    (
        PrimeHubSpawner,
        "gitsync_host_root",
        "PRIMEHUB_GITSYNC_HOST_ROOT",
        "/git",
        "/git",
        "/home/dataset",
    ),
    (
        PrimeHubSpawner,
        "scheduling_replaces_defaults",
        "PRIMEHUB_SCHEDULING_REPLACES_DEFAULTS",
        "false",
        False,
        True,
    ),
    (PrimeHubSpawner, "home_per_server", "PRIMEHUB_HOME_PER_SERVER", "true", True, False),
    (PrimeHubSpawner, "prompt_readiness", "PRIMEHUB_PROMPT_READINESS", "false", False, True),
]


def params(cases):
    """A spawner needs a cluster to be created (KubeSpawner loads a kubeconfig)."""
    return [
        pytest.param(*case, id=case[1], marks=[pytest.mark.cluster] * (case[0] is PrimeHubSpawner))
        for case in cases
    ]


@pytest.fixture
def make(request):
    """An instance of the class; a spawner loads a kubeconfig when created (the test ground's)."""

    def create(cls, config=None):
        settings = Config({cls.__name__: config or {}})
        if cls is PrimeHubSpawner:
            request.getfixturevalue("test_ground")
            return cls(config=settings, _mock=True)
        return cls(config=settings)

    return create


@pytest.mark.parametrize(("cls", "trait", "variable", "raw", "parsed", "default"), params(CASES))
async def test_environment_then_configuration(
    monkeypatch, make, cls, trait, variable, raw, parsed, default
):
    monkeypatch.delenv(variable, raising=False)
    assert getattr(make(cls), trait) == default
    monkeypatch.setenv(variable, raw)
    assert getattr(make(cls), trait) == parsed
    assert getattr(make(cls, {trait: default}), trait) == default  # configuration wins


@pytest.mark.parametrize(
    ("cls", "trait", "variable", "bad"),
    params(
        [
            (PrimeHubAuthenticator, "group_cache_ttl", "PRIMEHUB_GROUP_CACHE_TTL", "five"),
            (
                PrimeHubAuthenticator,
                "oidc_max_concurrent_requests",
                "PRIMEHUB_OIDC_MAX_CONCURRENT_REQUESTS",
                "2.5",
            ),
            (
                PrimeHubSpawner,
                "scheduling_replaces_defaults",
                "PRIMEHUB_SCHEDULING_REPLACES_DEFAULTS",
                "maybe",
            ),
        ]
    ),
)
async def test_a_value_that_does_not_parse_names_the_variable(
    monkeypatch, make, cls, trait, variable, bad
):
    monkeypatch.setenv(variable, bad)
    with pytest.raises(ValueError, match=rf"\${variable}='{bad}' is not a"):
        getattr(make(cls), trait)


@pytest.mark.cluster
async def test_an_empty_phfs_claim_disables_phfs(monkeypatch, make):
    monkeypatch.setenv("PRIMEHUB_PHFS_CLAIM", "")
    assert make(PrimeHubSpawner).phfs_claim == ""
