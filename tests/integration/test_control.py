"""The control channel (TCP 1745) from the wire, against docs/control-protocol.md: the version
exchange, who may use it, each request, and malformed input — after which the gateway still serves.

Every gateway here listens for the channel on 127.0.0.1:0, never 1745, and resolves names from the
suite's own hosts file (fwit.TEST_HOSTS), whatever the machine's says.
"""

from __future__ import annotations

import socket
import time

import pytest

import fwctl
import fwit

pytestmark = pytest.mark.fwgate_only

LOOPBACK_FWC = "\n[control]\nlisten = [\"127.0.0.1:0\"]\n[networks.loopback]\nfirewall_clients = true\n"
# The echo servers listen on ports no protocol definition covers: these tests are about the
# channel, not the definitions, so a rule allows any port.
ANY_PORT = LOOPBACK_FWC + "[firewall_client]\nrequire_definition = false\n"


def control_gateway(gateway, **kw):
    kw.setdefault("extra", LOOPBACK_FWC)
    gw = gateway(**kw)
    return gw, gw.wait_control_addresses()[0]


def still_serves(addr):
    replies = fwctl.exchange(addr, fwctl.hello(), fwctl.resolve(fwit.TEST_NAME))
    assert replies[0]["status"] == "Ok" and replies[1]["addresses"] == ["127.0.0.1"], replies


def test_version_first_and_a_mismatch_is_reported(gateway):
    gw, addr = control_gateway(gateway)
    ok = fwctl.exchange(addr, fwctl.hello())
    assert ok[0]["status"] == "Ok" and ok[0]["version"] == fwctl.VERSION, ok
    bad = fwctl.exchange(addr, fwctl.hello(version=9), fwctl.frame(fwctl.GET_CONFIG))
    assert len(bad) == 1, bad  # nothing answered after a refused Hello
    assert bad[0]["status"] == "VersionMismatch" and bad[0]["version"] == fwctl.VERSION, bad
    assert "9" in bad[0]["message"], bad
    rec = gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("result") == "control protocol version mismatch")
    assert rec["application"] == "pytest" and rec["host"] == "it-host", rec
    still_serves(addr)


def test_config_carries_the_network_and_application_settings(gateway):
    extra = LOOPBACK_FWC + ("\n[firewall_client]\nrefresh_interval = \"90m\"\nweb_proxy = \"127.0.0.1:8080\"\n"
                            "[firewall_client.applications.curl]\nNameResolution = \"R\"\n")
    gw, addr = control_gateway(gateway, extra=extra)
    welcome, config = fwctl.exchange(addr, fwctl.hello(), fwctl.frame(fwctl.GET_CONFIG))
    assert config["type"] == fwctl.CONFIG and config["status"] == "Ok", config
    assert config["network"] == "loopback" and ("127.0.0.0", "127.255.255.255") in config["ranges"], config
    assert config["refresh"] == 90 * 60 and config["web_proxy"] == "127.0.0.1:8080", config
    assert config["settings"] == "[curl]\nNameResolution=R\n", config


def test_clients_outside_firewall_client_networks_are_refused(gateway):
    gw, addr = control_gateway(gateway, extra="\n[control]\nlisten = [\"127.0.0.1:0\"]\n")
    reply = fwctl.exchange(addr, fwctl.hello(), fwctl.frame(fwctl.GET_CONFIG))
    assert len(reply) == 1 and reply[0]["status"] == "NotFirewallClient", reply


def test_users_are_checked(gateway):
    gw, addr = control_gateway(gateway, users={"alice": "wonderland"}, methods=["password"])
    good = fwctl.exchange(addr, fwctl.hello(user="alice", password="wonderland"), fwctl.resolve(fwit.TEST_NAME))
    assert good[0]["status"] == "Ok" and good[1]["status"] == "Ok", good
    bad = fwctl.exchange(addr, fwctl.hello(user="alice", password="nope"), fwctl.resolve(fwit.TEST_NAME))
    assert len(bad) == 1 and bad[0]["status"] == "AuthenticationFailed", bad
    rec = gw.wait_session(lambda s: s.get("protocol") == "fwc" and s.get("result") == "authentication failed")
    assert rec["user"] == "alice", rec


def test_resolve_answers_from_the_gateways_resolver(gateway):
    """Resolve with each Family, for a name with both loopback addresses; a name no hosts file has
    is NameNotFound at once (the gateway's resolver context has no DNS to wait for)."""
    gw, addr = control_gateway(gateway)
    name = fwit.TEST_NAME_DUAL
    both, v4, v6 = fwctl.exchange(addr, fwctl.hello(), fwctl.resolve(name, 0), fwctl.resolve(name, 4),
                                  fwctl.resolve(name, 6), replies=4)[1:]
    assert both["status"] == "Ok" and sorted(both["addresses"]) == ["127.0.0.1", "::1"], both
    assert v4["status"] == "Ok" and v4["addresses"] == ["127.0.0.1"], v4
    assert v6["status"] == "Ok" and v6["addresses"] == ["::1"], v6
    started = time.monotonic()
    unknown = fwctl.exchange(addr, fwctl.hello(), fwctl.resolve(fwit.UNKNOWN_NAME))[1]
    took = time.monotonic() - started
    assert unknown["status"] == "NameNotFound" and not unknown["addresses"], unknown
    assert took < 2 * fwit.SLOW, f"NameNotFound took {took:.1f}s: was a DNS server asked?"
    rec = gw.wait_session(lambda r: r.get("command") == "resolve" and r.get("requested") == fwit.UNKNOWN_NAME)
    assert rec["result"] != "succeeded", rec


