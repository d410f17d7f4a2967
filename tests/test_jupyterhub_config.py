"""The shipped jupyterhub_config.py loads with JupyterHub's own loader and follows the environment."""

from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

CONFIG = Path(__file__).resolve().parent.parent / "jupyterhub_config.py"


def load(monkeypatch, **environ):
    for name in ("POD_NAMESPACE", "HUB_PUBLIC_URL", "HUB_ALLOW_NAMED_SERVERS", "SINGLEUSER_CMD"):
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
    assert config.KubeSpawner.pvc_name_template == "claim-{username}{servername}"
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
