"""Two threads make the first remote send on one UDP socket at the same moment, ROUNDS times
(a new socket each round). Prints one JSON line: datagrams sent and send errors.

usage: udp_race.py HOST PORT ROUNDS
"""
import json
import socket
import sys
import threading


def main() -> int:
    host, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sent, errors = 0, []
    for _ in range(rounds):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        start = threading.Barrier(2)
        results = []

        def send() -> None:
            start.wait(10)
            try:
                results.append(s.sendto(b"race", (host, port)))
            except OSError as e:
                results.append(e.errno)

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        sent += sum(1 for r in results if r == 4)
        errors += [r for r in results if r != 4]
        s.close()
    print(json.dumps({"sent": sent, "errors": errors}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
