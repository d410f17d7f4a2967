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
    ],
)
def test_environment_overrides(monkeypatch, environ, section, key, expected):
    assert load(monkeypatch, **environ)[section][key] == expected


def test_every_variable_the_config_reads_is_covered_above():
    covered = {
        name for case in test_environment_overrides.pytestmark[0].args[1] for name in case[0]
    }
    assert set(READ) == covered, "add a case for each environment variable"
