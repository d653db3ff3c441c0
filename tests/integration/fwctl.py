"""The control protocol (docs/control-protocol.md) from the test side: raw frames over a socket.

Independent of the C++ codec on purpose: the tests check the gateway against the document.
"""
import socket
import struct

HELLO, WELCOME, GET_CONFIG, CONFIG, RESOLVE, RESOLVED, CONNECT, CONNECTED = range(1, 9)
T_VERSION, T_STATUS, T_MESSAGE, T_USER, T_PASSWORD, T_HOST, T_APP, T_PID, T_OSUSER = range(1, 10)
T_SERVER_NAME, T_NAME, T_FAMILY, T_ADDRESS, T_CANONICAL, T_DESTINATION, T_NAME_HINT, T_BOUND = (
    range(0x10, 0x18))
T_NETWORK, T_RANGE, T_DOMAIN, T_SETTINGS, T_REFRESH, T_WEB_PROXY = range(0x20, 0x26)
STATUS = ["Ok", "VersionMismatch", "AuthenticationFailed", "NotFirewallClient", "BadRequest",
          "Denied", "Refused", "TimedOut", "NetworkUnreachable", "HostUnreachable", "NameNotFound",
          "NameTemporaryFailure", "AddressFamilyNotSupported", "GeneralFailure",
          "UnexpectedMessage"]
VERSION = 3


def attr(tag, value):
    return bytes([tag]) + struct.pack(">H", len(value)) + value


def frame(kind, body=b""):
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def address(text):
    try:
        return b"\x04" + socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return b"\x06" + socket.inet_pton(socket.AF_INET6, text)


def endpoint(host, port):
    return address(host) + struct.pack(">H", port)


def hello(version=VERSION, user=None, password=None, host="it-host", app="pytest", pid=1):
    body = attr(T_VERSION, struct.pack(">H", version))
    if user is not None:
        body += attr(T_USER, user.encode()) + attr(T_PASSWORD, (password or "").encode())
    body += attr(T_HOST, host.encode()) + attr(T_APP, app.encode()) + attr(T_PID, struct.pack(">I", pid))
    return frame(HELLO, body)


def resolve(name, family=0):
    return frame(RESOLVE, attr(T_NAME, name.encode()) + attr(T_FAMILY, bytes([family])))


def connect(host, port, hint=None):
    body = attr(T_DESTINATION, endpoint(host, port))
    if hint:
        body += attr(T_NAME_HINT, hint.encode())
    return frame(CONNECT, body)


def read_frame(sock):
    """(type, [(tag, value)...]) or None on EOF."""
    header = _read_exact(sock, 4)
    if header is None:
        return None
    length = int.from_bytes(header[1:4], "big")
    body = _read_exact(sock, length) if length else b""
    attrs, i = [], 0
    while i < len(body):
        tag, n = body[i], struct.unpack(">H", body[i + 1:i + 3])[0]
        attrs.append((tag, body[i + 3:i + 3 + n]))
        i += 3 + n
    return header[0], attrs


def _read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return None if not out else out
        out += chunk
    return out


def decode_address(value):
    if value[0] == 4:
        return socket.inet_ntop(socket.AF_INET, value[1:5]), value[5:]
    return socket.inet_ntop(socket.AF_INET6, value[1:17]), value[17:]


def summary(reply):
    """A dict of a reply's attributes: status name, version, message, addresses, ranges..."""
    kind, attrs = reply
    out = {"type": kind, "addresses": [], "ranges": [], "domains": []}
    for tag, value in attrs:
        if tag == T_STATUS:
            out["status"] = STATUS[value[0]] if value[0] < len(STATUS) else value[0]
        elif tag == T_VERSION:
            out["version"] = struct.unpack(">H", value)[0]
        elif tag in (T_MESSAGE, T_SERVER_NAME, T_CANONICAL, T_NETWORK, T_SETTINGS, T_WEB_PROXY):
            out[{T_MESSAGE: "message", T_SERVER_NAME: "server", T_CANONICAL: "canonical",
                 T_NETWORK: "network", T_SETTINGS: "settings",
                 T_WEB_PROXY: "web_proxy"}[tag]] = value.decode(errors="replace")
        elif tag == T_ADDRESS:
            out["addresses"].append(decode_address(value)[0])
        elif tag == T_RANGE:
            first, rest = decode_address(value)
            out["ranges"].append((first, decode_address(rest)[0]))
        elif tag == T_DOMAIN:
            out["domains"].append(value.decode())
        elif tag == T_REFRESH:
            out["refresh"] = struct.unpack(">I", value)[0]
        elif tag == T_BOUND:
            host, rest = decode_address(value)
            out["bound"] = (host, struct.unpack(">H", rest)[0])
    return out


def exchange(addr, *frames, replies=None, timeout=10):
    """Sends the frames in one write and reads `replies` frames (default: one per frame)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(b"".join(frames))
        out = []
        for _ in range(len(frames) if replies is None else replies):
            reply = read_frame(s)
            if reply is None:
                break
            out.append(summary(reply))
        return out
