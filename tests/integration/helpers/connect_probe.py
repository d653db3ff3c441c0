"""Connects the way a program does and prints what it saw, as one JSON line.

usage: connect_probe.py HOST PORT MODE [FAMILY]
MODE: blocking | poll | select | epoll | epoll-et | early-sockopt | connect-again
FAMILY: 4 (default) or 6 (an AF_INET6 socket; HOST may be an IPv4 address, used v4-mapped)

Prints {"connect": errno name or "ok", "so_error": ..., "peer": [host, port], "nonblocking_kept": bool,
"echo": text} — with an HTTP-less check: when connected, it sends "ping\\n" and reads what comes back.
"""
import errno
import fcntl
import json
import resource
import os
import select
import socket
import sys
import time


def name(code):
    return "ok" if code == 0 else errno.errorcode.get(code, str(code))


def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    family = socket.AF_INET6 if len(sys.argv) > 4 and sys.argv[4] == "6" else socket.AF_INET
    target = host
    if family == socket.AF_INET6 and ":" not in host:
        target = "::ffff:" + host
    out = {"mode": mode}
    s = socket.socket(family, socket.SOCK_STREAM)
    if mode != "blocking":
        s.setblocking(False)
    flags_before = fcntl.fcntl(s.fileno(), fcntl.F_GETFL)
    started = time.monotonic()
    code = s.connect_ex((target, port))
    out["connect"] = name(code)
    if mode != "blocking" and code == errno.EINPROGRESS:
        if mode == "early-sockopt":
            # Asks SO_ERROR before waiting for writability: answered at once, 0 while in progress
            # (as the kernel does), then waits as a program must.
            # A result already in (a fast refusal) is reported once, as the kernel's SO_ERROR.
            asked = time.monotonic()
            early = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            out["early_so_error"] = name(early)
            out["early_seconds"] = round(time.monotonic() - asked, 3)
            p = select.poll()
            p.register(s.fileno(), select.POLLOUT)
            p.poll(30000)
        elif mode == "connect-again":
            # Old-style polling: connect() again until it says EISCONN (or the error).
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                again = s.connect_ex((target, port))
                if again not in (errno.EALREADY, errno.EINPROGRESS):
                    break
                time.sleep(0.01)
            out["again"] = name(again)
            code = 0 if again == errno.EISCONN else again
            out["so_error"] = name(code)
        elif mode == "poll":
            p = select.poll()
            p.register(s.fileno(), select.POLLOUT)
            ready = p.poll(30000)
            out["poll"] = ready[0][1] if ready else 0
        elif mode == "select":
            _, w, _ = select.select([], [s], [], 30)
            out["select_writable"] = bool(w)
        else:
            ep = select.epoll()
            ep.register(s.fileno(), select.EPOLLOUT | (select.EPOLLET if mode == "epoll-et" else 0))
            events = ep.poll(30)
            out["epoll"] = events[0][1] if events else 0
            ep.close()
        if mode != "connect-again":
            code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if mode == "early-sockopt" and early != 0:
                code = early
            out["so_error"] = name(code)
    out["seconds"] = round(time.monotonic() - started, 3)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu"] = round(usage.ru_utime + usage.ru_stime, 3)
    out["nonblocking_kept"] = (fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK) == (flags_before & os.O_NONBLOCK)
    if code == 0:
        try:
            peer = s.getpeername()
        except OSError as e:
            out["peer_error"] = name(e.errno)
            print(json.dumps(out), flush=True)
            return
        out["peer"] = [peer[0], peer[1]]
        # A duplicate descriptor is the same socket: it has the same peer.
        dup_fd = os.dup(s.fileno())
        dup = socket.socket(fileno=dup_fd)
        out["peer_dup"] = list(dup.getpeername()[:2])
        dup.close()
        s.setblocking(True)
        s.settimeout(10)
        s.sendall(b"ping\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
        out["echo"] = data.decode(errors="replace").strip()
    s.close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
