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
from .ground import DEFAULT_NODES, TestGround
from .keycloak import KEYCLOAK_VERSION, KeycloakProcess
from .realms import DEMO_REALM_FILE, Realm, demo_realm, realm_users


def demo(
    state_dir: Path,
    nodes: Path,
    keycloak_ports: tuple[int, int],
    hub_port: int,
    internal_ports: tuple[int, int] = (8081, 8001),
) -> int:
    # A plain flag: a handler must not take locks (Event.set() would, and deadlock on a second signal).
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    print(f"Starting the test ground in {state_dir} ...", flush=True)
    # The hub's database outlives a run, so the cluster does too: a returning user's server finds
    # the home claim (and files) the hub remembers.
    ground = TestGround(state_dir, nodes_file=nodes, keep_data=True).start()
    realm_data = demo_realm(hub_url=f"http://127.0.0.1:{hub_port}")
    keycloak = KeycloakProcess(
        state_dir / "keycloak",
        ground.cluster.logs / "keycloak.log",
        port=keycloak_ports[0],
        management_port=keycloak_ports[1],
        realms=[realm_data],
    )
    hub = None
    try:
        print(f"Starting Keycloak {KEYCLOAK_VERSION} ...", flush=True)
        keycloak.start()
        realm = Realm(keycloak.url, realm_data["realm"])
        print("Starting JupyterHub ...", flush=True)
        hub = prepare_and_start_hub(ground, realm, hub_port, *internal_ports)
        print(
            "\n".join(
                [
                    "",
                    "primehub_spawner demo is running.",
                    f"  JupyterHub       http://127.0.0.1:{hub_port}/  (jupyterhub_config.py, namespace primehub)",
                    f"  Kubernetes API   {ground.cluster.server}  (kube-apiserver v1.20.2, real)",
                    f"  kubeconfig       {ground.kubeconfig}",
                    f"  local kubelet    nodes from {nodes}",
                    f"  Keycloak         {realm.issuer}  (Keycloak {KEYCLOAK_VERSION}, realm from {DEMO_REALM_FILE.name})",
                    f"  admin console    {keycloak.url}/admin/master/console/#/{realm.realm}  (admin / admin)",
                    f"  demo logins      {', '.join(realm_users(realm_data))} (password = username)",
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
                keycloak.process and keycloak.process.alive(),
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
        keycloak.stop()
        leftovers = ground.stop()
        if leftovers:
            print(f"Killed processes that outlived the stack: {leftovers}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="run the test ground in the foreground")
    run.add_argument("--state-dir", type=Path, default=Path(".demo"))
    run.add_argument("--nodes", type=Path, default=DEFAULT_NODES, help="fake nodes (YAML)")
    run.add_argument("--keycloak-port", type=int, default=8080)
    run.add_argument(
        "--keycloak-management-port", type=int, default=9000, help="health and metrics"
    )
    run.add_argument("--hub-port", type=int, default=8000)
    run.add_argument("--hub-internal-port", type=int, default=8081, help="the hub's API")
    run.add_argument("--proxy-api-port", type=int, default=8001, help="the proxy's REST API")
    args = parser.parse_args()
    return demo(
        args.state_dir,
        args.nodes,
        (args.keycloak_port, args.keycloak_management_port),
        args.hub_port,
        (args.hub_internal_port, args.proxy_api_port),
    )


if __name__ == "__main__":
    sys.exit(main())
