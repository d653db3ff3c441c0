"""A long-lived program's connections: the first stays open, COUNT more come and go.

usage: many_connections.py HOST ECHO_PORT SINK_PORT COUNT THREADS SECONDS

The first connection goes to the echo server and is kept; COUNT connections to the sink (which
closes each at once) are made by THREADS threads, each closed with a reset (no TIME_WAIT to run the
ports out), at most SECONDS in all. Every 1,000th checks its own getpeername. At the end the first
connection's getpeername and an echo on it. Prints one JSON line.
"""
import json
import socket
import struct
import sys
import threading
import time


def main() -> int:
    host, echo_port, sink_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    count, threads, seconds = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    first = socket.create_connection((host, echo_port), timeout=10)
    first_peer_before = list(first.getpeername()[:2])
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    state = {"next": 0, "made": 0, "errors": {}, "wrong_peer": 0}
    linger = struct.pack("ii", 1, 0)

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                n = state["next"]
                if n >= count:
                    return
                state["next"] = n + 1
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect((host, sink_port))
                wrong = n % 1000 == 0 and list(s.getpeername()[:2]) != [host, sink_port]
                with lock:
                    state["made"] += 1
                    state["wrong_peer"] += 1 if wrong else 0
            except OSError as e:
                with lock:
                    key = str(e.errno)
                    state["errors"][key] = state["errors"].get(key, 0) + 1
            finally:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                s.close()

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    first.sendall(b"still here\n")
    echo = b""
    while not echo.endswith(b"\n"):
        chunk = first.recv(100)
        if not chunk:
            break
        echo += chunk
    out = {"made": state["made"], "errors": state["errors"], "wrong_peer": state["wrong_peer"],
           "first_peer_before": first_peer_before, "first_peer_after": list(first.getpeername()[:2]),
           "first_echo": echo.decode(errors="replace").strip(),
           "seconds": round(time.monotonic() - started, 1)}
    first.close()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
