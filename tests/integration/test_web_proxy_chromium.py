"""Headless Chromium (Debian's `chromium`) through the Web Proxy and its automatic configuration
script, in the namespace topology of test_web_proxy.py (webit.WebTopology):

- with --proxy-pac-url=http://GW:8080/wpad.dat, a page of the external host loads through the
  proxy, and a page of the internal segment (intranet.corp.test, 10.A.1.3: the internal network's
  range and domain) loads directly: its server sees the browser, the proxy's log has no line for it;
- the backup route: with the script naming a proxy port that is closed, the browser falls back to
  DIRECT (backup_route = "DIRECT", the default) and loads a page only a direct connection reaches
  (192.0.2.10, on the internal host, which the gateway has no route to); without a backup route it
  cannot; with the proxy port open the same page goes to the proxy (which answers 502);
- with --proxy-server=http://GW:8080, http:// and https:// (CONNECT) pages.

Each page changes its own text with JavaScript, so a page that loaded and ran is told apart from
its source. Chromium runs in the internal namespace with a profile in the test's directory, in its
own process group, killed whole at the end or at its time limit.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

import fwit
from webit import INTERNAL_WEB, WebTopology, http_log, http_logs, topo  # noqa: F401 (topo: the fixture)

pytestmark = pytest.mark.fwgate_only

NAME = WebTopology.NAME
SIDE = WebTopology.SIDE
INTRANET_NAME = WebTopology.INTRANET_NAME


def page(marker: str) -> str:
    return (f"<!DOCTYPE html><html><head><title>{marker}</title></head><body><p id=m>{marker} source</p>"
            f"<script>document.getElementById('m').textContent = '{marker} rendered';</script></body></html>\n")


def spki_pin(cert: str) -> str:
    """base64(sha256(SubjectPublicKeyInfo)) of the origin's certificate: the one key Chromium is
    told to accept (--ignore-certificate-errors-spki-list), instead of a blanket ignore."""
    cp = subprocess.run(f"openssl x509 -in '{cert}' -pubkey -noout | openssl pkey -pubin -outform der "
                        "| openssl dgst -sha256 -binary | base64", shell=True, capture_output=True, timeout=30)
    pin = cp.stdout.decode().strip()
    assert cp.returncode == 0 and len(pin) == 44, cp.stderr
    return pin


class Browser:
    def __init__(self, topo):
        self.topo = topo
        self.exe = fwit.require_tool("chromium")
        self.runs = 0

    def dump_dom(self, url: str, *flags: str, timeout: float = 60.0) -> str:
        """chromium --headless=new --dump-dom URL in the internal namespace; the DOM after load."""
        self.runs += 1
        profile = os.path.join(str(self.topo.tmp), f"chromium-profile-{self.runs}")
        argv = ["ip", "netns", "exec", self.topo.ns["internal"], self.exe, "--headless=new", "--no-sandbox",
                "--disable-gpu", "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--no-first-run",
                "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-domain-reliability", "--no-pings", "--disable-breakpad",
                # http:// stays http:// (no automatic HTTPS upgrade that would add CONNECTs to the log).
                "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,MediaRouter",
                f"--ignore-certificate-errors-spki-list={spki_pin(self.topo.certs['cert'])}",
                *flags, "--dump-dom", url]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.topo.client_env(), start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout * fwit.SLOW)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate(timeout=10)
            raise AssertionError(f"chromium did not finish {url} within {timeout * fwit.SLOW:.0f}s: "
                                 f"{stderr.decode(errors='replace')[-2000:]}") from None
        finally:
            # Whatever of the browser's process group outlived it (zygote, utility processes).
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        dom = stdout.decode(errors="replace")
        assert proc.returncode == 0, f"chromium exited {proc.returncode} on {url}: {stderr.decode(errors='replace')[-2000:]}"
        return dom


@pytest.fixture
def pages(topo):
    """The pages: the external host's (its origin server), the intranet's (10.A.1.3:80 on the internal
    host) and the direct-only one (192.0.2.10:80 on the internal host)."""
    with open(os.path.join(topo.docroot, "page.html"), "w") as f:
        f.write(page("external"))
    for name, addr in (("intranet", topo.intranet), ("side", SIDE)):
        d = os.path.join(str(topo.tmp), name)
        os.makedirs(d)
        with open(os.path.join(d, f"{name}.html"), "w") as f:
            f.write(page(name))
        topo.start_static("internal", addr, 80, d, name)
    return topo


def server_log(topo, name: str) -> list[str]:
    with open(os.path.join(str(topo.tmp), f"{name}.log"), errors="replace") as f:
        return [line for line in f.read().splitlines() if '"GET ' in line]


def pac_gateway(gateway, topo, **web):
    networks = {"internal": {"ranges": [topo.internal_net], "domains": ["corp.test"], "firewall_clients": True}}
    wp = {"listen": [f"{topo.gw_inside}:{topo.PROXY_PORT}"]}
    wp.update(web)
    return gateway(netns=topo.ns["gateway"], health=False, bind_external=None,
                   listeners=[{"address": topo.gw_inside, "port": 0, "methods": ["none"]}],
                   networks=networks, rules=[INTERNAL_WEB], web_proxy=wp, limits={"connect_timeout": "3s"})


def pac_url(topo) -> str:
    return f"--proxy-pac-url=http://{topo.gw_inside}:{topo.PROXY_PORT}/wpad.dat"


def test_pac_external_through_proxy_intranet_direct(pages, gateway):
    topo = pages
    gw = pac_gateway(gateway, topo)
    browser = Browser(topo)

    dom = browser.dump_dom(f"http://{NAME}/page.html", pac_url(topo))
    assert "external rendered" in dom, f"the external page did not load through the proxy: {dom[-1500:]}"
    rec = http_log(gw, method="GET", host=NAME, path="/page.html")
    assert rec["status"] == 200, rec
    assert [e for e in topo.events("request") if e["target"] == "/page.html"], topo.events("request")
    assert all(a["peer"].startswith(topo.GW_OUTSIDE + ":") for a in topo.events("accept", 80)), \
        "the external origin was reached by someone other than the gateway"
    dom = browser.dump_dom(f"https://{NAME}/page.html", pac_url(topo))
    assert "external rendered" in dom, f"the external https page did not load through the proxy: {dom[-1500:]}"
    assert http_log(gw, method="CONNECT", host=NAME, port=443, timeout=15)["status"] == 200

    for url in (f"http://{INTRANET_NAME}/intranet.html", f"http://{topo.intranet}/intranet.html"):
        dom = browser.dump_dom(url, pac_url(topo))
        assert "intranet rendered" in dom, f"{url} did not load directly: {dom[-1500:]}"
    lines = server_log(topo, "intranet")
    assert len(lines) >= 2, lines
    assert not any(line.startswith(topo.gw_inside + " ") for line in lines), \
        f"the intranet server was reached through the gateway: {lines}"
    through_proxy = [r for r in http_logs(gw) if r.get("host") in (INTRANET_NAME, topo.intranet)]
    assert not through_proxy, f"the proxy served intranet requests the script sends direct: {through_proxy}"


@pytest.mark.parametrize("backup", ["DIRECT", ""])
def test_pac_backup_route_when_the_proxy_port_is_closed(pages, gateway, backup):
    """The script names a proxy port nothing listens on (pac_proxy = GW:8081, closed): with the
    backup route DIRECT the browser reaches 192.0.2.10 directly; without one it cannot."""
    topo = pages
    pac_gateway(gateway, topo, pac_proxy=f"{topo.gw_inside}:8081", backup_route=backup)
    script = fwit.run(["ip", "netns", "exec", topo.ns["internal"], "curl", "-sS", "--max-time", "10",
                       f"http://{topo.gw_inside}:{topo.PROXY_PORT}/wpad.dat"], timeout=20)
    assert f"PROXY {topo.gw_inside}:8081" in script.stdout.decode(errors="replace"), script.stdout[-2000:]
    dom = Browser(topo).dump_dom(f"http://{SIDE}/side.html", pac_url(topo))
    if backup == "DIRECT":
        assert "side rendered" in dom, f"no fallback to DIRECT with the proxy port closed: {dom[-1500:]}"
        assert server_log(topo, "side"), "the direct-only server saw no request"
    else:
        assert "side rendered" not in dom and not server_log(topo, "side"), \
            f"without a backup route the page must not load: {dom[-1500:]}"


def test_pac_direct_only_page_goes_to_the_open_proxy(pages, gateway):
    """The contrast: with the proxy port open the same page goes through the proxy (the script says
    so), which has no route to it: 502, and the page's server sees nothing."""
    topo = pages
    gw = pac_gateway(gateway, topo)
    dom = Browser(topo).dump_dom(f"http://{SIDE}/side.html", pac_url(topo))
    assert "side rendered" not in dom, dom[-1500:]
    assert not server_log(topo, "side"), server_log(topo, "side")
    rec = http_log(gw, host=SIDE)
    assert rec["status"] == 502, rec


def test_proxy_server_flag_http_and_https(pages, gateway):
    topo = pages
    gw = pac_gateway(gateway, topo)
    browser = Browser(topo)
    proxy = f"--proxy-server=http://{topo.gw_inside}:{topo.PROXY_PORT}"
    dom = browser.dump_dom(f"http://{NAME}/page.html", proxy)
    assert "external rendered" in dom, dom[-1500:]
    dom = browser.dump_dom(f"https://{NAME}/page.html", proxy)
    assert "external rendered" in dom, dom[-1500:]
    http_log(gw, method="GET", host=NAME, path="/page.html", status=200)
    rec = http_log(gw, method="CONNECT", host=NAME, port=443, timeout=15)
    assert rec["status"] == 200, rec
    assert [e for e in topo.events("request", 443) if e["target"] == "/page.html"], topo.events("request", 443)
