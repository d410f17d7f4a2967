"""The bwrap command line of one container: a root that mirrors the host read-only, plus its mounts.

The sandbox's root is bwrap's own tmpfs. Host top-level entries are bound into it read-only, except
the directories on the way to a mount target, which are rebuilt entry by entry (with the host
directory's mode) so that mount points such as ``/home/jovyan`` or ``/datasets/x`` exist only
inside the container's view.

bwrap runs as root without a user namespace, so the container's uid is the host's: a container
with another identity than plain root starts as root holding only CAP_SETUID, CAP_SETGID and
CAP_SETPCAP, and ``setpriv`` becomes its uid, gid and groups and empties its bounding set before
running the command (see identity.py).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .identity import Identity

# Given their own fresh instance in every sandbox instead of the host's.
PRIVATE_TOP_LEVEL = frozenset({"proc", "dev", "tmp", "run", "lost+found"})
PODNET_TARGET = "/.devstack/podnet.so"
IDENTITY_CHANGE = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


@dataclass(frozen=True)
class Mount:
    """A mount inside the container: a host path bound at ``target``, or a fresh tmpfs (source None)."""

    target: str
    source: Path | None
    read_only: bool = False

    @property
    def depth(self) -> int:
        return len(PurePosixPath(self.target).parts)


def _ancestors(targets: Iterable[str]) -> set[str]:
    found = set()
    for target in targets:
        for parent in PurePosixPath(target).parents:
            found.add(str(parent))
    return found


@dataclass
class _Mirror:
    """The host's root mirrored read-only into the sandbox, directory by directory."""

    host_root: Path
    keep_out: set[str]  # mount targets: not mirrored
    ancestors: set[str]  # rebuilt entry by entry
    reach: set[str] = field(default_factory=set)  # rebuilt traversable by all (runtime paths)
    private: bool = False  # leave out what only root may traverse into on the host
    args: list[str] = field(default_factory=list)

    def walk(self, relative: PurePosixPath) -> None:
        """Bind the entries of ``/relative`` read-only, recursing into mount-target ancestors."""
        try:
            directory = os.stat(self.host_root / relative)
            entries = sorted(os.scandir(self.host_root / relative), key=lambda entry: entry.name)
        except OSError:
            return
        closed = self.private and not directory.st_mode & stat.S_IXOTH
        for entry in entries:
            if relative == PurePosixPath(".") and entry.name in PRIVATE_TOP_LEVEL:
                continue
            target = str(PurePosixPath("/") / relative / entry.name)
            if target in self.keep_out or (closed and target not in self.ancestors):
                continue
            if entry.is_symlink():
                self.args += ["--symlink", os.readlink(entry.path), target]
            elif target in self.ancestors and entry.is_dir():
                mode = stat.S_IMODE(entry.stat().st_mode)
                if target in self.reach:
                    mode |= 0o111
                self.args += ["--perms", f"{mode:04o}", "--dir", target]
                self.walk(relative / entry.name)
            else:
                self.args += ["--ro-bind", entry.path, target]


def root_args(
    mount_targets: Sequence[str],
    host_root: Path = Path("/"),
    reachable: Sequence[str] = (),
    private: bool = False,
) -> list[str]:
    """bwrap arguments that mirror ``host_root`` read-only without creating anything at mount targets.

    ``reachable`` paths are left out too (the caller binds them) and every directory on the way to
    them can be traversed by anyone; ``private`` leaves out what the host lets only its owner
    traverse into, but for the ways to targets (a non-root container could not go there anyway).
    """
    targets = [str(PurePosixPath(t)) for t in [*mount_targets, *reachable]]
    mirror = _Mirror(
        host_root,
        keep_out=set(targets),
        ancestors=_ancestors(targets),
        reach=_ancestors(str(PurePosixPath(r)) for r in reachable),
        private=private,
    )
    mirror.walk(PurePosixPath("."))
    return mirror.args


def _private_path(path: Path) -> bool:
    """Paths a bwrap mount of its own must keep visible over the sandbox's private /tmp or /run."""
    return PurePosixPath(path).parts[1:2] in (("tmp",), ("run",))


class _MountPoints:
    """Mounts over the mirrored root, their mount points made as a runtime makes them: a missing
    directory on the way is 0755 (bwrap would make it 0700, closed to a non-root container)."""

    def __init__(self, host_root: Path, args: list[str]) -> None:
        self.host_root = host_root
        self.args = args
        self.made: set[str] = set()
        self.mounted = ["/tmp", "/dev", "/run"]  # trees that are not the host's

    def _way_to(self, target: str) -> None:
        for parent in reversed(PurePosixPath(target).parents):
            path = str(parent)
            if path == "/" or path in self.made:
                continue
            self.made.add(path)
            inside = any(PurePosixPath(path).is_relative_to(m) for m in self.mounted)
            if inside or not os.path.lexists(self.host_root / path.lstrip("/")):
                self.args += ["--perms", "0755", "--dir", path]

    def bind(self, kind: str, source: Path, target: str) -> None:
        self._way_to(target)
        self.args += [kind, str(source), target]
        self.made.add(target)
        self.mounted.append(target)

    def tmpfs(self, target: str) -> None:
        self._way_to(target)
        self.args += ["--tmpfs", target]
        self.made.add(target)
        self.mounted.append(target)


def bwrap_argv(
    *,
    command: Sequence[str],
    mounts: Sequence[Mount],
    hostname: str,
    workdir: str | None,
    identity: Identity,
    podnet_so: Path | None,
    info_fd: int | None = None,
    host_root: Path = Path("/"),
    runtime_paths: Sequence[Path] = (),
) -> list[str]:
    """The full bwrap command line for one container.

    ``runtime_paths`` (the interpreter the commands come from) stay visible even under /tmp, and
    reachable by a non-root identity (a venv's interpreter may live under root's 0700 home).
    The container's environment is bwrap's own (pass it to the process, not on this command line,
    where every ``ps`` would show its tokens); only the pod-network shim is added here.
    """
    ordered = sorted(mounts, key=lambda m: m.depth)
    args = [
        "bwrap",
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--cap-drop",
        "ALL",
    ]
    capabilities = identity.capabilities
    if not identity.plain_root:
        capabilities = (*IDENTITY_CHANGE, *capabilities)
    for capability in capabilities:
        args += ["--cap-add", capability]
    args += ["--hostname", hostname]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    reachable = [] if identity.uid == 0 else [p for p in runtime_paths if not _private_path(p)]
    targets = [m.target for m in ordered if not m.target.startswith(("/tmp/", "/dev/"))]
    args += root_args(targets, host_root, [str(p) for p in reachable], private=identity.uid != 0)
    for path in reachable:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm"]
    args += ["--perms", "1777", "--tmpfs", "/tmp", "--dir", "/run"]
    points = _MountPoints(host_root, args)
    for path in runtime_paths:  # the "image's" programs, where the private /tmp or /run hides them
        if _private_path(path):
            points.bind("--ro-bind", path, str(path))
    for mount in ordered:
        if mount.source is None:
            points.tmpfs(mount.target)
        else:
            points.bind("--ro-bind" if mount.read_only else "--bind", mount.source, mount.target)
    if podnet_so is not None:
        points.bind("--ro-bind", podnet_so, PODNET_TARGET)
        args += ["--setenv", "LD_PRELOAD", PODNET_TARGET]
    if workdir:
        args += ["--chdir", workdir]
    prefix = [] if identity.plain_root else identity.setpriv()
    args += ["--", *prefix, *command]
    return args
