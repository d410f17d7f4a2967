"""The demo's JupyterHub: the project's own jupyterhub_config.py, driven by environment variables."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import urllib.request
from pathlib import Path

from .ground import DATA_DIR, TestGround
from .hub import NODE_BIN
from .kubeapi import ApiError, Credentials, KubeAPI
from .manifests import apply_file, install_crds
from .processes import ManagedProcess
from .realms import Realm

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "primehub"
# Claims PrimeHub's console would create: the group volume, pv datasets and PHFS.
CLAIMS = ("project-ml-team", "dataset-docs", "dataset-mnist", "dataset-scratch", "primehub-store")
# ML Team's start-up profile, put in its volume once by a pod, as a member would write it.
ML_TEAM_PROFILE = """# ML Team's start-up profile: every member's server sources it at start (not in safe mode).
export ML_TEAM_DATA="$PRIMEHUB_GROUP_VOLUME_PATH/data"
"""


async def prepare_cluster(ground: TestGround) -> None:
    """CRDs, the demo namespace with its instance types, images, datasets and claims."""
    async with KubeAPI(Credentials.from_kubeconfig(ground.kubeconfig)) as api:
        await install_crds(api)
        await prepare_namespace(api, NAMESPACE)
        await create(api, f"/api/v1/namespaces/{NAMESPACE}/pods", profile_writer())


async def prepare_namespace(api: KubeAPI, namespace: str) -> None:
    """``namespace`` with the demo's claims and catalog; what exists already is left as it is."""
    claim_spec = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
    await create(api, "/api/v1/namespaces", {"metadata": {"name": namespace}})
    for name in CLAIMS:
        await create(
            api,
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
            {"metadata": {"name": name}, "spec": claim_spec},
        )
    try:
        await apply_file(api, DATA_DIR / "resources.yaml", namespace)
    except ApiError as error:
        if error.status != 409:
            raise


def profile_writer() -> dict:
    """A pod that writes ML Team's start-up profile into its volume, unless one is there."""
    script = (
        "mkdir -p /volume/.primehub && [ -e /volume/.primehub/profile ] || "
        'printf "%s" "$PROFILE" > /volume/.primehub/profile'
    )
    return {
        "metadata": {"name": "ml-team-profile-writer"},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 1000, "runAsGroup": 100, "fsGroup": 100},
            "containers": [
                {
                    "name": "write",
                    "image": "busybox",
                    "command": ["/bin/sh", "-c", script],
                    "env": [{"name": "PROFILE", "value": ML_TEAM_PROFILE}],
                    "volumeMounts": [{"name": "volume", "mountPath": "/volume"}],
                }
            ],
            "volumes": [
                {"name": "volume", "persistentVolumeClaim": {"claimName": "project-ml-team"}}
            ],
        },
    }


async def create(api: KubeAPI, path: str, body: dict) -> None:
    """POST ``body``; one that exists already (409) is fine."""
    try:
        await api.post(path, body)
    except ApiError as error:
        if error.status != 409:
            raise


def start_hub(
    ground: TestGround,
    realm: Realm,
    port: int = 8000,
    internal_port: int = 8081,
    proxy_api_port: int = 8001,
) -> ManagedProcess:
    """JupyterHub from jupyterhub_config.py with the demo's environment; returns once it answers."""
    directory = ground.state_dir / "hub"
    directory.mkdir(parents=True, exist_ok=True)
    crypt_key = directory / "crypt_key"
    if not crypt_key.exists():
        crypt_key.write_text(secrets.token_hex(32))
        crypt_key.chmod(0o600)
    public = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PATH": f"{NODE_BIN}:{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(ground.kubeconfig),
        "POD_NAMESPACE": NAMESPACE,
        "HUB_PUBLIC_URL": f"{public}/",
        "HUB_INTERNAL_URL": f"http://127.0.0.1:{internal_port}",
        "CONFIGPROXY_API_URL": f"http://127.0.0.1:{proxy_api_port}",
        "HUB_DB_URL": f"sqlite:///{directory / 'jupyterhub.sqlite'}",
        "HUB_COOKIE_SECRET_FILE": str(directory / "cookie_secret"),
        "CONFIGPROXY_COMMAND": str(NODE_BIN / "configurable-http-proxy"),
        "JUPYTERHUB_CRYPT_KEY": crypt_key.read_text(),
        "KEYCLOAK_URL": realm.url,
        "KEYCLOAK_REALM": realm.realm,
        "KEYCLOAK_CLIENT_SECRET": realm.client_secret,
        "OAUTH_CALLBACK_URL": f"{public}/hub/oauth_callback",
        "SINGLEUSER_CMD": str(Path(sys.executable).parent / "jupyterhub-singleuser"),
    }
    hub = ManagedProcess(
        "jupyterhub",
        [sys.executable, "-m", "jupyterhub", "-f", ROOT / "jupyterhub_config.py"],
        ground.cluster.logs / "jupyterhub.log",
        env=env,
        cwd=directory,
    ).start()

    def ready() -> bool:
        with urllib.request.urlopen(f"{public}/hub/api/", timeout=2) as response:  # noqa: S310
            return response.status == 200

    hub.wait_until(ready, timeout=90, what="the hub answering")
    return hub


def prepare_and_start_hub(ground: TestGround, realm: Realm, *ports: int) -> ManagedProcess:
    asyncio.run(prepare_cluster(ground))
    return start_hub(ground, realm, *ports)
