"""An event loop's connects: COUNT non-blocking connects issued at once, half to a host that
answers and half to one that does not exist, then epoll until each has its result.

usage: nonblocking_storm.py GOOD_HOST GOOD_PORT SILENT_HOST COUNT SECONDS

Every call the program makes is timed (connect, epoll registration, getsockopt SO_ERROR) and its
voluntary context switches counted (getrusage of the thread: a call that waits for anything sleeps,
which is a voluntary switch; being preempted is not): an event loop must never be held up in one.
Prints one JSON line: the slowest call of each kind (ms), the calls that slept, how many of each
half connected or failed (by errno name), and the time it took.
"""
import errno
import json
import resource
import select
import socket
import sys
import time


def main() -> int:
    good, good_port, silent = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    count, seconds = int(sys.argv[4]), float(sys.argv[5])
    slowest = {"connect": 0.0, "register": 0.0, "so_error": 0.0}
    slept = {"connect": 0, "register": 0, "so_error": 0}

    def timed(kind, f, *args):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw
        t = time.monotonic()
        r = f(*args)
        slowest[kind] = max(slowest[kind], (time.monotonic() - t) * 1000)
        slept[kind] += resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw - before
        return r

    # The program's first network call loads the client's configuration (which may fetch it from
    # the gateway: documented, once per process): one connect first, outside the measurement.
    warm = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    warm.settimeout(10)
    warm.connect_ex((good, good_port))
    warm.close()
    ep = select.epoll()
    sockets = {}
    started = time.monotonic()
    connect_codes = {}
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        target = (good, good_port) if i % 2 == 0 else (silent, 80)
        code = timed("connect", s.connect_ex, target)
        name = errno.errorcode.get(code, "ok")
        connect_codes[name] = connect_codes.get(name, 0) + 1
        timed("register", ep.register, s.fileno(), select.EPOLLOUT)
        sockets[s.fileno()] = (s, i % 2 == 0)
    issued = time.monotonic() - started
    results = {"good": {}, "silent": {}}
    deadline = started + seconds
    while sockets and time.monotonic() < deadline:
        for fd, _ in ep.poll(1.0):
            s, is_good = sockets.pop(fd)
            code = timed("so_error", s.getsockopt, socket.SOL_SOCKET, socket.SO_ERROR)
            name = "ok" if code == 0 else errno.errorcode.get(code, str(code))
            half = results["good" if is_good else "silent"]
            half[name] = half.get(name, 0) + 1
            ep.unregister(fd)
            s.close()
    print(json.dumps({"slowest_ms": {k: round(v, 2) for k, v in slowest.items()}, "slept": slept,
                      "connect": connect_codes, "results": results, "unsettled": len(sockets),
                      "issued_seconds": round(issued, 3),
                      "seconds": round(time.monotonic() - started, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
