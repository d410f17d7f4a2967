"""The bwrap command line of one container: a root that mirrors the host read-only, plus its mounts.

The sandbox's root is bwrap's own tmpfs. Host top-level entries are bound into it read-only, except
the directories on the way to a mount target, which are rebuilt entry by entry so that mount points
such as ``/home/jovyan`` or ``/datasets/x`` exist only inside the container's view.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# Given their own fresh instance in every sandbox instead of the host's.
PRIVATE_TOP_LEVEL = frozenset({"proc", "dev", "tmp", "run", "lost+found"})
PODNET_TARGET = "/.devstack/podnet.so"


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


def _mirror(
    host_root: Path,
    relative: PurePosixPath,
    keep_out: set[str],
    ancestors: set[str],
    args: list[str],
) -> None:
    """Bind the entries of ``/relative`` read-only, recursing into mount-target ancestors."""
    try:
        entries = sorted(os.scandir(host_root / relative), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if relative == PurePosixPath(".") and entry.name in PRIVATE_TOP_LEVEL:
            continue
        target = str(PurePosixPath("/") / relative / entry.name)
        if target in keep_out:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), target]
        elif target in ancestors and entry.is_dir():
            args += ["--dir", target]
            _mirror(host_root, relative / entry.name, keep_out, ancestors, args)
        else:
            args += ["--ro-bind", entry.path, target]


def root_args(mount_targets: Sequence[str], host_root: Path = Path("/")) -> list[str]:
    """bwrap arguments that mirror ``host_root`` read-only without creating anything at mount targets."""
    targets = [str(PurePosixPath(t)) for t in mount_targets]
    args: list[str] = []
    _mirror(host_root, PurePosixPath("."), set(targets), _ancestors(targets), args)
    return args


def bwrap_argv(
    *,
    command: Sequence[str],
    mounts: Sequence[Mount],
    hostname: str,
    workdir: str | None,
    run_as: tuple[int, int] | None,
    podnet_so: Path | None,
    info_fd: int | None = None,
    host_root: Path = Path("/"),
    runtime_paths: Sequence[Path] = (),
) -> list[str]:
    """The full bwrap command line for one container.

    ``runtime_paths`` (the interpreter the commands come from) stay visible even under /tmp.
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
        "--hostname",
        hostname,
    ]
    if run_as is not None:
        uid, gid = run_as
        args += ["--unshare-user", "--uid", str(uid), "--gid", str(gid)]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    args += root_args(
        [m.target for m in ordered if not m.target.startswith(("/tmp/", "/dev/"))], host_root
    )
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/run"]
    for path in runtime_paths:  # the "image's" programs, where the private /tmp or /run hides them
        if PurePosixPath(path).parts[1:2] in (("tmp",), ("run",)):
            args += ["--ro-bind", str(path), str(path)]
    for mount in ordered:
        if mount.source is None:
            args += ["--tmpfs", mount.target]
        else:
            args += ["--ro-bind" if mount.read_only else "--bind", str(mount.source), mount.target]
    if podnet_so is not None:
        args += [
            "--ro-bind",
            str(podnet_so),
            PODNET_TARGET,
            "--setenv",
            "LD_PRELOAD",
            PODNET_TARGET,
        ]
    if workdir:
        args += ["--chdir", workdir]
    args += ["--", *command]
    return args
