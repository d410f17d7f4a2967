"""The shipped jupyterhub_config.py loads with JupyterHub's own loader and follows the environment."""

import re
from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

CONFIG = Path(__file__).resolve().parent.parent / "jupyterhub_config.py"
READ = sorted(set(re.findall(r'env\("([A-Z_]+)"', CONFIG.read_text())))


def load(monkeypatch, **environ):
    for name in READ:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return PyFileConfigLoader(CONFIG.name, path=str(CONFIG.parent)).load_config()


def test_defaults(monkeypatch):
    config = load(monkeypatch)
    assert config.JupyterHub.spawner_class == "primehub"
    assert config.JupyterHub.template_paths[0].endswith("templates")
    assert config.JupyterHub.authenticator_class == "primehub"
    assert config.KubeSpawner.namespace == "default"
    assert config.JupyterHub.allow_named_servers is True
    assert "pvc_name_template" not in config.KubeSpawner  # PrimeHubSpawner's home_per_server
    assert "volumes" not in config.KubeSpawner  # the spawner mounts the home volume itself


@pytest.mark.parametrize(
    ("environ", "section", "key", "expected"),
    [
        ({"POD_NAMESPACE": "hub"}, "KubeSpawner", "namespace", "hub"),
        (
            {"HUB_PUBLIC_URL": "http://127.0.0.1:8000/"},
            "JupyterHub",
            "bind_url",
            "http://127.0.0.1:8000/",
        ),
        ({"HUB_ALLOW_NAMED_SERVERS": "false"}, "JupyterHub", "allow_named_servers", False),
        ({"HUB_INTERNAL_URL": "http://:8081"}, "JupyterHub", "hub_bind_url", "http://:8081"),
        (
            {"HUB_CONNECT_URL": "http://hub:8081"},
            "JupyterHub",
            "hub_connect_url",
            "http://hub:8081",
        ),
        ({"HUB_DB_URL": "sqlite://"}, "JupyterHub", "db_url", "sqlite://"),
        ({"HUB_COOKIE_SECRET_FILE": "/s"}, "JupyterHub", "cookie_secret_file", "/s"),
        ({"CONFIGPROXY_COMMAND": "/chp"}, "ConfigurableHTTPProxy", "command", ["/chp"]),
        ({"CONFIGPROXY_API_URL": "http://p:1"}, "ConfigurableHTTPProxy", "api_url", "http://p:1"),
        ({"SPAWNER_START_TIMEOUT": "60"}, "KubeSpawner", "start_timeout", 60),
        ({"SPAWNER_HTTP_TIMEOUT": "9"}, "KubeSpawner", "http_timeout", 9),
        (
            {"SINGLEUSER_CMD": "jupyterhub-singleuser --allow-root"},
            "KubeSpawner",
            "cmd",
            ["jupyterhub-singleuser", "--allow-root"],
        ),
        ({"PRIMEHUB_IDLE_CULLER": "false"}, "JupyterHub", "services", None),
    ],
)
def test_environment_overrides(monkeypatch, environ, section, key, expected):
    config = load(monkeypatch, **environ)
    if expected is None:
        assert key not in config[section]
    else:
        assert config[section][key] == expected


def culler(config) -> dict:
    services = getattr(config.JupyterHub.services, "_extend", config.JupyterHub.services)
    (service,) = [s for s in services if s["name"] == "idle-culler"]
    return service


@pytest.mark.parametrize(
    ("environ", "timeout", "every"),
    [({}, 3600, 60), ({"PRIMEHUB_IDLE_TIMEOUT": "20m", "PRIMEHUB_CULL_EVERY": "30"}, 1200, 30)],
)
def test_the_idle_culler_runs_by_default_with_each_servers_timeout(
    monkeypatch, environ, timeout, every
):
    config = load(monkeypatch, **environ)
    command = culler(config)["command"]
    assert command[1:3] == ["-m", "jupyterhub_idle_culler"]
    assert f"--timeout={timeout}" in command and f"--cull-every={every}" in command
    config_file = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--config="))
    assert Path(config_file).is_file()  # the arbiter reading each server's own timeout
    roles = getattr(config.JupyterHub.load_roles, "_extend", config.JupyterHub.load_roles)
    (role,) = [r for r in roles if r.get("services") == ["idle-culler"]]
    assert {"delete:servers", "admin:server_state"} <= set(role["scopes"])


def test_a_bad_idle_timeout_stops_the_hub_naming_the_variable(monkeypatch):
    with pytest.raises(ValueError, match="PRIMEHUB_IDLE_TIMEOUT"):
        load(monkeypatch, PRIMEHUB_IDLE_TIMEOUT="soon")


def test_every_variable_the_config_reads_is_covered_above():
    cases = [
        *test_environment_overrides.pytestmark[0].args[1],
        *test_group_sharing_follows_the_environment.pytestmark[0].args[1],
    ]
    covered = {name for case in cases for name in case[0]}
    assert set(READ) == covered, "add a case for each environment variable"


@pytest.mark.parametrize(
    ("environ", "shared"), [({}, True), ({"PRIMEHUB_GROUP_SHARING": "false"}, False)]
)
def test_group_sharing_follows_the_environment(monkeypatch, environ, shared):
    from primehub_spawner.sharing import GROUP_SHARE_SCOPE

    config = load(monkeypatch, **environ)
    extra = (
        config.JupyterHub.extra_user_scopes if "extra_user_scopes" in config.JupyterHub else None
    )
    extra = extra.get_value(set()) if extra is not None else set()
    assert (f"{GROUP_SHARE_SCOPE}!user" in extra) is shared
    scopes = config.JupyterHub.custom_scopes if "custom_scopes" in config.JupyterHub else {}
    assert (GROUP_SHARE_SCOPE in scopes) is shared
