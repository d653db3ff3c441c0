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
          "UnexpectedMessage", "KeyMismatch", "Replayed", "EncryptionRequired"]
KEY_REQUEST, KEY_OFFER, HANDSHAKE = 0x10, 0x11, 0x12
T_PUBLIC_KEY, T_TIMESTAMP = 0x29, 0x2A
PROLOGUE = b"fwgate control 3"
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


def hello(version=VERSION, user=None, password=None, host="it-host", app="pytest", pid=1, timestamp=None):
    body = attr(T_VERSION, struct.pack(">H", version))
    if user is not None:
        body += attr(T_USER, user.encode()) + attr(T_PASSWORD, (password or "").encode())
    body += attr(T_HOST, host.encode()) + attr(T_APP, app.encode()) + attr(T_PID, struct.pack(">I", pid))
    if timestamp is not None:
        body += attr(T_TIMESTAMP, struct.pack(">Q", timestamp))
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
        elif tag == T_PUBLIC_KEY:
            out["public_key"] = value
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


# ----------------------------------------------------------------------------------------------
# Version 3's encrypted channel, spoken by python3-dissononce (an implementation of Noise that
# is not fwgate's): Noise_IK_25519_ChaChaPoly_SHA256, prologue "fwgate control 3".

def fingerprint(key: bytes) -> str:
    """As fwgate prints a key: SHA256: and the unpadded base64 of its SHA-256."""
    import base64
    import hashlib
    return "SHA256:" + base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")


def key_offer(addr, timeout=10):
    """The gateway's static key, asked for in clear (KeyRequest -> KeyOffer)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(frame(KEY_REQUEST))
        reply = read_frame(s)
    assert reply is not None and reply[0] == KEY_OFFER, reply
    return summary(reply)["public_key"]


def now_ms() -> int:
    import time
    return int(time.time() * 1000)


class Noise:
    """One initiator handshake; `e` fixed when given, so that a test can replay message 1 and
    still read the gateway's answer to the copy."""

    def __init__(self, server_key: bytes, static_secret: bytes | None = None, e_secret: bytes | None = None):
        from dissononce.cipher.chachapoly import ChaChaPolyCipher
        from dissononce.dh.x25519.private import PrivateKey
        from dissononce.dh.x25519.public import PublicKey
        from dissononce.dh.x25519.x25519 import X25519DH
        from dissononce.hash.sha256 import SHA256Hash
        from dissononce.processing.handshakepatterns.interactive.IK import IKHandshakePattern
        from dissononce.processing.impl.cipherstate import CipherState
        from dissononce.processing.impl.handshakestate import HandshakeState
        from dissononce.processing.impl.symmetricstate import SymmetricState
        import os
        self.static_secret = static_secret or os.urandom(32)
        self.e_secret = e_secret or os.urandom(32)

        class FixedEphemeral(X25519DH):
            """The "e" token's new key pair is the one given (dissononce takes no e to write)."""
            def __init__(self, secret):
                super().__init__()
                self.secret = secret

            def generate_keypair(self, privatekey=None):
                if privatekey is None and self.secret is not None:
                    privatekey, self.secret = PrivateKey(self.secret), None
                return super().generate_keypair(privatekey)

        dh = FixedEphemeral(self.e_secret)
        self.hs = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), SHA256Hash()), dh)
        self.hs.initialize(IKHandshakePattern(), True, PROLOGUE,
                           s=X25519DH().generate_keypair(PrivateKey(self.static_secret)), rs=PublicKey(server_key))
        self.send = self.receive = None

    def message1(self, payload: bytes) -> bytes:
        buf = bytearray()
        self.hs.write_message(payload, buf)
        return frame(HANDSHAKE, bytes(buf))

    def message2(self, body: bytes) -> bytes:
        buf = bytearray()
        self.send, self.receive = self.hs.read_message(body, buf)
        return bytes(buf)

    def seal(self, plaintext: bytes) -> bytes:
        ct = self.send.encrypt_with_ad(b"", plaintext)
        return struct.pack(">H", len(ct)) + ct

    def open_record(self, sock) -> bytes:
        length = struct.unpack(">H", _read_exact(sock, 2))[0]
        return self.receive.decrypt_with_ad(b"", _read_exact(sock, length))


def parse_frames(data: bytes) -> list:
    """Whole frames of a plaintext stream, as summaries."""
    out = []
    while len(data) >= 4:
        length = int.from_bytes(data[1:4], "big")
        if len(data) < 4 + length:
            break
        kind, body = data[0], data[4:4 + length]
        attrs, rest = [], body
        while len(rest) >= 3:
            tag, n = rest[0], struct.unpack(">H", rest[1:3])[0]
            attrs.append((tag, rest[3:3 + n]))
            rest = rest[3 + n:]
        out.append(summary((kind, attrs)))
        data = data[4 + length:]
    return out


def read_raw_frame(sock):
    """(type, body) of one frame, the body unparsed; None on EOF."""
    header = _read_exact(sock, 4)
    if header is None or len(header) < 4:
        return None
    length = int.from_bytes(header[1:4], "big")
    return header[0], (_read_exact(sock, length) if length else b"")


def encrypted_exchange(addr, server_key, *frames, records=1, noise=None, first=None, timeout=10):
    """Hello + frames inside message 1 (or `first`, the exact bytes to send: a replay). Returns
    (noise, replies, sock): the Welcome of message 2 (or the Welcome in clear the gateway sent
    instead), then the frames of up to `records` further records; the socket stays open for what
    follows (a Connected stream)."""
    noise = noise or Noise(server_key)
    s = socket.create_connection(addr, timeout=timeout)
    s.sendall(first if first is not None else noise.message1(b"".join(frames)))
    got = read_raw_frame(s)
    if got is None:
        return noise, [], s
    kind, body = got
    if kind != HANDSHAKE:
        return noise, parse_frames(bytes([kind]) + len(body).to_bytes(3, "big") + body), s
    replies = parse_frames(noise.message2(body))
    if replies and replies[0].get("status") == "Ok":
        for _ in range(records):
            try:
                plain = noise.open_record(s)
            except (TypeError, OSError):
                break
            replies += parse_frames(plain)
    return noise, replies, s
