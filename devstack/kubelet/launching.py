"""What one container instance's sandbox is made of: its mounts (volumes, the "image's" writable
directories, the test ground's state hidden) and the bwrap command line."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import cache_dir
from .config import KubeletConfig
from .identity import Identity
from .sandbox import Mount, bwrap_argv
from .volumes import container_mounts

INFO_FD = "{info-fd}"


def hidden_state(state_dir: Path, mounts: list[Mount]) -> list[Mount]:
    """Empty tmpfs over the machine's devstack cache (every test ground's state, built binaries)
    and over the test ground's own state (tokens, every pod's volumes), which the read-only host
    mirror would otherwise show to every container; a real node shows none of it. The state's own
    tmpfs also names it on every sandbox's command line (the test ground's leftover check)."""
    hidden = dict.fromkeys((cache_dir().resolve(), Path(state_dir)))
    return [
        Mount(target=str(path), source=None)
        for path in hidden
        if not any(path.is_relative_to(m.target) for m in mounts)  # a volume covers it already
    ]


def image_dirs(mounts: list[Mount], identity: Identity, scratch: Path) -> list[Mount]:
    """The "image's" directories (``image_dirs``, a fresh tmpfs per instance for root) as an image
    built for the container's user has them: owned by it. For another user than root each one is
    a directory under ``scratch`` (the container's), fresh for each instance and given to the
    user (a tmpfs is root's)."""
    if identity.uid == 0:
        return mounts
    shutil.rmtree(scratch, ignore_errors=True)
    given = []
    for mount in mounts:
        if mount.source is None:
            digest = hashlib.sha256(mount.target.encode()).hexdigest()[:12]
            directory = scratch / digest
            directory.mkdir(parents=True)
            os.chown(directory, identity.uid, identity.gid)
            directory.chmod(0o755)
            mount = Mount(target=mount.target, source=directory)
        given.append(mount)
    return given


@dataclass(frozen=True)
class Sandbox:
    """Where one pod's containers run: the node's settings and the pod's own."""

    config: KubeletConfig
    state_dir: Path
    pod_dir: Path
    hostname: str
    bwrap: str
    podnet_so: Path | None

    def argv(
        self,
        container: dict[str, Any],
        dirs: dict[str, tuple[Path, bool]],
        identity: Identity,
        command: list[str],
    ) -> list[str]:
        """bwrap's command line for a new instance of the container, ``INFO_FD`` standing for the
        info pipe (raises MountError for a bad volumeMount)."""
        mounts = container_mounts(container, dirs, self.config.image_dirs)
        mounts = image_dirs(mounts, identity, self.pod_dir / "containers" / container["name"])
        mounts += hidden_state(self.state_dir, mounts)
        argv = bwrap_argv(
            command=command,
            mounts=mounts,
            hostname=self.hostname,
            workdir=container.get("workingDir") or self.config.image_workdir,
            identity=identity,
            podnet_so=self.podnet_so,
            info_fd=-1,
            runtime_paths=self.config.runtime_paths,
        )
        argv = [self.bwrap if arg == "bwrap" else arg for arg in argv]
        argv[argv.index("--info-fd") + 1] = INFO_FD
        return argv
