"""``python -m devstack demo --state-dir .demo``: run the test ground in the foreground.

Ctrl-C or SIGTERM stops every process it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from .demo_hub import prepare_and_start_hub
from .ground import DATA_DIR, DEFAULT_NODES, TestGround
from .identity.process import IdentityServerProcess

DEMO_REALM = DATA_DIR / "realm.yaml"
DEMO_LOGINS = ("phadmin", "alice", "bob", "carol", "dave")


def demo(
    state_dir: Path,
    nodes: Path,
    identity_port: int,
    hub_port: int,
    internal_ports: tuple[int, int] = (8081, 8001),
) -> int:
    # A plain flag: a handler must not take locks (Event.set() would, and deadlock on a second signal).
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    print(f"Starting the test ground in {state_dir} ...", flush=True)
    ground = TestGround(state_dir, nodes_file=nodes).start()
    identity = IdentityServerProcess(
        DEMO_REALM, ground.cluster.logs / "identity.log", port=identity_port
    )
    hub = None
    try:
        identity.start()
        print("Starting JupyterHub ...", flush=True)
        hub = prepare_and_start_hub(ground, identity, hub_port, *internal_ports)
        print(
            "\n".join(
                [
                    "",
                    "primehub_spawner demo is running.",
                    f"  JupyterHub       http://127.0.0.1:{hub_port}/  (jupyterhub_config.py, namespace primehub)",
                    f"  Kubernetes API   {ground.cluster.server}  (kube-apiserver v1.20.2, real)",
                    f"  kubeconfig       {ground.kubeconfig}",
                    f"  local kubelet    nodes from {nodes}",
                    f"  identity server  {identity.issuer}  (Keycloak-compatible, realm from {DEMO_REALM.name})",
                    f"  demo logins      {', '.join(DEMO_LOGINS)} (password = username)",
                    f"  logs             {ground.cluster.logs}",
                    "",
                    f"  export KUBECONFIG={ground.kubeconfig}; kubectl get nodes",
                    "",
                    "Press Ctrl-C to stop everything.",
                ]
            ),
            flush=True,
        )
        while not stopping:
            time.sleep(0.2)
            parts = (
                ground.cluster.running(),
                ground.kubelet and ground.kubelet.alive(),
                identity.process and identity.process.alive(),
                hub.alive(),
            )
            if not all(parts):
                print("A test-ground process died; see the logs above. Stopping.", file=sys.stderr)
                return 1
        return 0
    finally:
        print("Stopping ...", flush=True)
        if hub is not None:
            hub.stop(grace=30)  # JupyterHub stops the notebook servers on its way out
        identity.stop()
        leftovers = ground.stop()
        if leftovers:
            print(f"Killed processes that outlived the stack: {leftovers}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="run the test ground in the foreground")
    run.add_argument("--state-dir", type=Path, default=Path(".demo"))
    run.add_argument("--nodes", type=Path, default=DEFAULT_NODES, help="fake nodes (YAML)")
    run.add_argument("--identity-port", type=int, default=8080)
    run.add_argument("--hub-port", type=int, default=8000)
    run.add_argument("--hub-internal-port", type=int, default=8081, help="the hub's API")
    run.add_argument("--proxy-api-port", type=int, default=8001, help="the proxy's REST API")
    args = parser.parse_args()
    return demo(
        args.state_dir,
        args.nodes,
        args.identity_port,
        args.hub_port,
        (args.hub_internal_port, args.proxy_api_port),
    )


if __name__ == "__main__":
    sys.exit(main())
