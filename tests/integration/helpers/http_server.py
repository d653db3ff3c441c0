"""A static HTTP server for a network namespace that starts at once.

    python3 http_server.py HOST PORT DIRECTORY

http.server's own server_bind() looks up the host's name (socket.getfqdn), which inside a
namespace without a reachable DNS server waits for the resolver's timeout; this one does not.
Prints "ready" when it listens; logs requests (with the client's address) to stderr.
"""
import functools
import http.server
import socketserver
import sys


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main():
    host, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    with Server((host, port), handler) as server:
        print("ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
