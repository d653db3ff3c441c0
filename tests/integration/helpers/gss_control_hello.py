"""A firewall client's first encrypted message with a Kerberos token (python3-gssapi, the user's
ticket), bound to the channel it travels in or, with --other-channel, to another one: what a token
copied from one channel into another would be. Prints the Welcome's status and message.

  gss_control_hello.py GATEWAY_HOST CONTROL_PORT [--other-channel | --unbound]

--unbound: a token with no channel bindings at all (what an initiator that knows none sends).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import gssapi  # noqa: E402
from dissononce.dh.x25519.private import PrivateKey  # noqa: E402
from dissononce.dh.x25519.x25519 import X25519DH  # noqa: E402

import fwctl  # noqa: E402

T_GSS_TOKEN = 0x2D


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    other = "--other-channel" in sys.argv[3:]
    unbound = "--unbound" in sys.argv[3:]
    key = fwctl.key_offer((host, port))
    e_secret = os.urandom(32)
    e_public = X25519DH().generate_keypair(PrivateKey(e_secret)).public.data
    binding = os.urandom(32) if other else e_public
    bindings = None if unbound else gssapi.raw.ChannelBindings(application_data=binding)
    ctx = gssapi.SecurityContext(name=gssapi.Name(f"fwgate@{host}", gssapi.NameType.hostbased_service),
                                 usage="initiate", channel_bindings=bindings)
    token = ctx.step()
    hello = fwctl.hello(timestamp=fwctl.now_ms())
    body = hello[4:] + fwctl.attr(T_GSS_TOKEN, token)
    noise = fwctl.Noise(key, e_secret=e_secret)
    _, replies, s = fwctl.encrypted_exchange((host, port), key, noise=noise,
                                             first=noise.message1(fwctl.frame(fwctl.HELLO, body)))
    s.close()
    print(replies[0].get("status"), replies[0].get("message", ""))
    # What a capture would show of a token in clear: an AP-REQ names the realm and the service.
    realm = gssapi.Credentials(usage="initiate").name.display_as(gssapi.NameType.kerberos_principal)
    realm = str(realm).split("@", 1)[1].encode()
    print(f"token {len(token)} bytes; realm in clear in it: {realm in token}; service: {b'fwgate' in token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
