"""The Web Proxy through the firewall client's settings: the gateway supplies it on the control
channel (WebProxy and PacUrl in Config), `fwgate detect` caches it, `fwgate check` shows it, and
`fwgate proxy-env` turns it into http_proxy/https_proxy/no_proxy that curl uses.
"""

from __future__ import annotations

import subprocess

import pytest

import fwit
from conftest import FWGATE_BIN

pytestmark = pytest.mark.fwgate_only

# This host is the firewall client: its network holds loopback and has a local domain.
NETWORKS = {"local": {"ranges": ["127.0.0.0/8", "::1", "10.200.0.1-10.200.0.6"], "domains": ["Corp.Example"],
                      "firewall_clients": True}}
RULES = [{"name": "loopback-web", "action": "allow", "sources": ["loopback"], "destinations": ["any"],
          "commands": ["connect", "http"]}]
CONTROL = '\n[control]\nlisten = ["127.0.0.1:0"]\n'


def client_env(tmp_path, control: tuple[str, int]) -> dict:
    """A firewall client of its own: client.ini names the gateway, the cache is the test's."""
    home = tmp_path / "home"
    etc = tmp_path / "etc"
    home.mkdir(exist_ok=True)
    etc.mkdir(exist_ok=True)
    (home / "client.ini").write_text(f"[Common]\nServerName = {control[0]}:{control[1]}\n")
    return fwit.clean_env(HOME=str(home), FWGATE_CONFIG_DIR=str(etc), FWGATE_CACHE=str(tmp_path / "client.cache"),
                          FWGATE_USER_CONFIG=str(home / "client.ini"), FWGATE_DISABLE="1")


def fwgate(args: list[str], env: dict) -> subprocess.CompletedProcess:
    """`fwgate ARGS` as the client host runs it (the suite's resolver context, this client's files)."""
    return fwit.run(fwit.resolving([FWGATE_BIN] + args), timeout=30, env=env)


def web_gateway(gateway):
    # Port 0: the control channel offers the port the kernel picked.
    gw = gateway(networks=NETWORKS, rules=RULES, extra=CONTROL,
                 web_proxy={"listen": ["127.0.0.1:0"]}, expected_web=1)
    assert gw.web_port != 0, gw.tail()
    return gw, gw.wait_control_addresses()[0]


def test_detect_caches_the_web_proxy_and_proxy_env_prints_it(tmp_path, gateway, http_server):
    gw, control = web_gateway(gateway)
    env = client_env(tmp_path, control)
    proxy = f"127.0.0.1:{gw.web_port}"

    # Before any detect: nothing cached, a clear error.
    cp = fwgate(["proxy-env"], env)
    assert cp.returncode == 1 and b"run fwgate detect" in cp.stderr, (cp.returncode, cp.stderr)

    cp = fwgate(["detect"], env)
    out = cp.stdout.decode()
    assert cp.returncode == 0, cp.stderr.decode() + out
    assert f"web proxy {proxy}, automatic configuration script http://{proxy}/wpad.dat" in out, out

    cp = fwgate(["check"], env)
    out = cp.stdout.decode()
    assert cp.returncode == 0, out
    assert f"Web proxy: {proxy}\n" in out and f"Automatic configuration script: http://{proxy}/wpad.dat\n" in out, out

    cp = fwgate(["proxy-env"], env)
    assert cp.returncode == 0, cp.stderr
    lines = cp.stdout.decode().splitlines()
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        assert f"export {name}='http://{proxy}'" in lines, lines
    no_proxy = [line for line in lines if line.startswith("export no_proxy='")]
    assert len(no_proxy) == 1 and f"export NO_PROXY={no_proxy[0].split('=', 1)[1]}" in lines, lines
    entries = no_proxy[0].split("=", 1)[1].strip("'").split(",")
    # This host, the LDT (both spellings, lower-case), the LAT (exact CIDR blocks).
    assert entries[:5] == ["localhost", "127.0.0.1", "::1", "corp.example", ".corp.example"], entries
    for entry in ("127.0.0.0/8", "10.200.0.1", "10.200.0.2/31", "10.200.0.4/31", "10.200.0.6"):
        assert entry in entries, entries
    assert len(entries) == len(set(entries)), entries

    cp = fwgate(["proxy-env", "--format", "systemd"], env)
    assert cp.returncode == 0, cp.stderr
    systemd = dict(line.split("=", 1) for line in cp.stdout.decode().splitlines())
    assert systemd["http_proxy"] == systemd["HTTPS_PROXY"] == f"http://{proxy}", systemd
    assert systemd["no_proxy"] == systemd["NO_PROXY"] == ",".join(entries), systemd
    assert set(systemd) == {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY"}
    assert not any(c in v for v in systemd.values() for c in " '\"\\"), systemd

    cp = fwgate(["proxy-env", "--format", "csh"], env)
    assert cp.returncode != 0, cp.stdout

    # curl with that environment: a name outside no_proxy through the Web Proxy (the gateway
    # resolves it), this host's address direct.
    curl_env = dict(env, **systemd)
    url = f"http://{fwit.TEST_NAME}:{http_server.port}{http_server.path}"
    cp = fwit.run(fwit.resolving(["curl", "-sS", "--max-time", "20", url]), timeout=30, env=curl_env)
    assert cp.returncode == 0 and cp.stdout == http_server.body, (cp.returncode, cp.stderr, gw.tail())
    rec = gw.wait_session(lambda s: s.get("protocol") == "http" and s.get("port") == http_server.port)
    assert rec.get("status") == 200 and rec.get("host") == fwit.TEST_NAME, rec
    before = len([s for s in gw.sessions() if s.get("protocol") == "http"])
    cp = fwit.run(["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{http_server.port}{http_server.path}"],
                  timeout=30, env=curl_env)
    assert cp.returncode == 0 and cp.stdout == http_server.body, cp.stderr
    assert len([s for s in gw.sessions() if s.get("protocol") == "http"]) == before, "no_proxy was not honoured"


def test_no_web_proxy_is_a_clear_error(tmp_path, gateway):
    """A gateway without [web_proxy] listeners supplies none: proxy-env says so and fails."""
    gw = gateway(networks=NETWORKS, rules=RULES, extra=CONTROL)
    env = client_env(tmp_path, gw.wait_control_addresses()[0])
    cp = fwgate(["detect"], env)
    assert cp.returncode == 0, cp.stderr
    cp = fwgate(["check"], env)
    assert "Web proxy: (none)" in cp.stdout.decode(), cp.stdout
    cp = fwgate(["proxy-env"], env)
    assert cp.returncode == 1 and cp.stdout == b"", (cp.returncode, cp.stdout)
    assert b"supplied no Web Proxy" in cp.stderr, cp.stderr


def test_the_configured_web_proxy_is_supplied_as_it_is(tmp_path, gateway):
    """[firewall_client] web_proxy names another proxy: supplied as it is, without a PAC URL."""
    gw = gateway(networks=NETWORKS, rules=RULES,
                 extra=CONTROL + '[firewall_client]\nweb_proxy = "proxy.corp.example:3128"\n',
                 web_proxy={"listen": [f"127.0.0.1:{fwit.refused_port()}"]}, expected_web=1)
    env = client_env(tmp_path, gw.wait_control_addresses()[0])
    assert fwgate(["detect"], env).returncode == 0
    out = fwgate(["check"], env).stdout.decode()
    assert "Web proxy: proxy.corp.example:3128\n" in out and "Automatic configuration script" not in out, out
    cp = fwgate(["proxy-env"], env)
    assert "export https_proxy='http://proxy.corp.example:3128'" in cp.stdout.decode(), cp.stdout
