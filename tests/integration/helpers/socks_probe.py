"""One SOCKS5 CONNECT from wherever this runs (e.g. inside a network namespace); prints JSON.

    python3 socks_probe.py PROXY_HOST PROXY_PORT DST_HOST DST_PORT [PAYLOAD]
Output: {"rep": N, "atyp": N, "echo": "..."} (echo only when REP is 0 and a payload was given),
or {"error": "..."}.
"""

import ipaddress
import json
import socket
import struct
import sys


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes: {buf!r}")
        buf += chunk
    return buf


def main() -> int:
    host, port, dst, dst_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    payload = sys.argv[5].encode() if len(sys.argv) > 5 else b""
    try:
        with socket.create_connection((host, port), timeout=10) as s:
            s.sendall(b"\x05\x01\x00")
            if recv_exact(s, 2) != b"\x05\x00":
                print(json.dumps({"error": "method not accepted"}))
                return 1
            ip = ipaddress.ip_address(dst)
            atyp = 1 if ip.version == 4 else 4
            s.sendall(bytes([5, 1, 0, atyp]) + ip.packed + struct.pack("!H", dst_port))
            head = recv_exact(s, 4)
            recv_exact(s, {1: 6, 4: 18}.get(head[3], 6) if head[3] != 3 else recv_exact(s, 1)[0] + 2)
            out = {"rep": head[1], "atyp": head[3]}
            if head[1] == 0 and payload:
                s.sendall(payload)
                out["echo"] = recv_exact(s, len(payload)).decode(errors="replace")
            print(json.dumps(out))
            return 0
    except OSError as exc:
        print(json.dumps({"error": repr(exc)}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
