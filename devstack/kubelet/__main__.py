"""``python -m devstack.kubelet --kubeconfig K --config nodes.yaml --state-dir D``"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from ..kubeapi import Credentials, KubeAPI
from .agent import LocalKubelet
from .config import KubeletConfig
from .server import ServingCerts


async def _main(args: argparse.Namespace) -> None:
    config = KubeletConfig.load(args.config)
    async with KubeAPI(Credentials.from_kubeconfig(args.kubeconfig, args.context)) as api:
        certs = None
        if args.tls_cert_file and args.tls_private_key_file and args.client_ca_file:
            certs = ServingCerts(args.tls_cert_file, args.tls_private_key_file, args.client_ca_file)
        kubelet = LocalKubelet(config, api, args.state_dir, certs, args.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(kubelet.run())
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        await kubelet.shutdown()
        runner.cancel()
        if runner in done:
            runner.result()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.kubelet", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument(
        "--config", type=Path, required=True, help="nodes and kubelet settings (YAML)"
    )
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument(
        "--tls-cert-file", type=Path, help="serving certificate of the kubelet endpoint (logs)"
    )
    parser.add_argument("--tls-private-key-file", type=Path)
    parser.add_argument(
        "--client-ca-file", type=Path, help="CA of the clients the endpoint answers (API server)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="kubelet endpoint port (default: a free one)"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
