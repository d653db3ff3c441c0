"""A SOCKS 5 client with the GSS-API method (RFC 1961) on MIT krb5 through python3-gssapi: the
user's ticket (KRB5CCNAME), a context with the proxy's rcmd service, the protection level asked
for wrapped (or unwrapped with --nec), then CONNECT and an HTTP/1.0 GET whose answer is printed.

  gss_socks_client.py PROXY_HOST PROXY_PORT DEST_HOST DEST_PORT [--nec] [--level N]
                      [--save-token FILE] [--replay-token FILE]

--save-token keeps the first context token sent; --replay-token sends a saved one instead of a new
one (a replayed Kerberos authenticator). Exit 0 with the body on stdout; 2 when the proxy aborts
(01 FF) or refuses, with the reason on stderr.
"""

import argparse
import socket
import struct
import sys

import gssapi


def read_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_message(s: socket.socket) -> tuple[int, bytes]:
    ver, mtyp = read_exact(s, 2)
    if ver != 1:
        raise ValueError(f"GSS-API message version {ver}")
    if mtyp == 0xFF:
        return mtyp, b""
    (length,) = struct.unpack(">H", read_exact(s, 2))
    return mtyp, read_exact(s, length)


def send_message(s: socket.socket, mtyp: int, token: bytes) -> None:
    s.sendall(bytes([1, mtyp]) + struct.pack(">H", len(token)) + token)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("proxy")
    p.add_argument("port", type=int)
    p.add_argument("dest")
    p.add_argument("dport", type=int)
    p.add_argument("--nec", action="store_true")
    p.add_argument("--level", type=int, default=2)
    p.add_argument("--save-token")
    p.add_argument("--replay-token")
    a = p.parse_args()

    s = socket.create_connection((a.proxy, a.port), timeout=20)
    s.sendall(b"\x05\x01\x01")
    if read_exact(s, 2) != b"\x05\x01":
        print("the proxy did not select GSS-API", file=sys.stderr)
        return 2
    target = gssapi.Name(f"rcmd@{a.proxy}", gssapi.NameType.hostbased_service)
    ctx = gssapi.SecurityContext(name=target, usage="initiate",
                                 flags=gssapi.RequirementFlag.mutual_authentication
                                 | gssapi.RequirementFlag.integrity)
    token = ctx.step()
    if a.replay_token:
        with open(a.replay_token, "rb") as f:
            token = f.read()
    if a.save_token:
        with open(a.save_token, "wb") as f:
            f.write(token)
    while True:
        send_message(s, 1, token)
        if ctx.complete:
            break
        mtyp, reply = read_message(s)
        if mtyp == 0xFF:
            print("the proxy aborted the GSS-API exchange (01 FF)", file=sys.stderr)
            return 2
        token = ctx.step(reply)
        if ctx.complete and not token:
            break
    level = bytes([a.level])
    send_message(s, 2, level if a.nec else ctx.wrap(level, False).message)
    mtyp, reply = read_message(s)
    if mtyp != 2:
        print(f"the proxy answered the protection level with message type {mtyp}", file=sys.stderr)
        return 2
    chosen = reply if a.nec else ctx.unwrap(reply).message
    print(f"protection level {chosen.hex()}", file=sys.stderr)
    name = a.dest.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", a.dport))
    head = read_exact(s, 4)
    if head[1] != 0:
        print(f"the proxy refused the CONNECT: reply {head[1]}", file=sys.stderr)
        return 2
    read_exact(s, {1: 4, 4: 16}.get(head[3], 0) + 2)
    s.sendall(b"GET / HTTP/1.0\r\nHost: " + name + b"\r\n\r\n")
    body = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    sys.stdout.write(body.decode(errors="replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
