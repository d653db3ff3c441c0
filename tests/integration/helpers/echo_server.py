"""A TCP echo server for a network namespace: prints its port, serves until killed or --lifetime.

    python3 echo_server.py --host 10.200.1.2 [--port 0] [--lifetime 120] [--close]

--close: every connection is accepted and closed at once (a sink for many short connections).
"""

import argparse
import socket
import sys
import threading
import time


def serve(conn: socket.socket, idle: float) -> None:
    with conn:
        # A connection may stay silent as long as the server lives: a test that keeps its first
        # connection open while it makes many others (slower under a sanitizer) must find it open.
        conn.settimeout(idle)
        try:
            for _ in range(1 << 20):
                data = conn.recv(65536)
                if not data:
                    conn.shutdown(socket.SHUT_WR)
                    return
                conn.sendall(data)
        except OSError:
            pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("--close", action="store_true")
    args = ap.parse_args()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.host, args.port))
    srv.listen(1024)
    srv.settimeout(0.2)
    print(srv.getsockname()[1], flush=True)
    end = time.monotonic() + args.lifetime
    while time.monotonic() < end:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        if args.close:
            conn.close()
            continue
        threading.Thread(target=serve, args=(conn, args.lifetime), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
