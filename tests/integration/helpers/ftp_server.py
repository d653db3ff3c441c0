"""An FTP server (pyftpdlib) for a network namespace: anonymous, read-only, active and passive mode.

    python3 ftp_server.py --host 203.0.113.7 --root DIR [--port 21] [--lifetime 300]

Prints "ready" once it listens; serves until killed or --lifetime seconds have passed.
"""

import argparse
import logging
import sys
import time

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=21)
    ap.add_argument("--root", required=True)
    ap.add_argument("--lifetime", type=float, default=300.0)
    args = ap.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(args.root)
    handler = type("Handler", (FTPHandler,), {})
    handler.authorizer = authorizer
    # The data connection must go to the address the control connection came from (the gateway's).
    handler.permit_foreign_addresses = False
    server = FTPServer((args.host, args.port), handler)
    print("ready", flush=True)
    deadline = time.monotonic() + args.lifetime
    while time.monotonic() < deadline:
        server.serve_forever(timeout=0.2, blocking=False)
    server.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