def test_connect_is_decided_logged_and_relayed_as_socks_is(gateway):
    echo = fwit.TcpServer(fwit.handle_echo)
    try:
        gw, addr = control_gateway(gateway, extra=ANY_PORT, rules=[
            {"name": "no 9", "action": "deny", "ports": ["9"]},
            {"name": "loopback clients", "action": "allow", "sources": ["loopback"]}])
        with socket.create_connection(addr, timeout=10) as s:
            s.sendall(fwctl.hello(app="probe") + fwctl.connect("127.0.0.1", echo.port))
            welcome = fwctl.summary(fwctl.read_frame(s))
            connected = fwctl.summary(fwctl.read_frame(s))
            assert welcome["status"] == "Ok" and connected["status"] == "Ok", connected
            assert connected["bound"][0] == "127.0.0.1", connected
            s.sendall(b"hello through the control channel")
            assert fwit.recv_exact(s, 33) == b"hello through the control channel"
        rec = gw.wait_session(lambda r: r.get("protocol") == "fwc" and r.get("command") == "connect"
                              and r.get("result") == "succeeded")
        assert rec["application"] == "probe" and rec["rule"] == "loopback clients" and rec["bytes_up"] == 33, rec
        denied = fwctl.exchange(addr, fwctl.hello(), fwctl.connect("127.0.0.1", 9))
        assert denied[1]["status"] == "Denied", denied
        refused = fwctl.exchange(addr, fwctl.hello(), fwctl.connect("127.0.0.1", fwit.refused_port()))
        assert refused[1]["status"] == "Refused", refused
    finally:
        echo.close()


def test_a_name_hint_counts_only_when_the_gateway_resolved_it(gateway):
    echo = fwit.TcpServer(fwit.handle_echo)
    try:
        gw, addr = control_gateway(gateway, extra=ANY_PORT)
        with socket.create_connection(addr, timeout=10) as s:
            s.sendall(fwctl.hello() + fwctl.connect("127.0.0.1", echo.port, hint="allowed.example"))
            assert fwctl.summary(fwctl.read_frame(s))["status"] == "Ok"
            assert fwctl.summary(fwctl.read_frame(s))["status"] == "Ok"
        rec = gw.wait_session(lambda r: r.get("command") == "connect" and r.get("protocol") == "fwc")
        assert rec["requested"] == f"127.0.0.1:{echo.port}", rec  # the unverified hint is ignored
        assert fwctl.exchange(addr, fwctl.hello(), fwctl.resolve(fwit.TEST_NAME))[1]["addresses"] == ["127.0.0.1"]
        with socket.create_connection(addr, timeout=10) as s:
            s.sendall(fwctl.hello() + fwctl.connect("127.0.0.1", echo.port, hint=fwit.TEST_NAME))
            fwctl.read_frame(s)
            fwctl.read_frame(s)
        rec = gw.wait_session(lambda r: r.get("requested") == f"{fwit.TEST_NAME}:{echo.port}")
        assert rec["resolved"] == f"127.0.0.1:{echo.port}", rec
    finally:
        echo.close()


def test_a_connect_no_definition_covers_is_denied(gateway):
    # By default (the Winsock Proxy's rule) a remoted connection needs a protocol definition, even
    # under a rule that names none; the answer and the log say which one is missing.
    echo = fwit.TcpServer(fwit.handle_echo)
    try:
        gw, addr = control_gateway(gateway, extra=LOOPBACK_FWC + f"""
[protocols.EchoTest]
port = {echo.port}
transport = "tcp"
direction = "outbound"
""")
        reply = fwctl.exchange(addr, fwctl.hello(app="probe"), fwctl.connect("127.0.0.1", echo.port + 1))
        assert reply[1]["status"] == "Denied", reply
        assert f"no protocol definition covers tcp outbound port {echo.port + 1}" in reply[1]["message"], reply
        rec = gw.wait_session(lambda r: r.get("command") == "connect" and r.get("result") != "succeeded")
        assert "no protocol definition" in rec["error"] and rec["rule"] == "loopback", rec
        with socket.create_connection(addr, timeout=10) as s:
            s.sendall(fwctl.hello(app="probe") + fwctl.connect("127.0.0.1", echo.port))
            assert fwctl.summary(fwctl.read_frame(s))["status"] == "Ok"
            connected = fwctl.summary(fwctl.read_frame(s))
            assert connected["status"] == "Ok", connected
        rec = gw.wait_session(lambda r: r.get("command") == "connect" and r.get("result") == "succeeded")
        assert rec["definition"] == "EchoTest", rec
    finally:
        echo.close()


