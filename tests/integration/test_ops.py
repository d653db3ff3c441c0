"""Configuration and operations: config check, SIGHUP reload, SIGTERM, the session log."""

from __future__ import annotations

import datetime
import os
import re
import signal
import shutil
import socket
import tempfile
import time

import pytest

import fwit
from conftest import LOOPBACK_RULE, q, run_fwgate

pytestmark = pytest.mark.fwgate_only

BAD_CONFIG = """\
[gateway]
colour = "blue"

[[listeners]]
address = "127.0.0.1"
port = 70000
methods = ["telepathy"]

[limits]
handshake_timeout = "soon"

[[rules]]
name = "bad"
action = "maybe"
sources = ["nowhere"]
"""
BAD_PATHS = ["gateway.colour", "listeners[0].port", "listeners[0].methods[0]", "limits.handshake_timeout",
             "rules[0].action", "rules[0].sources[0]"]


def test_config_check_lists_every_error_with_its_key_path(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD_CONFIG)
    cp = run_fwgate(["config", "check", str(path)])
    out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    assert cp.returncode == 1, f"exit {cp.returncode}, expected 1:\n{out}"
    missing = [p for p in BAD_PATHS if not re.search(re.escape(p) + r"(?![\w.\[])", out)]
    assert not missing, f"errors without their key path {missing}:\n{out}"


