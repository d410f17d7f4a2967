"""jupyterhub-idle-culler's configuration (``--config-file``): each server's own idle timeout."""

from primehub_spawner.culling import cull_arbiter

c = get_config()  # noqa: F821 - injected by traitlets' config loader
c.IdleCuller.cull_arbiter_hook = cull_arbiter
