"""One PySocks connection through a SOCKS server, from a process of its own: the tests run it in
their resolver context, so a name the client resolves itself (rdns off) resolves from the test's
hosts file, never the machine's.

    python3 pysocks_client.py TYPE PROXY_HOST PROXY_PORT RDNS TARGET PORT [USER PASSWORD]

TYPE is socks4 or socks5; RDNS 1 sends TARGET to the server to resolve, 0 resolves it here first.
Sends one line and reads its echo. Prints one JSON object: {"echo": true, "local": [addresses
TARGET has here]} or {"error": "..."}; exits 0 only when the echo came back.
"""

import json
import os
import socket
import sys

import socks  # PySocks (Debian python3-socks)


def main() -> int:
    kind, proxy_host, proxy_port, rdns, target, port = sys.argv[1:7]
    user, password = (sys.argv[7], sys.argv[8]) if len(sys.argv) > 8 else (None, None)
    out = {}
    try:
        out["local"] = sorted({a[4][0] for a in socket.getaddrinfo(target, int(port), type=socket.SOCK_STREAM)})
    except socket.gaierror as exc:
        out["local"] = f"not resolved: {exc}"
    s = socks.socksocket()
    s.settimeout(float(os.environ.get("FWGATE_IT_TIMEOUT", "10")))
    s.set_proxy(socks.SOCKS5 if kind == "socks5" else socks.SOCKS4, proxy_host, int(proxy_port),
                rdns=rdns == "1", username=user, password=password)
    payload = f"pysocks {kind} rdns={rdns} {os.urandom(8).hex()}\n".encode()
    try:
        s.connect((target, int(port)))
        s.sendall(payload)
        got = b""
        for _ in range(1000):
            if len(got) >= len(payload):
                break
            chunk = s.recv(len(payload) - len(got))
            if not chunk:
                break
            got += chunk
    except (OSError, socks.ProxyError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(out))
        return 1
    finally:
        s.close()
    out["echo"] = got == payload
    if not out["echo"]:
        out["error"] = f"echo {got!r}, sent {payload!r}"
    print(json.dumps(out))
    return 0 if out["echo"] else 1


if __name__ == "__main__":
    sys.exit(main())
