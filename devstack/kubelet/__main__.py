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


async def _main(args: argparse.Namespace) -> None:
    config = KubeletConfig.load(args.config)
    async with KubeAPI(Credentials.from_kubeconfig(args.kubeconfig, args.context)) as api:
        kubelet = LocalKubelet(config, api, args.state_dir)
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
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
