"""The other side of noise_test.cpp's interoperability tests: Noise_IK_25519_ChaChaPoly_SHA256 by
python3-dissononce, an implementation independent of fwgate's. Commands on stdin, one per line,
hex in and out; each is answered with one line ("ERR" when it fails):

  init initiator|responder STATIC_SECRET PROLOGUE [REMOTE_STATIC]    ("-" is empty)
  write PAYLOAD        -> the handshake message
  read MESSAGE         -> its payload
  rs                   -> the remote static key
  hash                 -> the handshake hash
  encrypt PLAINTEXT    -> a transport message (after the handshake)
  decrypt CIPHERTEXT   -> its plaintext
"""

import sys

from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.private import PrivateKey
from dissononce.dh.x25519.public import PublicKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.hash.sha256 import SHA256Hash
from dissononce.processing.handshakepatterns.interactive.IK import IKHandshakePattern
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState


def main() -> None:
    hs = None
    initiator = False
    send = receive = None
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd = words[0]

        def arg(n: int) -> bytes:
            return b"" if len(words) <= n or words[n] == "-" else bytes.fromhex(words[n])

        try:
            if cmd == "init":
                role = words[1]
                initiator = role == "initiator"
                dh = X25519DH()
                hs = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), SHA256Hash()), dh)
                s = dh.generate_keypair(PrivateKey(arg(2)))
                prologue = arg(3)
                rs = PublicKey(arg(4)) if len(words) > 4 else None
                hs.initialize(IKHandshakePattern(), initiator, prologue, s=s, rs=rs)
                out = b""
            elif cmd == "write":
                buf = bytearray()
                result = hs.write_message(arg(1), buf)
                if result is not None:
                    send, receive = result if initiator else (result[1], result[0])
                out = bytes(buf)
            elif cmd == "read":
                buf = bytearray()
                result = hs.read_message(arg(1), buf)
                if result is not None:
                    send, receive = result if initiator else (result[1], result[0])
                out = bytes(buf)
            elif cmd == "rs":
                out = hs.rs.data
            elif cmd == "hash":
                out = hs.symmetricstate.get_handshake_hash()
            elif cmd == "encrypt":
                out = send.encrypt_with_ad(b"", arg(1))
            elif cmd == "decrypt":
                out = receive.decrypt_with_ad(b"", arg(1))
            else:
                raise ValueError(cmd)
            print(out.hex() if out else "-", flush=True)
        except Exception:  # any failure is one answer, and the peer goes on
            print("ERR", flush=True)


if __name__ == "__main__":
    main()