def test_config_check_syntax_error_exits_1(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[[listeners]\naddress = \n")
    cp = run_fwgate(["config", "check", str(path)])
    assert cp.returncode == 1, cp.stdout + cp.stderr
    out = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    assert "line" in out.lower() or ":1" in out or ":2" in out, f"no position for a syntax error:\n{out}"


def test_config_check_example_is_valid():
    example = os.path.join(fwit.REPO, "examples", "gateway.toml")
    assert os.path.exists(example), "examples/gateway.toml is missing"
    cp = run_fwgate(["config", "check", example])
    assert cp.returncode == 0, (cp.stdout + cp.stderr).decode(errors="replace")


def test_config_check_embedded_default_and_test_configs(tmp_path, gateway):
    cp = run_fwgate(["config", "default"])
    assert cp.returncode == 0 and b"[[listeners]]" in cp.stdout
    default = tmp_path / "default.toml"
    default.write_bytes(cp.stdout)
    cp = run_fwgate(["config", "check", str(default)])
    assert cp.returncode == 0, cp.stdout + cp.stderr
    # The configurations these tests write are valid too (a guard on the harness itself).
    ours = tmp_path / "ours.toml"
    ours.write_text(gateway.config_text(rules=[{"name": "deny 9", "action": "deny", "ports": ["9"]}, LOOPBACK_RULE],
                                       networks={"lan": {"ranges": ["10.200.1.0/24"], "domains": ["example.test"]}}))
    cp = run_fwgate(["config", "check", str(ours)])
    assert cp.returncode == 0, (cp.stdout + cp.stderr).decode(errors="replace")


def test_config_check_warns_about_open_proxy(tmp_path, gateway):
    # Only checked, never run: nothing binds 0.0.0.0:1080.
    path = tmp_path / "open.toml"
    path.write_text(gateway.config_text(
        listeners=[{"address": "0.0.0.0", "port": 1080, "methods": ["none"]}],
        rules=[{"name": "everyone", "action": "allow", "sources": ["any"], "destinations": ["any"]}]))
    cp = run_fwgate(["config", "check", str(path)])
    out = (cp.stdout + cp.stderr).decode(errors="replace")
    assert re.search(r"open proxy", out, re.I), f"no open-proxy warning:\n{out}"


def test_startup_lines_name_config_and_rules(gateway):
    gw = gateway()
    text = gw.stderr()
    assert gw.config_path in text, f"start-up lines do not name the config file:\n{text}"
    assert re.search(r"\brules?\b", text), f"start-up lines do not mention the rules:\n{text}"


@pytest.mark.parametrize("taken", ["socks", "control"])
def test_a_taken_port_names_the_setting_that_moves_it(taken):
    """Beside another gateway (or anything) on the port: exit 1, and the line says which listener and
    which key or flag moves it."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        socks = f"127.0.0.1:{port}" if taken == "socks" else "127.0.0.1:0"
        control = f"127.0.0.1:{port}" if taken == "control" else "127.0.0.1:0"
        cp = run_fwgate(["gateway", "--listen", socks, "--control-listen", control], timeout=20)
    text = cp.stdout.decode(errors="replace") + cp.stderr.decode(errors="replace")
    assert cp.returncode != 0, text
    want = "--control-listen ADDR:PORT" if taken == "control" else "--listen ADDR:PORT"
    line = next((ln for ln in text.splitlines() if f"cannot listen on 127.0.0.1:{port}" in ln), "")
    assert want in line and "Address already in use" in line, text


# ---------------------------------------------------------------------------------------------- reload


def deny_port_rules(port: int) -> list:
    return [{"name": "deny after reload", "action": "deny", "ports": [str(port)]}, LOOPBACK_RULE]


def wait_rep(gw, port: int, want: int, timeout: float = 5.0) -> int:
    """Repeats a CONNECT until it gets REP `want`; returns the last REP seen."""
    deadline = time.monotonic() + timeout * fwit.SLOW
    rep = -1
    for _ in range(1000):
        raw, fields, s = fwit.s5_try(gw.host, gw.port, "127.0.0.1", port)
        s.close()
        rep = fields["rep"]
        if rep == want or time.monotonic() > deadline:
            return rep
        time.sleep(0.1)
    return rep


def test_sighup_reload_new_rules_established_kept(gateway, echo_server):
    gw = gateway()
    established, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", echo_server.port)
    with established:
        fwit.echo_roundtrip(established, b"before reload\n")
        gw.write_config(gateway.config_text(rules=deny_port_rules(echo_server.port), _workdir=gw.workdir))
        gw.signal(signal.SIGHUP)
        rep = wait_rep(gw, echo_server.port, 2)
        assert rep == 2, f"after SIGHUP a new CONNECT to the denied port got REP {rep:#04x}, expected 0x02"
        assert gw.proc.poll() is None, "gateway exited on SIGHUP"
        fwit.echo_roundtrip(established, b"after reload, same session\n")
    # Reload again to allow it: new sessions follow.
    gw.write_config(gateway.config_text(_workdir=gw.workdir))
    gw.signal(signal.SIGHUP)
    assert wait_rep(gw, echo_server.port, 0) == 0


def test_session_log_created_as_root_is_the_service_users(gateway, echo_server, tmp_path):
    """A session log the gateway creates before it drops privileges becomes [gateway] user's, so the
    reopen after SIGHUP (made as that user) still opens it; a file that existed keeps its owner."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    logdir = tempfile.mkdtemp(prefix="fwgate-it-log-")  # /tmp: every user can reach it
    try:
        os.chmod(logdir, 0o777)
        path = os.path.join(logdir, "sessions.log")
        text = gateway.config_text(_workdir=str(tmp_path)).replace(
            f'sessions = {q(os.path.join(str(tmp_path), "sessions.log"))}', f"sessions = {q(path)}")
        assert f"sessions = {q(path)}" in text, text
        gw = gateway(config_text='[gateway]\nuser = "nobody"\n\n' + text)
        assert os.stat(path).st_uid == nobody.pw_uid, os.stat(path)
        fwit.assert_serves(gw.host, gw.port, echo_server.port, tag="before")
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5 * fwit.SLOW
        while "SIGHUP" not in gw.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "SIGHUP" in gw.stderr(), gw.tail()
        fwit.assert_serves(gw.host, gw.port, echo_server.port, tag="after")
        deadline = time.monotonic() + 5 * fwit.SLOW
        lines = []
        while len(lines) < 2 and time.monotonic() < deadline:
            with open(path, encoding="utf-8") as f:
                lines = [line for line in f if line.strip()]
            time.sleep(0.1)
        assert len(lines) >= 2, (lines, gw.tail())
        assert "log.sessions:" not in gw.stderr(), gw.tail()
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def test_sighup_with_invalid_config_keeps_running(gateway, echo_server):
    gw = gateway()
    gw.write_config(BAD_CONFIG)
    gw.signal(signal.SIGHUP)
    time.sleep(0.5 * fwit.SLOW)
    assert gw.proc.poll() is None, f"gateway exited on a bad reload:\n{gw.tail()}"
    fwit.assert_serves(gw.host, gw.port, echo_server.port)
    text = gw.stderr()
    assert "rules[0].action" in text, f"the failed reload is not reported with its key paths:\n{text[-3000:]}"


def test_sighup_reopens_session_log(gateway, echo_server):
    gw = gateway()
    fwit.assert_serves(gw.host, gw.port, echo_server.port, tag="first")
    gw.wait_session(lambda r: True)
    os.rename(gw.session_log, gw.session_log + ".1")
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5 * fwit.SLOW
    while not os.path.exists(gw.session_log) and time.monotonic() < deadline:
        fwit.assert_serves(gw.host, gw.port, echo_server.port, tag="after-rotate")
        time.sleep(0.2)
    assert os.path.exists(gw.session_log), "session log not reopened after SIGHUP (logrotate)"
    # A session served after the reopen is logged in the new file (the loop above may not have
    # run at all when the reopen came first).
    fwit.assert_serves(gw.host, gw.port, echo_server.port, tag="after-reopen")
    gw.wait_session(lambda r: True)


# ---------------------------------------------------------------------------------------------- SIGTERM


def refused_now(host: str, port: int, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout * fwit.SLOW
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                pass
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def test_sigterm_stops_accepting_and_lets_sessions_finish(gateway, echo_server):
    gw = gateway(limits={"shutdown_grace": "10s"})
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", echo_server.port)
    with sock:
        fwit.echo_roundtrip(sock, b"before SIGTERM\n")
        gw.expected_exit = True
        gw.signal(signal.SIGTERM)
        assert refused_now(gw.host, gw.port), "still accepting connections after SIGTERM"
        fwit.echo_roundtrip(sock, b"session finishing after SIGTERM\n")
    t0 = time.monotonic()
    rc = gw.wait_exit(5)
    assert rc is not None, "gateway did not exit within 5 s of its last session ending"
    assert rc == 0, f"exit status {rc} after SIGTERM"
    print(f"exited {time.monotonic() - t0:.2f}s after the last session closed")


def test_sigterm_grace_period_bounds_open_sessions(gateway, echo_server):
    gw = gateway(limits={"shutdown_grace": "2s"})
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", echo_server.port)
    with sock:
        gw.expected_exit = True
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        rc = gw.wait_exit(2 + 3)
        took = time.monotonic() - t0
        assert rc is not None, "a held-open session kept the gateway past its 2 s grace period"
        assert rc == 0, f"exit status {rc} after SIGTERM"
        assert took >= 1.5, f"exited after {took:.2f}s: the session was not given its grace period"
        fwit.assert_closed(sock, 2, "gateway (after the grace period)")


def test_sessions_still_open_after_the_grace_period_get_their_line(gateway, echo_server):
    """The sessions the gateway closes at the end of shutdown_grace are logged too: a relayed
    CONNECT (outcome succeeded: it was served) and a client still in its handshake (outcome
    stopped), each with error "the gateway stopped"."""
    gw = gateway(limits={"shutdown_grace": "1s", "handshake_timeout": "30s"})
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", echo_server.port)
    silent = socket.create_connection((gw.host, gw.port), timeout=5)
    with sock, silent:
        fwit.echo_roundtrip(sock, b"open at SIGTERM\n")
        gw.expected_exit = True
        gw.signal(signal.SIGTERM)
        rc = gw.wait_exit(1 + 5)
        assert rc == 0, f"exit status {rc} after SIGTERM"
    lines = gw.sessions()
    relayed = [s for s in lines if s.get("command") == "connect"]
    assert len(relayed) == 1, lines
    assert relayed[0]["outcome"] == "succeeded" and relayed[0]["error"] == "the gateway stopped", relayed
    # (Its byte counts are the relay's, added when a relay returns: one cut short reports none.)
    assert relayed[0]["result"] == "succeeded" and relayed[0]["rule"], relayed
    handshaking = [s for s in lines if s.get("command") == "none"]
    assert len(handshaking) == 1, lines
    assert handshaking[0]["outcome"] == "stopped" and handshaking[0]["error"] == "the gateway stopped", \
        handshaking


def test_sigterm_idle_exits_promptly(gateway):
    gw = gateway()
    gw.expected_exit = True
    gw.signal(signal.SIGTERM)
    rc = gw.wait_exit(3)
    assert rc == 0, f"idle gateway: exit status {rc} (None = still running 3 s after SIGTERM)"


# ---------------------------------------------------------------------------------------------- session log


def assert_time_recent(value) -> None:
    now = time.time()
    if isinstance(value, (int, float)):
        ts = float(value)
        ts = ts / 1000 if ts > 1e11 else ts
    else:
        assert isinstance(value, str), f"time {value!r}"
        ts = datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    assert abs(now - ts) < 300, f"session time {value!r} is not now"


def test_session_log_fields_for_a_known_transfer(gateway, server_factory, refused_port):
    up, down = os.urandom(1234), b"D" * 3000
    srv = server_factory(fwit.handle_sized(len(up), down))
    deny = {"name": "deny one port", "action": "deny", "ports": [str(refused_port)]}
    gw = gateway(rules=[deny, LOOPBACK_RULE])
    sock, _ = fwit.s5_open(gw.host, gw.port, "127.0.0.1", srv.port)
    client_port = sock.getsockname()[1]
    t0 = time.monotonic()
    with sock:
        sock.sendall(up)
        sock.shutdown(socket.SHUT_WR)
        data, how = fwit.read_to_eof(sock, 10)
        assert data == down and how == "eof"
    held = time.monotonic() - t0
    rec = gw.wait_session(lambda r: str(srv.port) in str(r.get("requested")))
    fields = ["time", "duration_ms", "client", "user", "protocol", "command", "requested", "resolved", "rule",
              "result", "reply", "bytes_up", "bytes_down"]
    assert not [f for f in fields if f not in rec], f"missing fields {[f for f in fields if f not in rec]}: {rec}"
    assert_time_recent(rec["time"])
    assert isinstance(rec["duration_ms"], (int, float)) and 0 <= rec["duration_ms"] < 60000, rec
    assert rec["duration_ms"] >= held * 1000 * 0.5 - 50, f"duration {rec['duration_ms']} ms, held {held:.3f}s"
    assert rec["client"] == f"127.0.0.1:{client_port}", rec
    assert rec["user"] is None, f"anonymous session logged user {rec['user']!r}"
    assert rec["protocol"] == "socks5", rec
    assert rec["command"] == "connect", rec
    assert rec["requested"] == f"127.0.0.1:{srv.port}", rec
    assert rec["resolved"] == f"127.0.0.1:{srv.port}", rec
    assert rec["rule"] == "loopback", rec
    assert rec["reply"] == 0 and rec["result"] == "succeeded", rec
    assert rec["bytes_up"] == len(up), f"bytes_up {rec['bytes_up']}, expected {len(up)} (client->destination)"
    assert rec["bytes_down"] == len(down), f"bytes_down {rec['bytes_down']}, expected {len(down)}"

    raw, fields_, s = fwit.s5_try(gw.host, gw.port, "127.0.0.1", refused_port)
    s.close()
    assert fields_["rep"] == 2
    rec = gw.wait_session(lambda r: str(refused_port) in str(r.get("requested")))
    assert rec["rule"] == "deny one port", rec
    assert rec["reply"] == 2 and rec["result"] == "not-allowed", rec
    assert rec["bytes_up"] == 0 and rec["bytes_down"] == 0, rec


def test_session_log_user_and_socks4(gateway, echo_server, users):
    (user, password), = users.items()
    gw = gateway(listeners=[{"address": "127.0.0.1", "port": 0, "methods": ["none", "password"]}], users=users)
    fwit.assert_serves(gw.host, gw.port, echo_server.port, user, password)
    rec = gw.wait_session(lambda r: r.get("user") == user)
    assert rec["protocol"] == "socks5" and rec["reply"] == 0, rec
    with fwit.connect(gw.host, gw.port) as s:
        s.sendall(fwit.s4_request(1, "127.0.0.1", echo_server.port, b"ident-user"))
        assert fwit.recv_exact(s, 8)[:2] == b"\x00\x5a"
        fwit.echo_roundtrip(s, b"socks4 logged\n")
    rec = gw.wait_session(lambda r: r.get("protocol") in ("socks4", "socks4a"))
    assert rec["command"] == "connect" and rec["bytes_up"] == len(b"socks4 logged\n"), rec


def test_default_logs_sessions_to_stderr(gateway, echo_server):
    """The embedded default (no --config) logs one JSON line per session to standard error. Its
    ports (1080, 1745, 8080) are the machine's: --listen, --control-listen and --web-listen put it
    on port 0."""
    gw = gateway(use_config=False, listen=["127.0.0.1:0"], control_listen=["127.0.0.1:0"],
                 web_listen=["127.0.0.1:0"])
    fwit.assert_serves(gw.host, gw.port, echo_server.port)
    deadline = time.monotonic() + 5 * fwit.SLOW
    while time.monotonic() < deadline:
        lines = [ln for ln in gw.stderr().splitlines() if ln.startswith("{") and str(echo_server.port) in ln]
        if lines:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"no JSON session line on stderr:\n{gw.tail()}")
    import json
    rec = json.loads(lines[0])
    assert rec.get("command") == "connect" and rec.get("bytes_up", 0) > 0, rec
