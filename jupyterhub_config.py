"""JupyterHub configuration for primehub_spawner: the file deployments start from.

    jupyterhub -f jupyterhub_config.py

Every setting that differs between a cluster and a laptop comes from an environment variable, so the
same file serves a Kubernetes deployment (variables set by the chart) and the local demo
(`make demo` sets them). Settings of the plugin's own classes are documented in their traits.
"""

import os

import primehub_spawner

c = get_config()  # noqa: F821 - injected by JupyterHub's config loader


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "")
    return value if value else default


# -- the hub process ---------------------------------------------------------------------------
c.JupyterHub.bind_url = env("HUB_PUBLIC_URL", "http://0.0.0.0:8000/")
c.JupyterHub.hub_bind_url = env("HUB_INTERNAL_URL", "http://0.0.0.0:8081")
if env("HUB_CONNECT_URL"):
    c.JupyterHub.hub_connect_url = env("HUB_CONNECT_URL")
c.JupyterHub.db_url = env("HUB_DB_URL", "sqlite:///jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = env("HUB_COOKIE_SECRET_FILE", "jupyterhub_cookie_secret")
c.JupyterHub.allow_named_servers = env("HUB_ALLOW_NAMED_SERVERS", "true").lower() == "true"
if env("CONFIGPROXY_COMMAND"):
    c.ConfigurableHTTPProxy.command = [env("CONFIGPROXY_COMMAND")]
if env("CONFIGPROXY_API_URL"):
    c.ConfigurableHTTPProxy.api_url = env("CONFIGPROXY_API_URL")

# -- login through Keycloak -----------------------------------------------------------------------
# PrimeHubAuthenticator reads its settings from the environment: KEYCLOAK_URL (required),
# KEYCLOAK_PUBLIC_URL, KEYCLOAK_REALM, KEYCLOAK_CLIENT_ID, KEYCLOAK_CLIENT_SECRET, KEYCLOAK_ROLE_PREFIX,
# PRIMEHUB_GLOBAL_GROUP, PRIMEHUB_ADMIN_ROLE, and OAUTH_CALLBACK_URL (the hub's /hub/oauth_callback).
# auth_state is encrypted with JUPYTERHUB_CRYPT_KEY, which JupyterHub requires.
c.JupyterHub.authenticator_class = "primehub"

# -- notebook servers on Kubernetes ----------------------------------------------------------------
# PrimeHubSpawner (KubeSpawner underneath): the group-centric Server Options form, validation and
# quotas. Its templates extend JupyterHub's (the home page shows each server's group).
c.JupyterHub.template_paths = [str(primehub_spawner.TEMPLATES_DIR)]
c.JupyterHub.spawner_class = "primehub"
c.KubeSpawner.namespace = env("POD_NAMESPACE", "default")
c.KubeSpawner.start_timeout = int(env("SPAWNER_START_TIMEOUT", "300"))
c.KubeSpawner.http_timeout = int(env("SPAWNER_HTTP_TIMEOUT", "30"))
c.KubeSpawner.node_selector = {"component": "singleuser-server"}
# The spawner mounts the home claim itself (at /home/jovyan, or /home/jovyan/user in safe mode), sized
# by the user's volumeCapacity or PRIMEHUB_HOME_CAPACITY; PHFS from PRIMEHUB_PHFS_CLAIM ("" = off).
# The home claim: claim-<user> for all of a user's servers (PrimeHub's one home per user), or one per
# server with PRIMEHUB_HOME_PER_SERVER=true (claim-<user>, claim-<user>--<server>). Do not set
# pvc_name_template to "claim-{username}{servername}": user al's server ice would get claim-alice.
if env("SINGLEUSER_CMD"):
    c.KubeSpawner.cmd = env("SINGLEUSER_CMD").split()

# -- idle culling ------------------------------------------------------------------------------------
# jupyterhub-idle-culler, run by the hub, stops each server after its own idle timeout: its instance
# type's idleTimeout, else its launch group's idle-timeout attribute, else PRIMEHUB_IDLE_TIMEOUT (1 hour
# by default; 0: none). PRIMEHUB_IDLE_CULLER=false turns the culler off; PRIMEHUB_CULL_EVERY is how
# often it looks (default 60 s). Kernels idle for PRIMEHUB_KERNEL_IDLE_TIMEOUT are culled inside servers.
if env("PRIMEHUB_IDLE_CULLER", "true").lower() == "true":
    from primehub_spawner import culling

    culling.enable_idle_culler(
        c,
        timeout=culling.env_duration("PRIMEHUB_IDLE_TIMEOUT", 3600),
        cull_every=culling.env_duration("PRIMEHUB_CULL_EVERY", 60),
    )

# -- working as a group ------------------------------------------------------------------------------
# Users may share a running server with the group it was launched in (home page, or
# POST /hub/api/primehub/shares/<user>/<server>); PRIMEHUB_GROUP_SHARING=false turns it off.
# Members removed in Keycloak lose access at their next refresh: keep JupyterHub's auth_refresh_age
# (300 s) or lower it.
if env("PRIMEHUB_GROUP_SHARING", "true").lower() == "true":
    from primehub_spawner import sharing

    sharing.enable_group_sharing(c)
