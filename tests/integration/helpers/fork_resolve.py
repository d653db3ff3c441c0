"""A threaded program that forks while another thread resolves names: every child resolves too.

usage: fork_resolve.py BUSY_NAME NAME FORKS

One thread resolves BUSY_NAME in a loop (a name in /etc/hosts: the library reads /etc/hosts for
it, finds it there and lets libc resolve it, so the thread spends its time inside the library's
hosts-file check); the main thread forks FORKS times meanwhile, and each child resolves NAME (a
remote name: the library checks /etc/hosts, then asks the gateway) once, with an alarm of 15 s (a
child that hangs is killed by it). Prints one JSON line: how many children resolved, failed or
hung.
"""
import json
import os
import signal
import socket
import sys
import threading
import time
import warnings


def main() -> int:
    busy, name, forks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads is the point here
    stop = threading.Event()
    lookups = {"n": 0}

    def resolver() -> None:
        while not stop.is_set():
            try:
                socket.getaddrinfo(busy, 80, socket.AF_INET, socket.SOCK_STREAM)
            except OSError:
                pass
            lookups["n"] += 1

    t = threading.Thread(target=resolver, daemon=True)
    t.start()
    outcome = {"resolved": 0, "failed": 0, "hung": 0}
    for _ in range(forks):
        time.sleep(0.002)
        pid = os.fork()
        if pid == 0:
            signal.alarm(15)
            try:
                socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)
                os._exit(0)
            except OSError:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
            outcome["hung"] += 1
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            outcome["resolved"] += 1
        else:
            outcome["failed"] += 1
    stop.set()
    t.join(20)
    outcome["parent_lookups"] = lookups["n"]
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
