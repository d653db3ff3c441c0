"""The automatic configuration script (PAC), run by a real JavaScript engine: node, with the PAC
functions a browser provides implemented here per the Netscape specification. The script comes
from `fwgate config pac` (what the Web Proxy serves a client at that address) and from a running
gateway's /wpad.dat.

The harness's dnsResolve, myIpAddress and isResolvable throw, and its isInNet throws when given a
name: the script must never make a browser wait on DNS.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

import pytest

import fwit
from conftest import LOOPBACK_RULE, run_fwgate

pytestmark = pytest.mark.fwgate_only

# The browser side of PAC: the functions of Netscape's "Navigator Proxy Auto-Config File Format"
# (1996) that the script may call, over ECMAScript's vm. Reads {"script": ..., "cases": [[url,
# host], ...]} on stdin and prints the answers as a JSON array.
HARNESS = r"""
'use strict';
const vm = require('vm');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));

function ipv4(text) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

const calls = [];
const runtime = {
  isPlainHostName(host) { return host.indexOf('.') < 0; },
  dnsDomainIs(host, domain) {
    return host.length >= domain.length && host.substring(host.length - domain.length) === domain;
  },
  localHostOrDomainIs(host, hostdom) {
    return host === hostdom || (host.indexOf('.') < 0 && hostdom.indexOf(host + '.') === 0);
  },
  isResolvable(host) { throw new Error('isResolvable(' + host + '): the script resolved a name'); },
  dnsResolve(host) { throw new Error('dnsResolve(' + host + '): the script resolved a name'); },
  myIpAddress() { throw new Error('myIpAddress(): the script asked for the local address'); },
  isInNet(host, pattern, mask) {
    calls.push('isInNet');
    const a = ipv4(host), p = ipv4(pattern), m = ipv4(mask);
    // The specification resolves a name given as host: a blocking DNS query in a browser.
    if (a === null) throw new Error('isInNet(' + host + '): a name, which a browser would resolve');
    if (p === null || m === null) throw new Error('isInNet: bad pattern or mask ' + pattern + ' ' + mask);
    return ((a & m) >>> 0) === ((p & m) >>> 0);
  },
  dnsDomainLevels(host) { return host.split('.').length - 1; },
  shExpMatch(str, shexp) {
    const re = '^' + shexp.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$';
    return new RegExp(re).test(str);
  },
  weekdayRange() { return true; },
  dateRange() { return true; },
  timeRange() { return true; },
};
const context = vm.createContext(Object.assign({}, runtime));
vm.runInContext(input.script, context, { filename: 'wpad.dat' });
if (typeof context.FindProxyForURL !== 'function') throw new Error('no FindProxyForURL');
const answers = input.cases.map(([url, host]) => context.FindProxyForURL(url, host));
process.stdout.write(JSON.stringify({ answers, isInNet: calls.length }));
"""

CONFIG = """
[web_proxy]
direct_domains = ["*.partner.example"]
direct_ranges = ["192.0.2.1-192.0.2.6", "2001:db8::/32"]
{backup}

[networks.lan]
ranges = ["10.0.0.0/16", "fd00::/8"]
domains = ["corp.example"]
firewall_clients = true

[networks.dmz]
ranges = ["172.16.0.0/12"]
domains = ["dmz.example"]