def test_secondary_connections_belong_to_their_program(gateway):
    # A secondary connection is allowed only for the program (address, PID, user, application)
    # whose primary connection is open: claiming another program's PID does not borrow it.
    control = fwit.TcpServer(fwit.handle_echo)
    data = fwit.TcpServer(fwit.handle_echo)
    try:
        gw, addr = control_gateway(gateway, extra=LOOPBACK_FWC + f"""
[protocols.Ctl]
port = {control.port}
transport = "tcp"
direction = "outbound"
secondary = [{{ ports = "{data.port}", transport = "tcp", direction = "outbound" }}]
""", rules=[{"name": "ctl only", "action": "allow", "sources": ["loopback"], "protocols": ["Ctl"]},
            # Any port for SOCKS (the fixture checks the gateway still serves); for firewall
            # clients it still takes a definition.
            {"name": "loopback", "action": "allow", "sources": ["loopback"]}])
        primary = socket.create_connection(addr, timeout=10)
        primary.sendall(fwctl.hello(app="ftp", pid=4242) + fwctl.connect("127.0.0.1", control.port))
        assert fwctl.summary(fwctl.read_frame(primary))["status"] == "Ok"
        assert fwctl.summary(fwctl.read_frame(primary))["status"] == "Ok"
        for app, pid in (("intruder", 4242), ("ftp", 0), ("ftp", 4243)):
            reply = fwctl.exchange(addr, fwctl.hello(app=app, pid=pid), fwctl.connect("127.0.0.1", data.port))
            assert reply[1]["status"] == "Denied", (app, pid, reply)
        with socket.create_connection(addr, timeout=10) as s:
            s.sendall(fwctl.hello(app="ftp", pid=4242) + fwctl.connect("127.0.0.1", data.port))
            assert fwctl.summary(fwctl.read_frame(s))["status"] == "Ok"
            connected = fwctl.summary(fwctl.read_frame(s))
            assert connected["status"] == "Ok", connected
        rec = gw.wait_session(lambda r: r.get("requested") == f"127.0.0.1:{data.port}"
                              and r.get("result") == "succeeded")
        assert rec["definition"] == "Ctl (secondary)" and rec["rule"] == "ctl only", rec
        # Once the primary connection ends, so do its secondaries (bounded wait for the gateway
        # to see the close).
        primary.close()
        status = None
        for _ in range(50):
            reply = fwctl.exchange(addr, fwctl.hello(app="ftp", pid=4242), fwctl.connect("127.0.0.1", data.port))
            status = reply[1]["status"]
            if status == "Denied":
                break
            time.sleep(0.1)
        assert status == "Denied", status
    finally:
        control.close()
        data.close()


@pytest.mark.parametrize("case", ["not-hello-first", "bad-hello", "huge-length", "truncated-attribute",
                                  "unknown-request", "bad-resolve", "odd-name", "garbage", "one-byte-stall"])
def test_malformed_input_gets_an_answer_or_a_clean_close(gateway, case):
    gw, addr = control_gateway(gateway, limits={"handshake_timeout": "1s"})
    raw = {
        "not-hello-first": fwctl.frame(fwctl.GET_CONFIG),
        "bad-hello": fwctl.frame(fwctl.HELLO, fwctl.attr(fwctl.T_USER, b"x")),  # no version
        "huge-length": bytes([fwctl.HELLO, 0xff, 0xff, 0xff]),
        "truncated-attribute": fwctl.frame(fwctl.HELLO, b"\x01\x00\x09\x00"),
        "unknown-request": fwctl.hello() + fwctl.frame(0x7e, b""),
        "bad-resolve": fwctl.hello() + fwctl.frame(fwctl.RESOLVE, fwctl.attr(fwctl.T_FAMILY, b"\x05")),
        "odd-name": fwctl.hello() + fwctl.resolve("evil\x00.example"),
        "garbage": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "one-byte-stall": b"\x01",
    }[case]
    with socket.create_connection(addr, timeout=10) as s:
        s.sendall(raw)
        data, how = fwit.read_to_eof(s, timeout=5)
    assert how in ("eof", "reset"), (case, how, data)
    replies = []
    while len(data) >= 4:
        n = int.from_bytes(data[1:4], "big")
        replies.append(data[0])
        data = data[4 + n:]
    expected = {
        "not-hello-first": [fwctl.WELCOME], "bad-hello": [fwctl.WELCOME], "huge-length": [],
        "truncated-attribute": [fwctl.WELCOME], "unknown-request": [fwctl.WELCOME, fwctl.WELCOME],
        "bad-resolve": [fwctl.WELCOME, fwctl.RESOLVED], "odd-name": [fwctl.WELCOME, fwctl.RESOLVED],
        "garbage": [], "one-byte-stall": [],
    }[case]
    assert replies == expected, (case, replies)
    still_serves(addr)
