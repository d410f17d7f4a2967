"""Pod IPs on loopback, and the LD_PRELOAD shim that makes wildcard binds use them."""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import socket
import subprocess
from collections.abc import Iterable
from pathlib import Path

from ..paths import cache_dir

SOURCE = Path(__file__).with_name("podnet.c")


def shim_library() -> Path:
    """Compile podnet.c once per source version into the cache; return the shared object."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    target = cache_dir() / "lib" / f"podnet-{digest}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise FileNotFoundError("a C compiler is needed for the pod-network shim (apt install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_suffix(".so.tmp")
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(scratch), str(SOURCE), "-ldl"],
        check=True,
    )
    scratch.rename(target)
    return target


def _bindable(address: str, ports: Iterable[int]) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


class PodIPPool:
    """Hands out loopback addresses from ``network`` (skipping 127.0.0.0/24, the host's own).

    An address is only given out when the pod's declared container ports are free on it, so two
    test grounds on one machine do not collide.
    """

    def __init__(self, network: ipaddress.IPv4Network) -> None:
        self.network = network
        self.in_use: set[str] = set()
        self._reserved = ipaddress.IPv4Network("127.0.0.0/24")

    def allocate(self, ports: Iterable[int]) -> str:
        wanted = list(ports)
        for candidate in self.network.hosts():
            address = str(candidate)
            if (
                candidate in self._reserved
                or address in self.in_use
                or candidate.packed[-1] in (0, 255)
            ):
                continue
            if _bindable(address, wanted):
                self.in_use.add(address)
                return address
        raise RuntimeError(f"no free pod IP left in {self.network}")

    def release(self, address: str | None) -> None:
        if address:
            self.in_use.discard(address)
