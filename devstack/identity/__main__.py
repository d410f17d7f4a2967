"""``python -m devstack.identity --realm realm.yaml [--port 8080]``: run the identity server.

Prints ``listening on http://127.0.0.1:<port>`` once it accepts connections; a bad realm file stops
it at start with a message naming the file and the entry.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from .realm import RealmFileError, load_realm
from .server import make_app


async def serve(args: argparse.Namespace) -> None:
    realm = load_realm(args.realm)
    if args.access_token_lifespan is not None:
        realm.access_token_lifespan = args.access_token_lifespan
    if args.access_code_lifespan is not None:
        realm.access_code_lifespan = args.access_code_lifespan
    if args.sso_session_idle_timeout is not None:
        realm.sso_session_idle_timeout = args.sso_session_idle_timeout
    sockets = bind_sockets(args.port, address=args.host)
    port = sockets[0].getsockname()[1]
    public_url = args.public_url or f"http://{args.host}:{port}"
    _, application = make_app(realm, public_url)
    server = HTTPServer(application, xheaders=True)
    server.add_sockets(sockets)
    print(f"listening on {public_url} (realm {realm.name})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.identity", description=__doc__)
    parser.add_argument("--realm", type=Path, required=True, help="realm file (YAML)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument(
        "--public-url", default=None, help="base URL in tokens and links (default: the bound one)"
    )
    parser.add_argument(
        "--access-token-lifespan", type=int, default=None, help="seconds; overrides the realm"
    )
    parser.add_argument(
        "--access-code-lifespan", type=int, default=None, help="seconds; overrides the realm"
    )
    parser.add_argument(
        "--sso-session-idle-timeout", type=int, default=None, help="seconds; overrides the realm"
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(args))
    except RealmFileError as error:
        print(f"identity server: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
