"""primehub_spawner: PrimeHub's group-centric notebook launcher as a JupyterHub plugin."""

from ._data import TEMPLATES_DIR
from .authenticator import PrimeHubAuthenticator
from .spawner import PrimeHubSpawner

__version__ = "0.1.0.dev0"

__all__ = ["TEMPLATES_DIR", "PrimeHubAuthenticator", "PrimeHubSpawner", "__version__"]