[[rules]]
action = "allow"
sources = ["lan", "dmz"]
"""

PROXY = "PROXY 10.0.1.1:8080; DIRECT"

# (host as the browser passes it, the answer) for a client on the LAN.
LAN_CASES = [
    ("intranet", "DIRECT"),  # single-label
    ("INTRANET", "DIRECT"),
    ("localhost", "DIRECT"),
    ("LocalHost", "DIRECT"),
    ("app.localhost", "DIRECT"),
    ("corp.example", "DIRECT"),
    ("www.Corp.Example", "DIRECT"),  # mixed case: TMG's scripts sent it to the proxy
    ("WWW.CORP.EXAMPLE", "DIRECT"),
    ("www.corp.example.", "DIRECT"),  # a trailing dot
    ("badcorp.example", PROXY),  # a suffix, not a domain below
    ("corp.example.evil.test", PROXY),
    ("www.Partner.Example", "DIRECT"),  # [web_proxy] direct_domains ("*." dropped)
    ("partner.example", "DIRECT"),
    ("www.dmz.example", PROXY),  # another network's domain
    ("127.0.0.1", "DIRECT"),
    ("127.9.8.7", "DIRECT"),
    ("169.254.10.20", "DIRECT"),
    ("10.0.77.1", "DIRECT"),  # the LAN's range
    ("10.1.0.1", PROXY),
    ("192.0.2.1", "DIRECT"),  # a range pair, as exact CIDR blocks
    ("192.0.2.6", "DIRECT"),
    ("192.0.2.0", PROXY),
    ("192.0.2.7", PROXY),
    ("172.16.1.1", PROXY),
    ("8.8.8.8", PROXY),
    ("999.1.1.1", PROXY),  # not an address, not a local name
    ("::1", "DIRECT"),
    ("[::1]", "DIRECT"),  # some browsers pass the brackets
    ("fe80::1", "DIRECT"),
    ("FEBF::ffff", "DIRECT"),
    ("fec0::1", PROXY),
    ("fd00::1", "DIRECT"),
    ("FD12:3456::1", "DIRECT"),
    ("2001:db8:1::1", "DIRECT"),
    ("[2001:DB8::7]", "DIRECT"),
    ("2001:db9::1", PROXY),
    ("2001:db8::1%eth0", "DIRECT"),
    ("::ffff:10.0.0.1", "DIRECT"),  # IPv4-mapped: its IPv4 address decides
    ("::ffff:8.8.8.8", PROXY),
    ("1:2:3:4:5:6:7:8:9", PROXY),  # not an address
    ("www.example.com", PROXY),
    ("WWW.EXAMPLE.COM", PROXY),
]


def pac_script(tmp_path, client: str, proxy: str | None = "10.0.1.1:8080", backup: str = "") -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(backup=backup))
    args = ["config", "pac", "--config", str(path), "--client", client]
    if proxy is not None:
        args += ["--proxy", proxy]
    cp = run_fwgate(args)
    assert cp.returncode == 0, cp.stderr.decode(errors="replace")
    return cp.stdout.decode()


def evaluate(tmp_path, script: str, hosts: list[str]) -> tuple[list[str], int]:
    """FindProxyForURL for each host (URL http://HOST/path), in node; the answers and how many
    times the script called isInNet."""
    harness = tmp_path / "pac_harness.js"
    harness.write_text(HARNESS)
    cases = [[f"http://{h if ':' not in h or h.startswith('[') else '[' + h + ']'}/path?q=1", h] for h in hosts]
    cp = subprocess.run([fwit.require_tool("node"), str(harness)], input=json.dumps({"script": script, "cases": cases}).encode(),
                        capture_output=True, timeout=30 * fwit.SLOW)
    assert cp.returncode == 0, f"node failed on the script:\n{cp.stderr.decode(errors='replace')}\n{script}"
    out = json.loads(cp.stdout)
    return out["answers"], out["isInNet"]


def check(tmp_path, script: str, cases: list[tuple[str, str]]) -> None:
    answers, _ = evaluate(tmp_path, script, [h for h, _ in cases])
    wrong = [(host, want, got) for (host, want), got in zip(cases, answers) if got != want]
    assert not wrong, "host, expected, answered: " + "\n".join(map(repr, wrong)) + "\n" + script


def test_a_lan_client_goes_direct_to_what_is_local_for_it(tmp_path):
    check(tmp_path, pac_script(tmp_path, "10.0.1.5"), LAN_CASES)


def test_ip_literals_are_matched_with_isInNet_and_names_never_resolved(tmp_path):
    """isInNet is called for IPv4 literals (and the harness's isInNet throws for a name); a name
    costs no call at all."""
    script = pac_script(tmp_path, "10.0.1.5")
    _, calls = evaluate(tmp_path, script, ["www.example.com", "intranet", "www.corp.example"])
    assert calls == 0, calls
    _, calls = evaluate(tmp_path, script, ["10.0.77.1"])
    assert calls >= 1, calls


def test_a_client_outside_firewall_client_networks_gets_its_own_networks(tmp_path):
    """The DMZ is no firewall-client network: its hosts get the networks that hold them."""
    script = pac_script(tmp_path, "172.16.0.9")
    check(tmp_path, script, [("www.dmz.example", "DIRECT"), ("172.31.255.255", "DIRECT"),
                             ("www.corp.example", PROXY), ("10.0.77.1", PROXY),
                             ("www.partner.example", "DIRECT"), ("localhost", "DIRECT")])


def test_the_backup_route_follows_the_proxy(tmp_path):
    other = pac_script(tmp_path, "10.0.1.5", backup='backup_route = "PROXY backup.corp.example:3128"')
    check(tmp_path, other, [("www.example.com", "PROXY 10.0.1.1:8080; PROXY backup.corp.example:3128"),
                            ("intranet", "DIRECT")])
    none = pac_script(tmp_path, "10.0.1.5", backup='backup_route = ""')
    check(tmp_path, none, [("www.example.com", "PROXY 10.0.1.1:8080"), ("10.0.0.1", "DIRECT")])
    v6 = pac_script(tmp_path, "fd00::5", proxy="[fd00::1]:8080")
    check(tmp_path, v6, [("www.example.com", "PROXY [fd00::1]:8080; DIRECT"), ("fd00::9", "DIRECT")])


def test_config_pac_without_proxy_uses_pac_proxy(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[web_proxy]\nlisten = ["0.0.0.0:8080"]\npac_proxy = "proxy.corp.example:8080"\n')
    cp = run_fwgate(["config", "pac", "--config", str(path), "--client", "10.0.0.1"])
    assert cp.returncode == 0, cp.stderr
    check(tmp_path, cp.stdout.decode(), [("www.example.com", "PROXY proxy.corp.example:8080; DIRECT")])
    # A listener on every address names no host: the command says so.
    path.write_text('[web_proxy]\nlisten = ["0.0.0.0:8080"]\n')
    cp = run_fwgate(["config", "pac", "--config", str(path), "--client", "10.0.0.1"])
    assert cp.returncode == 2 and b"--proxy" in cp.stderr, (cp.returncode, cp.stderr)
    cp = run_fwgate(["config", "pac", "--config", str(path), "--client", "not-an-address"])
    assert cp.returncode == 2 and b"not an IP address" in cp.stderr, (cp.returncode, cp.stderr)


def test_config_check_reports_bad_pac_inputs(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[web_proxy]\nbackup_route = "direct"\ndirect_domains = ["10.0.0.1"]\n'
                    'direct_ranges = ["10.0.0.0/33"]\npac_proxy = "gw"\n')
    cp = run_fwgate(["config", "check", str(path)])
    out = cp.stdout.decode()
    assert cp.returncode == 1, out
    for key in ("web_proxy.backup_route", "web_proxy.direct_domains[0]", "web_proxy.direct_ranges[0]",
                "web_proxy.pac_proxy"):
        assert f"error: {key}:" in out, out


def test_the_gateway_serves_the_same_script(tmp_path, gateway):
    """/wpad.dat from a running gateway's Web Proxy, for a client on this host: loopback is its
    network, the proxy is the address and port it reached."""
    gw = gateway(web_proxy={"listen": ["127.0.0.1:0"], "direct_domains": ["partner.example"],
                            "direct_ranges": ["192.0.2.0/24"]},
                 rules=[LOOPBACK_RULE], expected_web=1)
    url = f"http://127.0.0.1:{gw.web_port}/wpad.dat"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10 * fwit.SLOW) as response:
        assert response.status == 200
        assert response.headers.get("Content-Type", "").startswith("application/x-ns-proxy-autoconfig")
        script = response.read().decode()
    assert script == pac_script_for(tmp_path, gw, "127.0.0.1"), "the CLI and the gateway differ"
    proxy = f"PROXY 127.0.0.1:{gw.web_port}; DIRECT"
    check(tmp_path, script, [("www.Partner.Example", "DIRECT"), ("192.0.2.77", "DIRECT"),
                             ("127.0.0.1", "DIRECT"), ("::1", "DIRECT"), ("intranet", "DIRECT"),
                             ("www.example.com", proxy), ("10.0.0.1", proxy)])


def pac_script_for(tmp_path, gw, client: str) -> str:
    cp = run_fwgate(["config", "pac", "--config", gw.config_path, "--client", client,
                     "--proxy", f"127.0.0.1:{gw.web_port}"])
    assert cp.returncode == 0, cp.stderr
    return cp.stdout.decode()
