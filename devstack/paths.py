"""Where the test ground finds its binaries and keeps its caches."""

import os
import shutil
from pathlib import Path


def cache_dir() -> Path:
    """The per-machine cache (built kube-apiserver, compiled helpers), outside the repository."""
    default = Path.home() / ".cache" / "primehub-spawner"
    return Path(os.environ.get("PRIMEHUB_SPAWNER_CACHE", default))


def kube_apiserver_bin() -> Path:
    path = cache_dir() / "bin" / "kube-apiserver"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run `make setup` (scripts/build-kube-apiserver.sh)"
        )
    return path


def system_bin(name: str) -> Path:
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed: run scripts/install-system-packages.sh")
    return Path(found)
