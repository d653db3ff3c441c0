"""The Web Proxy (issue 13) with real clients in a real topology (network namespaces, as root):

    internal ns  10.A.1.2/24, .3 --veth-- 10.A.1.1/24  gateway ns  198.51.100.1/24 --veth-- 198.51.100.7/24  external ns

IP forwarding is off on the gateway: the internal host reaches the external one only through the
proxy at 10.A.1.1:8080 (fwit.WebTopology). The external host runs helpers/web_origin.py: HTTP on 80,
HTTPS on 443 and 8443 with a certificate of a throw-away CA made at test time, an SSH-like banner
on 22; it writes one JSON line per accepted connection and per request, so connection reuse and
refusals are counted at the origin. Clients: curl, wget, git, pip, npm, apt, python requests and
urllib, node with the npm proxy agents, and raw bytes for what no client sends (smuggling, limits,
pipelining, slow writers). Every assertion on the gateway's side reads its session log.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import textwrap
import time
import zipfile

import pytest

import fwit

pytestmark = pytest.mark.fwgate_only

NAME = fwit.WebTopology.NAME
EXTERNAL = fwit.WebTopology.EXTERNAL
MIB = 1 << 20

INTERNAL_WEB = {"name": "internal web", "action": "allow", "sources": ["internal"], "destinations": ["any"],
                "commands": ["http", "connect"]}


@pytest.fixture
def topo(tmp_path):
    for tool in ("ip", "openssl", "curl"):
        fwit.require_tool(tool)
    if os.geteuid() != 0:
        pytest.fail("the namespace tests need root (run the suite as root)")
    t = fwit.WebTopology(tmp_path)
    try:
        t.build()
        t.start_origin()
        yield t
    finally:
        problems = t.teardown()
        assert not problems, problems


def web_kwargs(topo, rules=None, web=None, users=None, networks=None, limits=None) -> dict:
    """The gateway fixture's arguments for fwgate in the gateway namespace: SOCKS on the inside
    address (port 0), the Web Proxy on 10.A.1.1:8080, the internal network named "internal"."""
    wp = {"listen": [f"{topo.gw_inside}:{topo.PROXY_PORT}"]}
    wp.update(web or {})
    nets = {"internal": {"ranges": [topo.internal_net]}}
    nets.update(networks or {})
    lim = {"connect_timeout": "3s"}
    lim.update(limits or {})
    return dict(netns=topo.ns["gateway"], health=False, bind_external=None,
                listeners=[{"address": topo.gw_inside, "port": 0, "methods": ["none"]}],
                networks=nets, rules=rules or [INTERNAL_WEB], web_proxy=wp, users=users, limits=lim)


def web_gateway(gateway, topo, **kw):
    gw = gateway(**web_kwargs(topo, **kw))
    assert gw.web_addresses() == [(topo.gw_inside, topo.PROXY_PORT)], gw.web_addresses()
    return gw


def http_log(gw, timeout: float = 10.0, **want) -> dict:
    """The first session log line of the Web Proxy ("protocol": "http") with these fields."""
    def match(rec):
        return rec.get("protocol") == "http" and all(rec.get(k) == v for k, v in want.items())
    return gw.wait_session(match, timeout)


def error_log(gw, code: int, timeout: float = 10.0) -> dict:
    """The log line of a request the proxy refused with `code` before it was understood: "status"
    says the code (as on every Web Proxy line), "error" the reason."""
    def match(rec):
        return rec.get("protocol") == "http" and rec.get("status") == code
    rec = gw.wait_session(match, timeout)
    assert rec.get("error"), f"no reason logged for the {code}: {rec}"
    return rec


def http_logs(gw) -> list[dict]:
    return [r for r in gw.sessions() if r.get("protocol") == "http"]


def in_internal(topo, argv, timeout=60.0, env=None, **extra_env) -> subprocess.CompletedProcess:
    return topo.run_in("internal", argv, timeout=timeout, env=env or topo.client_env(**extra_env))


def out(cp) -> str:
    return cp.stdout.decode(errors="replace")


def err(cp) -> str:
    return cp.stderr.decode(errors="replace")[-3000:]


def proxy_conn(topo, source: str | None = None) -> fwit.HttpConn:
    """A raw connection to the proxy from the internal host (optionally from `source`, one of its
    addresses)."""
    return fwit.HttpConn(fwit.connect_in(topo.ns["internal"], topo.gw_inside, topo.PROXY_PORT, source))


def wait_http_logs(gw, n: int, timeout: float = 10.0) -> list[dict]:
    """The Web Proxy's log lines once there are at least n (bounded wait)."""
    deadline = time.monotonic() + timeout * fwit.SLOW
    got = http_logs(gw)
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        got = http_logs(gw)
    return got


def raw(topo, data: bytes, method: str = "GET", timeout: float = 10.0) -> fwit.HttpResponse:
    """One request's bytes on a new connection to the proxy; the response."""
    with proxy_conn(topo) as c:
        c.send(data)
        return c.response(method, timeout)


def get_req(target: str, host: str = NAME, extra: list | None = None, version: str = "HTTP/1.1") -> bytes:
    return fwit.http_request("GET", target, [("Host", host)] + (extra or []), version=version)


def origin_requests(topo, marker: str) -> list[dict]:
    return [e for e in topo.events("request") if marker in e.get("target", "")]


def origin_header(echo: dict, name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k.lower() == name.lower()]


def assert_forwarded_echo(echo: dict, target: str) -> None:
    """What every forwarded request must look like at the origin."""
    assert echo["target"] == target, f"origin got request target {echo['target']!r}, expected origin-form {target!r}"
    assert origin_header(echo, "Host") == [NAME] or origin_header(echo, "Host")[0].startswith(NAME), echo["headers"]
    via = origin_header(echo, "Via")
    assert via and "fwgate" in via[-1], f"no Via naming the proxy at the origin: {echo['headers']}"
    for hop in ("Proxy-Connection", "Proxy-Authorization", "Keep-Alive", "TE", "Trailer", "Upgrade"):
        assert not origin_header(echo, hop), f"hop-by-hop {hop} reached the origin: {echo['headers']}"


# ---------------------------------------------------------------------------------------------
# Clients, each as a user runs it


def test_curl_http(topo, gateway):
    gw = web_gateway(gateway, topo)
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-x", topo.proxy, f"http://{NAME}/echo?client=curl"])
    assert cp.returncode == 0, err(cp)
    echo = json.loads(out(cp))
    assert_forwarded_echo(echo, "/echo?client=curl")
    assert not origin_header(echo, "X-Forwarded-For"), "X-Forwarded-For is off by default"
    rec = http_log(gw, method="GET", host=NAME)
    assert rec["port"] == 80 and rec["path"] == "/echo" and rec["status"] == 200, rec
    assert "client=curl" not in json.dumps(rec), f"the query string is logged: {rec}"
    assert rec["rule"] == "internal web" and rec["bytes_down"] > 0, rec
    assert topo.internal in str(rec.get("client")), rec


def test_curl_https_connect(topo, gateway):
    gw = web_gateway(gateway, topo)
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-x", topo.proxy, "--cacert", topo.certs["ca"],
                            f"https://{NAME}/echo?client=curl-tls"])
    assert cp.returncode == 0, err(cp)
    echo = json.loads(out(cp))
    assert echo["port"] == 443 and echo["target"] == "/echo?client=curl-tls", echo
    # Through a tunnel the proxy sees nothing of the request: no Via inside TLS.
    assert not origin_header(echo, "Via"), echo["headers"]
    rec = http_log(gw, method="CONNECT", host=NAME)
    assert rec["port"] == 443 and rec["status"] == 200 and rec["rule"] == "internal web", rec
    assert rec["bytes_up"] > 0 and rec["bytes_down"] > 0, f"a tunnel's line counts its bytes: {rec}"


def test_wget_through_env(topo, gateway):
    wget = fwit.require_tool("wget")
    gw = web_gateway(gateway, topo)
    env = topo.client_env(http_proxy=topo.proxy, https_proxy=topo.proxy)
    for url, target in ((f"http://{NAME}/echo?client=wget", "/echo?client=wget"),
                        (f"https://{NAME}/echo?client=wget-tls", "/echo?client=wget-tls")):
        cp = in_internal(topo, [wget, "--no-config", "-q", "-O", "-", "--tries=1", "--timeout=20",
                                f"--ca-certificate={topo.certs['ca']}", url], env=env)
        assert cp.returncode == 0, f"wget {url}: {err(cp)}"
        echo = json.loads(out(cp))
        assert echo["target"] == target, echo
        if url.startswith("http:"):
            assert_forwarded_echo(echo, target)
    http_log(gw, method="GET", host=NAME, path="/echo", status=200)
    http_log(gw, method="CONNECT", host=NAME, port=443)


def make_dumb_repo(topo) -> str:
    """A git repository served as static files (the "dumb" HTTP protocol) under the docroot."""
    src = os.path.join(str(topo.tmp), "git-src")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "init.defaultBranch=main"]
    assert fwit.run(git + ["init", "-q", src]).returncode == 0
    with open(os.path.join(src, "README"), "w") as f:
        f.write("cloned through the fwgate web proxy\n")
    for args in (["add", "README"], ["commit", "-qm", "one"]):
        cp = fwit.run(git + ["-C", src] + args)
        assert cp.returncode == 0, err(cp)
    bare = os.path.join(topo.docroot, "repo.git")
    assert fwit.run(git + ["clone", "-q", "--bare", src, bare]).returncode == 0
    assert fwit.run(["git", "-C", bare, "repack", "-a", "-d", "-q"]).returncode == 0
    assert fwit.run(["git", "-C", bare, "update-server-info"]).returncode == 0
    head = fwit.run(["git", "-C", bare, "rev-parse", "HEAD"]).stdout.decode().strip()
    return head


def test_git_clone_and_ls_remote(topo, gateway):
    fwit.require_tool("git")
    head = make_dumb_repo(topo)
    gw = web_gateway(gateway, topo)
    env = topo.client_env(http_proxy=topo.proxy, https_proxy=topo.proxy, GIT_CONFIG_NOSYSTEM="1",
                          GIT_CONFIG_GLOBAL="/dev/null", GIT_TERMINAL_PROMPT="0")
    dest = os.path.join(str(topo.tmp), "clone")
    cp = in_internal(topo, ["git", "clone", "-q", f"http://{NAME}/repo.git", dest], env=env, timeout=90)
    assert cp.returncode == 0, err(cp)
    with open(os.path.join(dest, "README")) as f:
        assert f.read() == "cloned through the fwgate web proxy\n"
    cp = in_internal(topo, ["git", "ls-remote", f"https://{NAME}/repo.git"], env=env, timeout=60)
    assert cp.returncode == 0, err(cp)
    assert head in out(cp), out(cp)
    http_log(gw, method="GET", host=NAME, path="/repo.git/info/refs")
    http_log(gw, method="CONNECT", host=NAME, port=443)


def make_wheel(directory: str, name: str = "fwgate_it_pkg", version: str = "1.0") -> str:
    """A tiny pure-Python wheel, written by hand (PEP 427)."""
    os.makedirs(directory, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": b"MESSAGE = 'downloaded through the fwgate web proxy'\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: fwgate-it\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(directory, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for p, data in files.items():
            z.writestr(p, data)
    return path


def test_pip_download(topo, gateway):
    """pip against a simple index (PEP 503) on the external host's HTTPS server, through --proxy."""
    wheel = make_wheel(os.path.join(topo.docroot, "packages"))
    digest = fwit.sha256_file(wheel)
    index = os.path.join(topo.docroot, "simple", "fwgate-it-pkg")
    os.makedirs(index)
    with open(os.path.join(index, "index.html"), "w") as f:
        f.write(f'<!DOCTYPE html><html><body><a href="../../packages/{os.path.basename(wheel)}#sha256={digest}">'
                f'{os.path.basename(wheel)}</a></body></html>\n')
    gw = web_gateway(gateway, topo)
    dest = os.path.join(str(topo.tmp), "pip-dest")
    cp = in_internal(topo, [fwit.PYTHON, "-m", "pip", "download", "--isolated", "--no-cache-dir",
                            "--disable-pip-version-check", "--no-deps", "--only-binary=:all:", "--timeout", "20",
                            "--retries", "0", "--proxy", topo.proxy, "--cert", topo.certs["ca"],
                            "--index-url", f"https://{NAME}/simple/", "-d", dest, "fwgate-it-pkg==1.0"],
                     timeout=120, PIP_CONFIG_FILE="/dev/null")
    assert cp.returncode == 0, out(cp)[-2000:] + err(cp)
    got = os.path.join(dest, os.path.basename(wheel))
    assert os.path.exists(got) and fwit.sha256_file(got) == digest, os.listdir(dest) if os.path.isdir(dest) else dest
    http_log(gw, method="CONNECT", host=NAME, port=443)


def make_npm_registry(topo, name: str = "fwgate-it-pkg", version: str = "1.0.0") -> None:
    """A registry of one package as static files: the packument at /npm/NAME, the tarball beside."""
    buf = io.BytesIO()
    files = {"package/package.json": json.dumps({"name": name, "version": version, "main": "index.js"}).encode(),
             "package/index.js": b"module.exports = 'installed through the fwgate web proxy';\n"}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
            tar.addfile(info, io.BytesIO(data))
    tgz = buf.getvalue()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    os.makedirs(os.path.join(topo.docroot, "npm"), exist_ok=True)
    os.makedirs(os.path.join(topo.docroot, "npm-tarballs"), exist_ok=True)
    with open(os.path.join(topo.docroot, "npm-tarballs", f"{name}-{version}.tgz"), "wb") as f:
        f.write(tgz)
    doc = {"name": name, "dist-tags": {"latest": version},
           "versions": {version: {"name": name, "version": version, "main": "index.js",
                                  "dist": {"tarball": f"https://{NAME}/npm-tarballs/{name}-{version}.tgz",
                                           "integrity": integrity,
                                           "shasum": hashlib.sha1(tgz).hexdigest()}}}}
    with open(os.path.join(topo.docroot, "npm", name), "w") as f:
        json.dump(doc, f)


def test_npm_view_and_install(topo, gateway):
    npm = fwit.require_tool("npm")
    make_npm_registry(topo)
    gw = web_gateway(gateway, topo)
    prefix = os.path.join(str(topo.tmp), "npm-prefix")
    os.makedirs(prefix)
    npmrc = os.path.join(str(topo.tmp), "npmrc")
    open(npmrc, "w").close()
    common = [f"--registry=https://{NAME}/npm/", f"--proxy={topo.proxy}", f"--https-proxy={topo.proxy}",
              f"--cafile={topo.certs['ca']}", f"--cache={topo.tmp}/npm-cache", f"--userconfig={npmrc}",
              "--no-audit", "--no-fund", "--no-update-notifier", "--fetch-retries=0", "--fetch-timeout=20000"]
    cp = in_internal(topo, [npm, "view", "fwgate-it-pkg", "version"] + common, timeout=90)
    assert cp.returncode == 0 and out(cp).strip() == "1.0.0", out(cp) + err(cp)
    cp = in_internal(topo, [npm, "install", f"--prefix={prefix}", "fwgate-it-pkg"] + common, timeout=120)
    assert cp.returncode == 0, out(cp) + err(cp)
    with open(os.path.join(prefix, "node_modules", "fwgate-it-pkg", "index.js")) as f:
        assert "installed through the fwgate web proxy" in f.read()
    http_log(gw, method="CONNECT", host=NAME, port=443)


def make_apt_repo(topo) -> str:
    """A flat apt repository of one package under /apt on the external host's HTTP server."""
    fwit.require_tool("dpkg-deb")
    pkg = os.path.join(str(topo.tmp), "deb-src")
    os.makedirs(os.path.join(pkg, "DEBIAN"))
    os.makedirs(os.path.join(pkg, "usr", "share", "doc", "fwgate-it-pkg"))
    with open(os.path.join(pkg, "DEBIAN", "control"), "w") as f:
        f.write("Package: fwgate-it-pkg\nVersion: 1.0\nArchitecture: all\nMaintainer: fwgate tests <t@t.invalid>\n"
                "Description: fetched by apt through the fwgate web proxy\n")
    with open(os.path.join(pkg, "usr", "share", "doc", "fwgate-it-pkg", "README"), "w") as f:
        f.write("apt through fwgate\n")
    repo = os.path.join(topo.docroot, "apt")
    os.makedirs(repo)
    deb = os.path.join(repo, "fwgate-it-pkg_1.0_all.deb")
    cp = fwit.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", pkg, deb])
    assert cp.returncode == 0, err(cp)
    data = open(deb, "rb").read()
    packages = ("Package: fwgate-it-pkg\nVersion: 1.0\nArchitecture: all\nMaintainer: fwgate tests <t@t.invalid>\n"
                f"Filename: ./fwgate-it-pkg_1.0_all.deb\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
                "Description: fetched by apt through the fwgate web proxy\n\n").encode()
    with open(os.path.join(repo, "Packages"), "wb") as f:
        f.write(packages)
    with open(os.path.join(repo, "Release"), "w") as f:
        f.write("Origin: fwgate-it\nLabel: fwgate-it\nSuite: fwgate-it\nCodename: fwgate-it\n"
                f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime())}\nArchitectures: all amd64 arm64\n"
                f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n")
    return hashlib.sha256(data).hexdigest()


def test_apt_update_and_download(topo, gateway):
    """apt-get update and download against a repository on the external host, with http_proxy;
    apt's state in the test's directory, none of the machine's apt configuration read."""
    fwit.require_tool("apt-get")
    digest = make_apt_repo(topo)
    gw = web_gateway(gateway, topo)
    root = os.path.join(str(topo.tmp), "apt-state")
    for d in ("lists/partial", "cache/archives/partial", "etc/parts", "etc/prefs", "dl"):
        os.makedirs(os.path.join(root, d))
    with open(os.path.join(root, "etc", "sources.list"), "w") as f:
        f.write(f"deb [trusted=yes] http://{NAME}/apt ./\n")
    conf = os.path.join(root, "etc", "apt.conf")
    with open(conf, "w") as f:
        f.write(textwrap.dedent(f"""\
            Dir::Etc::main "/dev/null";
            Dir::Etc::parts "{root}/etc/parts";
            Dir::Etc::sourcelist "{root}/etc/sources.list";
            Dir::Etc::sourceparts "{root}/etc/parts";
            Dir::Etc::preferences "/dev/null";
            Dir::Etc::preferencesparts "{root}/etc/prefs";
            Dir::State::Lists "{root}/lists";
            Dir::Cache "{root}/cache";
            Dir::Cache::pkgcache "";
            Dir::Cache::srcpkgcache "";
            APT::Sandbox::User "root";
            Debug::NoLocking "true";
            Acquire::Languages "none";
            Acquire::Retries "0";
            Acquire::http::Timeout "20";
            """))
    env = topo.client_env(APT_CONFIG=conf, http_proxy=topo.proxy)
    cp = in_internal(topo, ["apt-get", "-q", "update"], env=env, timeout=120)
    assert cp.returncode == 0 and "Err:" not in out(cp) and "W:" not in err(cp), out(cp) + err(cp)
    assert any("Packages" in f for f in os.listdir(os.path.join(root, "lists"))), os.listdir(os.path.join(root, "lists"))
    cp = topo.run_in("internal", ["sh", "-c", f"cd {root}/dl && exec apt-get -q download fwgate-it-pkg"],
                     timeout=120, env=env)
    assert cp.returncode == 0, out(cp) + err(cp)
    got = os.path.join(root, "dl", "fwgate-it-pkg_1.0_all.deb")
    assert os.path.exists(got) and fwit.sha256_file(got) == digest, os.listdir(os.path.join(root, "dl"))
    gw.wait_session(lambda r: r.get("protocol") == "http" and r.get("method") == "GET" and r.get("status") == 200
                    and str(r.get("path")).endswith("/fwgate-it-pkg_1.0_all.deb"))


PY_REQUESTS = """
import json, sys, requests
url, proxy, ca = sys.argv[1:4]
r = requests.get(url, proxies={"http": proxy, "https": proxy}, verify=ca, timeout=20)
print(json.dumps({"status": r.status_code, "body": r.text}))
"""

PY_URLLIB = """
import json, ssl, sys, urllib.request
url, ca = sys.argv[1:3]
ctx = ssl.create_default_context(cafile=ca)
# ProxyHandler() reads http_proxy / https_proxy from the environment.
opener = urllib.request.build_opener(urllib.request.ProxyHandler(), urllib.request.HTTPSHandler(context=ctx))
with opener.open(url, timeout=20) as r:
    print(json.dumps({"status": r.status, "body": r.read().decode()}))
"""


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_python_requests(topo, gateway, scheme):
    gw = web_gateway(gateway, topo)
    cp = in_internal(topo, [fwit.PYTHON, "-c", PY_REQUESTS, f"{scheme}://{NAME}/echo?client=requests", topo.proxy,
                            topo.certs["ca"]])
    assert cp.returncode == 0, err(cp)
    got = json.loads(out(cp))
    assert got["status"] == 200 and json.loads(got["body"])["target"] == "/echo?client=requests", got
    http_log(gw, method="GET" if scheme == "http" else "CONNECT", host=NAME)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_python_urllib(topo, gateway, scheme):
    gw = web_gateway(gateway, topo)
    cp = in_internal(topo, [fwit.PYTHON, "-c", PY_URLLIB, f"{scheme}://{NAME}/echo?client=urllib", topo.certs["ca"]],
                     http_proxy=topo.proxy, https_proxy=topo.proxy)
    assert cp.returncode == 0, err(cp)
    got = json.loads(out(cp))
    assert got["status"] == 200 and json.loads(got["body"])["target"] == "/echo?client=urllib", got
    http_log(gw, method="GET" if scheme == "http" else "CONNECT", host=NAME)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_node_proxy_agent(topo, gateway, scheme):
    node = fwit.require_tool("node")
    script = os.path.join(fwit.NODE_DIR, "web_proxy_client.js")
    if not os.path.isdir(os.path.join(fwit.NODE_DIR, "node_modules", "https-proxy-agent")):
        pytest.fail("the npm proxy agents are not installed: run scripts/setup-deps.sh")
    gw = web_gateway(gateway, topo)
    cp = in_internal(topo, [node, script, f"{scheme}://{NAME}/echo?client=node", topo.proxy, topo.certs["ca"]])
    assert cp.returncode == 0, out(cp) + err(cp)
    got = json.loads(out(cp).strip().splitlines()[-1])
    assert got["status"] == 200 and json.loads(got["body"])["target"] == "/echo?client=node", got
    http_log(gw, method="GET" if scheme == "http" else "CONNECT", host=NAME)


def test_ipv6_origins(topo, gateway):
    """An IPv6 literal in the URI (brackets in the URI and in Host), a CONNECT to one, and a name
    that has only an IPv6 address: the proxy reaches the origin over IPv6."""
    E6, N6 = topo.EXTERNAL6, topo.NAME6
    gw = web_gateway(gateway, topo)
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-g", "-x", topo.proxy, f"http://[{E6}]/echo?v6=literal"])
    assert cp.returncode == 0, err(cp)
    echo = json.loads(out(cp))
    assert echo["target"] == "/echo?v6=literal" and origin_header(echo, "Host") == [f"[{E6}]"], echo
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-x", topo.proxy, f"http://{N6}/echo?v6=name"])
    assert cp.returncode == 0 and json.loads(out(cp))["target"] == "/echo?v6=name", err(cp)
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-g", "-x", topo.proxy, "--cacert", topo.certs["ca"],
                            f"https://[{E6}]/echo?v6=tls"])
    assert cp.returncode == 0 and json.loads(out(cp))["target"] == "/echo?v6=tls", err(cp)
    peers = [e["peer"] for e in topo.events("accept") if e["port"] in (80, 443)]
    assert len(peers) == 3 and all(p.startswith(topo.GW_OUTSIDE6 + ":") for p in peers), peers
    rec = http_log(gw, method="GET", host=E6)
    assert rec["port"] == 80 and rec["status"] == 200 and rec["path"] == "/echo", rec
    rec = http_log(gw, method="CONNECT", host=E6)
    assert rec["port"] == 443 and rec["status"] == 200, rec


# ---------------------------------------------------------------------------------------------
# Bodies, persistence, framing


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_post_50_mib(topo, gateway, framing):
    """50 MiB up through the proxy, chunked (curl with Transfer-Encoding: chunked) or with a
    Content-Length (curl then sends Expect: 100-continue), checked by sha256 at the origin."""
    seed = f"up-{framing}"
    path = os.path.join(str(topo.tmp), "up.bin")
    digest = fwit.pattern_file(path, 50 * MIB, seed)
    gw = web_gateway(gateway, topo)
    cmd = ["curl", "-sS", "--max-time", "60", "-x", topo.proxy, "--data-binary", f"@{path}",
           "-H", "Content-Type: application/octet-stream"]
    if framing == "chunked":
        cmd += ["-H", "Transfer-Encoding: chunked"]
    cp = in_internal(topo, cmd + [f"http://{NAME}/echo?post={framing}"], timeout=90)
    assert cp.returncode == 0, err(cp)
    echo = json.loads(out(cp))
    assert echo["body_len"] == 50 * MIB and echo["body_sha256"] == digest, \
        f"origin got {echo['body_len']} bytes sha256 {echo['body_sha256']}, sent {50 * MIB} {digest}"
    rec = http_log(gw, method="POST", host=NAME, path="/echo", timeout=20)
    assert rec["status"] == 200 and rec["bytes_up"] >= 50 * MIB, rec


@pytest.mark.parametrize("how", ["content-length", "chunked", "close", "connect"])
def test_download_50_mib(topo, gateway, how):
    """50 MiB down: with a Content-Length, chunked, delimited by the origin's close, and through
    a CONNECT tunnel; sha256 of what curl wrote."""
    seed = f"down-{how}"
    n = 50 * MIB
    url = {"content-length": f"http://{NAME}/bytes?n={n}&seed={seed}",
           "chunked": f"http://{NAME}/bytes?n={n}&seed={seed}&chunked=1",
           "close": f"http://{NAME}/close?n={n}&seed={seed}",
           "connect": f"https://{NAME}/bytes?n={n}&seed={seed}"}[how]
    gw = web_gateway(gateway, topo)
    dest = os.path.join(str(topo.tmp), "down.bin")
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "60", "-x", topo.proxy, "--cacert", topo.certs["ca"],
                            "-o", dest, "-w", "%{http_code}", url], timeout=90)
    assert cp.returncode == 0 and out(cp) == "200", out(cp) + err(cp)
    assert os.path.getsize(dest) == n, f"got {os.path.getsize(dest)} bytes of {n}"
    assert fwit.sha256_file(dest) == fwit.pattern_sha256(n, seed), "the body changed on the way"
    rec = http_log(gw, method="CONNECT" if how == "connect" else "GET", host=NAME, timeout=20)
    assert rec["bytes_down"] >= n, rec


def gateway_accepts(topo, port: int = 80) -> list[dict]:
    return [e for e in topo.events("accept", port) if e["peer"].startswith(topo.GW_OUTSIDE + ":")]


def test_keep_alive_reuse_raw(topo, gateway):
    """Two requests on one client connection: one TCP connection to the proxy (this socket) and
    one to the origin (counted by the origin)."""
    gw = web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/echo?ka=1"))
        first = c.response()
        c.send(get_req(f"http://{NAME}/echo?ka=2"))
        second = c.response()
    assert first.status == 200 and second.status == 200, (first, second)
    a, b = json.loads(first.body), json.loads(second.body)
    assert a["conn"] == b["conn"] and b["n"] == 2, f"origin connections {a['conn']} and {b['conn']}: not reused"
    assert len(gateway_accepts(topo)) == 1, f"origin accepted {gateway_accepts(topo)}"
    assert len([r for r in wait_http_logs(gw, 2) if r.get("path") == "/echo"]) == 2, http_logs(gw)


def test_keep_alive_reuse_curl(topo, gateway):
    """curl fetching two URLs in one run: it connects to the proxy once (num_connects 1 then 0), and
    the proxy connects to the origin once."""
    web_gateway(gateway, topo)
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-x", topo.proxy, "-o", "/dev/null", "-o", "/dev/null",
                            "-w", "%{num_connects}\n", f"http://{NAME}/echo?c=1", f"http://{NAME}/echo?c=2"])
    assert cp.returncode == 0, err(cp)
    assert out(cp).split() == ["1", "0"], f"curl's connections per transfer: {out(cp).split()}"
    assert len(gateway_accepts(topo)) == 1, f"origin accepted {gateway_accepts(topo)}"


@pytest.mark.parametrize("kind", ["GET", "POST chunked"])
def test_no_delayed_ack_stall_per_request(topo, gateway, kind):
    """Sequential requests on one keep-alive connection cost about a millisecond each here; a
    proxy that writes a message in pieces without TCP_NODELAY stalls each on the peer's delayed
    ACK (40 ms). 40 requests must take well under that."""
    web_gateway(gateway, topo)
    n = 40
    argv = ["curl", "-sS", "--max-time", "30", "-x", topo.proxy]
    if kind != "GET":
        argv += ["-H", "Transfer-Encoding: chunked", "--data-binary", "a small body"]
    for i in range(n):
        argv += [f"http://{NAME}/echo?seq={i}", "-o", "/dev/null"]
    start = time.monotonic()
    cp = in_internal(topo, argv, timeout=60)
    per = (time.monotonic() - start) / n * 1000
    assert cp.returncode == 0, err(cp)
    assert len(gateway_accepts(topo)) == 1, gateway_accepts(topo)
    assert per < 15 * fwit.SLOW, f"{per:.1f} ms per {kind} request on a persistent connection"


def test_origin_pool_not_shared_between_users(topo, gateway):
    """With authentication on, an idle origin connection is reused only for the same user."""
    users = {"alice": "a-" + os.urandom(4).hex(), "bob": "b-" + os.urandom(4).hex()}
    rules = [dict(INTERNAL_WEB, name="staff", users=["alice", "bob"])]
    gw = web_gateway(gateway, topo, rules=rules, users=users)

    def fetch(user, tag):
        cred = base64.b64encode(f"{user}:{users[user]}".encode()).decode()
        with proxy_conn(topo) as c:
            c.send(get_req(f"http://{NAME}/echo?u={tag}", extra=[("Proxy-Authorization", f"Basic {cred}")]))
            r = c.response()
        assert r.status == 200, r
        return json.loads(r.body)["conn"]

    a1 = fetch("alice", "a1")
    b1 = fetch("bob", "b1")
    a2 = fetch("alice", "a2")
    assert b1 != a1, "bob's request went over alice's origin connection"
    assert a2 in (a1, b1) and a2 != b1, f"alice's second request: origin connection {a2} (alice {a1}, bob {b1})"
    assert {r.get("user") for r in http_logs(gw)} == {"alice", "bob"}, http_logs(gw)


def test_pipelined_requests_in_order(topo, gateway):
    gw = web_gateway(gateway, topo)
    reqs = [("GET", f"http://{NAME}/echo?p=1"), ("HEAD", f"http://{NAME}/bytes?n=1000&seed=h"),
            ("GET", f"http://{NAME}/status/204"), ("GET", f"http://{NAME}/bytes?n=5000&seed=p&chunked=1"),
            ("GET", f"http://{NAME}/echo?p=5")]
    with proxy_conn(topo) as c:
        c.send(b"".join(fwit.http_request(m, t, [("Host", NAME)]) for m, t in reqs))
        got = [c.response(m, timeout=15) for m, _ in reqs]
    assert json.loads(got[0].body)["target"] == "/echo?p=1", got[0]
    assert got[1].status == 200 and got[1].body == b"" and got[1].header("Content-Length") == "1000", got[1]
    assert got[2].status == 204 and got[2].body == b"", got[2]
    assert hashlib.sha256(got[3].body).hexdigest() == fwit.pattern_sha256(5000, "p"), got[3]
    assert json.loads(got[4].body)["target"] == "/echo?p=5", got[4]
    paths = [r.get("path") for r in wait_http_logs(gw, 5)]
    assert paths.count("/echo") == 2 and len(paths) == 5, paths


def test_http10_client(topo, gateway):
    """An HTTP/1.0 request without Host: answered, Host made from the absolute URI, closed after."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(b"GET http://" + NAME.encode() + b"/echo?v=10 HTTP/1.0\r\nUser-Agent: fwgate-it/1.0\r\n\r\n")
        r = c.response()
        assert r.status == 200, r
        echo = json.loads(r.body)
        c.closed()
    assert_forwarded_echo(echo, "/echo?v=10")
    assert origin_header(echo, "Host") == [NAME], echo["headers"]


def test_http10_client_gets_a_chunked_response_dechunked(topo, gateway):
    """The origin answers chunked; an HTTP/1.0 client cannot read chunks: the body arrives
    whole, delimited by the close."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(b"GET http://" + NAME.encode() + b"/bytes?n=300000&seed=ten&chunked=1 HTTP/1.0\r\n\r\n")
        r = c.response(timeout=15)
    assert r.status == 200 and "chunked" not in r.tokens("Transfer-Encoding"), r
    assert hashlib.sha256(r.body).hexdigest() == fwit.pattern_sha256(300000, "ten"), \
        f"{len(r.body)} bytes ({r.framing}), not the origin's 300000"


def test_response_hop_by_hop_fields_removed(topo, gateway):
    web_gateway(gateway, topo)
    r = raw(topo, get_req(f"http://{NAME}/hop-response"))
    assert r.status == 200 and r.body == b"hop-by-hop fields in the response\n", r
    for hop in ("X-Hop", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "Trailer", "Upgrade"):
        assert r.header(hop) is None, f"the origin's hop-by-hop {hop} reached the client: {r.headers}"
    assert "x-hop" not in r.tokens("Connection"), r.headers
    assert r.header("X-End-To-End") == "passes", r.headers


def test_origin_response_with_content_length_and_chunked(topo, gateway):
    """An origin answering with both framings (RFC 9112 6.3: "ought to be handled as an error";
    an intermediary that forwards it must drop the Content-Length and use the chunked framing):
    either a 502, or the chunked body whole without the Content-Length; never both framings."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/raw?kind=cl-te"))
        r = c.response()
        assert r.status == 502 or (r.status == 200 and r.body == b"the chunked body wins\n"), r
        assert not (r.header("Content-Length") and r.tokens("Transfer-Encoding")), f"both framings passed on: {r.headers}"
        # The connection is closed, as the answer says, or still in step: the next response is
        # the next request's.
        if "close" in r.tokens("Connection"):
            c.closed()
        else:
            c.send(get_req(f"http://{NAME}/echo?after-cl-te"))
            nxt = c.response()
            assert nxt.status == 200 and json.loads(nxt.body)["target"] == "/echo?after-cl-te", \
                f"after {r.status} without Connection: close ({r.headers}), the next request got {nxt}"


def test_origin_garbage_is_502(topo, gateway):
    gw = web_gateway(gateway, topo)
    r = raw(topo, get_req(f"http://{NAME}/raw?kind=garbage"))
    assert r.status == 502, r
    rec = http_log(gw, path="/raw")
    assert rec["status"] == 502 and rec.get("error"), rec


def test_pooled_origin_connection_closed_by_the_origin(topo, gateway):
    """The origin closes an idle pooled connection without notice: the next request is not lost
    (the pool sees the close, or the request is retried on a new connection)."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/raw?kind=drop"))
        assert c.response().status == 200
        time.sleep(0.6)
        for n in range(3):
            c.send(get_req(f"http://{NAME}/echo?after-drop={n}"))
            r = c.response()
            assert r.status == 200 and json.loads(r.body)["target"] == f"/echo?after-drop={n}", \
                f"request {n} after the origin dropped its pooled connection: {r}"
    assert topo.events("dropped"), "the origin did not drop the connection"
    assert len(gateway_accepts(topo)) == 2, f"origin connections: {gateway_accepts(topo)}"


def test_many_pipelined_requests(topo, gateway):
    web_gateway(gateway, topo)
    n = 100
    with proxy_conn(topo) as c:
        c.send(b"".join(get_req(f"http://{NAME}/echo?pipe={i}") for i in range(n)))
        targets = [json.loads(c.response(timeout=20).body)["target"] for _ in range(n)]
    assert targets == [f"/echo?pipe={i}" for i in range(n)], targets


def test_chunked_request_with_extensions_and_trailers(topo, gateway):
    web_gateway(gateway, topo)
    body = b"hello chunked world"
    data = (fwit.http_request("POST", f"http://{NAME}/echo?ext", [("Host", NAME), ("Transfer-Encoding", "chunked"),
                                                                  ("Trailer", "X-Checksum")])
            + b"5;name=value\r\nhello\r\n" + b"e\r\n chunked world\r\n" + b"0\r\nX-Checksum: 42\r\n\r\n")
    r = raw(topo, data, "POST")
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest() and echo["body_len"] == len(body), echo


@pytest.mark.parametrize("case", ["missing", "two"])
def test_host_field_rules(topo, gateway, case):
    """RFC 9112 3.2: an HTTP/1.1 request without Host, or with two Host fields, is a 400."""
    web_gateway(gateway, topo)
    extra = [] if case == "missing" else [("Host", NAME), ("Host", "other.example")]
    with proxy_conn(topo) as c:
        c.send(fwit.http_request("GET", f"http://{NAME}/echo?host-{case}", extra))
        r = c.response()
    assert r.status == 400, f"Host {case}: {r}"
    assert not origin_requests(topo, f"host-{case}")


def test_expect_100_continue_refused_before_the_body(topo, gateway):
    """A client that waits for 100 Continue and is not allowed: the 407 comes instead of the
    100 (so a 50 MB upload is never sent for nothing)."""
    users = {"alice": "wonder-" + os.urandom(4).hex()}
    web_gateway(gateway, topo, rules=[dict(INTERNAL_WEB, name="alice only", users=["alice"])], users=users)
    with proxy_conn(topo) as c:
        c.send(fwit.http_request("POST", f"http://{NAME}/echo?expect-denied",
                                 [("Host", NAME), ("Expect", "100-continue"), ("Content-Length", str(50 * MIB))]))
        first = c.head(timeout=5)
    assert first.status == 407, f"expected 407 before any body, got {first}"
    assert not origin_requests(topo, "expect-denied")


def test_host_made_consistent_with_the_uri(topo, gateway):
    """A Host header that disagrees with the absolute URI: the URI wins (RFC 9112 3.2.2)."""
    web_gateway(gateway, topo)
    r = raw(topo, fwit.http_request("GET", f"http://{NAME}/echo?h=1", [("Host", "evil.example")]))
    assert r.status == 200, r
    assert origin_header(json.loads(r.body), "Host") == [NAME], r.body


def test_hop_by_hop_fields_removed(topo, gateway):
    web_gateway(gateway, topo)
    r = raw(topo, fwit.http_request("GET", f"http://{NAME}/echo?hop=1", [
        ("Host", NAME), ("Connection", "keep-alive, X-Private"), ("X-Private", "secret"),
        ("Proxy-Connection", "keep-alive"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
        ("Proxy-Authorization", "Basic " + base64.b64encode(b"nobody:x").decode()), ("X-Kept", "yes")]))
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert_forwarded_echo(echo, "/echo?hop=1")
    assert not origin_header(echo, "X-Private"), f"a field named in Connection reached the origin: {echo['headers']}"
    assert origin_header(echo, "X-Kept") == ["yes"], echo["headers"]
    assert r.header("Via") and "fwgate" in r.all("Via")[-1], f"no Via on the response: {r.headers}"


def test_x_forwarded_for_when_configured(topo, gateway):
    web_gateway(gateway, topo, web={"x_forwarded_for": True})
    r = raw(topo, get_req(f"http://{NAME}/echo?xff=1"))
    assert r.status == 200, r
    assert origin_header(json.loads(r.body), "X-Forwarded-For") == [topo.internal], r.body


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "PATCH"])
def test_other_methods(topo, gateway, method):
    gw = web_gateway(gateway, topo)
    body = f"{method} body through fwgate".encode()
    r = raw(topo, fwit.http_request(method, f"http://{NAME}/echo?m={method}", [("Host", NAME)], body), method)
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo["method"] == method and echo["body_sha256"] == hashlib.sha256(body).hexdigest(), echo
    http_log(gw, method=method, path="/echo", status=200)


def test_expect_100_continue(topo, gateway):
    """The client waits for 100 Continue before sending its body; it must come (from the proxy
    or relayed from the origin) well before curl's own one-second give-up would hide its absence."""
    web_gateway(gateway, topo)
    body = os.urandom(200000)
    with proxy_conn(topo) as c:
        c.send(fwit.http_request("POST", f"http://{NAME}/echo?expect=1",
                                 [("Host", NAME), ("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
        interim = c.head(timeout=5)
        assert interim.status == 100, f"expected 100 Continue before the body, got {interim}"
        c.send(body)
        r = c.response()
    assert r.status == 200, r
    echo = json.loads(r.body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest(), echo


def test_websocket_upgrade(topo, gateway):
    """Upgrade: websocket through a plain-HTTP request: 101 relayed, then frames both ways."""
    gw = web_gateway(gateway, topo)
    key = base64.b64encode(os.urandom(16)).decode()
    with proxy_conn(topo) as c:
        c.send(fwit.http_request("GET", f"http://{NAME}/ws", [
            ("Host", NAME), ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13")]))
        r = c.head()
        assert r.status == 101, r
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert r.header("Sec-WebSocket-Accept") == want and "websocket" in r.tokens("Upgrade"), r
        for n in range(3):
            payload = f"websocket frame {n} through fwgate".encode()
            mask = os.urandom(4)
            c.send(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            deadline = time.monotonic() + 5
            while len(c.buf) < 2 + len(payload) and c._fill(deadline):
                pass
            frame = bytes(c.buf[:2 + len(payload)])
            del c.buf[:2 + len(payload)]
            assert frame == bytes([0x81, len(payload)]) + payload, f"echo frame {frame!r}"
        c.send(bytes([0x88, 0x80]) + b"\0\0\0\0")
    rec = http_log(gw, path="/ws", timeout=10)
    assert rec["status"] == 101, rec


# ---------------------------------------------------------------------------------------------
# Policy, authentication, errors a person can read


def test_407_then_success(topo, gateway):
    users = {"alice": "wonder-" + os.urandom(4).hex()}
    rules = [dict(INTERNAL_WEB, name="alice only", users=["alice"])]
    gw = web_gateway(gateway, topo, rules=rules, users=users)
    r = raw(topo, get_req(f"http://{NAME}/echo?auth=0"))
    assert r.status == 407, r
    assert r.header("Proxy-Authenticate") == 'Basic realm="fwgate"', r.headers
    assert not origin_requests(topo, "auth=0"), "the anonymous request reached the origin"
    bad = base64.b64encode(b"alice:wrong").decode()
    r = raw(topo, get_req(f"http://{NAME}/echo?auth=bad", extra=[("Proxy-Authorization", f"Basic {bad}")]))
    assert r.status == 407, f"a wrong password: {r}"
    # curl as a user runs it: first without, then with credentials.
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "-x",
                            topo.proxy, f"http://{NAME}/echo?auth=curl0"])
    assert out(cp) == "407", out(cp) + err(cp)
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-x", topo.proxy, "--proxy-user",
                            f"alice:{users['alice']}", f"http://{NAME}/echo?auth=1"])
    assert cp.returncode == 0, err(cp)
    assert_forwarded_echo(json.loads(out(cp)), "/echo?auth=1")
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-x", topo.proxy, "--proxy-user",
                            f"alice:{users['alice']}", "--cacert", topo.certs["ca"], f"https://{NAME}/echo?auth=tls"])
    assert cp.returncode == 0 and json.loads(out(cp))["target"] == "/echo?auth=tls", err(cp)
    http_log(gw, status=407)
    rec = http_log(gw, user="alice", method="GET", status=200)
    assert rec["rule"] == "alice only", rec
    http_log(gw, user="alice", method="CONNECT")


def test_407_then_credentials_on_the_same_connection(topo, gateway):
    """As browsers do: the 407 keeps the connection, the retry with credentials goes on it."""
    users = {"alice": "wonder-" + os.urandom(4).hex()}
    web_gateway(gateway, topo, rules=[dict(INTERNAL_WEB, name="alice only", users=["alice"])], users=users)
    cred = base64.b64encode(f"alice:{users['alice']}".encode()).decode()
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/echo?same=0"))
        first = c.response()
        assert first.status == 407, first
        c.send(get_req(f"http://{NAME}/echo?same=1", extra=[("Proxy-Authorization", f"Basic {cred}")]))
        second = c.response()
        assert second.status == 200 and json.loads(second.body)["target"] == "/echo?same=1", second
        c.send(fwit.http_request("CONNECT", f"{NAME}:443", [("Host", f"{NAME}:443"),
                                                            ("Proxy-Authorization", f"Basic {cred}")]))
        assert c.response("CONNECT").status == 200


@pytest.mark.parametrize("why", ["407", "403"])
def test_refused_request_body_is_not_a_request(topo, gateway, why):
    """A POST refused before its body was read (407, 403): the body, which here looks like a
    request, must never be taken for the next request on the connection."""
    users = {"alice": "wonder-" + os.urandom(4).hex()}
    if why == "407":
        rules = [dict(INTERNAL_WEB, name="alice only", users=["alice"])]
    else:
        rules = [{"name": "no posts here", "action": "deny", "sources": ["internal"], "destinations": ["any"],
                  "ports": [80], "commands": ["http"]}]
    web_gateway(gateway, topo, rules=rules, users=users if why == "407" else None)
    inner = get_req(f"http://{NAME}/echo?desync-{why}")
    for framing in ("length", "chunked"):
        if framing == "length":
            data = fwit.http_request("POST", f"http://{NAME}/echo?outer", [("Host", NAME)], inner)
        else:
            data = fwit.http_request("POST", f"http://{NAME}/echo?outer", [("Host", NAME),
                                     ("Transfer-Encoding", "chunked")]) + fwit.chunked(inner)
        with proxy_conn(topo) as c:
            c.send(data)
            r = c.response()
            assert r.status == int(why), r
            try:
                c.send(get_req(f"http://{NAME}/echo?next-{why}"))
                after = c.response(timeout=5)
                assert after.status == int(why), f"the request after the refused POST got {after}"
            except (AssertionError, OSError) as exc:
                if "got" in str(exc):
                    raise
                # Closed after the refusal instead: just as good.
    assert not origin_requests(topo, "desync"), f"a request body was taken for a request: {origin_requests(topo, 'desync')}"


def test_403_names_the_rule(topo, gateway):
    networks = {"external-test": {"domains": ["external.test"]}}
    rules = [{"name": "no external.test", "action": "deny", "sources": ["internal"],
              "destinations": ["external-test"], "commands": ["http", "connect"]}, INTERNAL_WEB]
    gw = web_gateway(gateway, topo, rules=rules, networks=networks)
    r = raw(topo, get_req(f"http://{NAME}/echo?deny=1"))
    assert r.status == 403 and "no external.test" in r.text(), r
    r = raw(topo, fwit.http_request("CONNECT", f"{NAME}:443", [("Host", f"{NAME}:443")]), "CONNECT")
    assert r.status == 403 and "no external.test" in r.text(), r
    # The same origin by address is not in the domain network: allowed by the next rule.
    r = raw(topo, get_req(f"http://{EXTERNAL}/echo?deny=ip", host=EXTERNAL))
    assert r.status == 200, r
    assert not origin_requests(topo, "deny=1"), "the denied request reached the origin"
    rec = http_log(gw, status=403, method="GET")
    assert rec["rule"] == "no external.test" and rec["host"] == NAME, rec


def test_no_matching_rule_denies(topo, gateway):
    """Rules for the web proxy only name http: a CONNECT matches none and is denied."""
    rules = [dict(INTERNAL_WEB, name="plain http only", commands=["http"])]
    web_gateway(gateway, topo, rules=rules)
    assert raw(topo, get_req(f"http://{NAME}/echo?ok=1")).status == 200
    r = raw(topo, fwit.http_request("CONNECT", f"{NAME}:443", [("Host", f"{NAME}:443")]), "CONNECT")
    assert r.status == 403, r


def test_connect_to_22_refused_by_default(topo, gateway):
    """tunnel_ports defaults to 443: CONNECT to the SSH port is refused, the origin never sees it."""
    gw = web_gateway(gateway, topo)
    for target in (f"{EXTERNAL}:22", f"{NAME}:22"):
        r = raw(topo, fwit.http_request("CONNECT", target, [("Host", target)]), "CONNECT")
        assert r.status == 403, f"CONNECT {target}: {r}"
    assert not topo.events("accept", 22), f"the origin's port 22 was reached: {topo.events('accept', 22)}"
    # 8443 is not a tunnel port either until configured.
    r = raw(topo, fwit.http_request("CONNECT", f"{NAME}:8443", [("Host", f"{NAME}:8443")]), "CONNECT")
    assert r.status == 403, r
    rec = http_log(gw, method="CONNECT", port=22)
    assert rec["status"] == 403, rec


def test_connect_tunnel_ports_configurable(topo, gateway):
    web_gateway(gateway, topo, web={"tunnel_ports": [443, "8440-8450"]})
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-x", topo.proxy, "--cacert", topo.certs["ca"],
                            f"https://{NAME}:8443/echo?tp=1"])
    assert cp.returncode == 0 and json.loads(out(cp))["port"] == 8443, err(cp)
    r = raw(topo, fwit.http_request("CONNECT", f"{EXTERNAL}:22", [("Host", f"{EXTERNAL}:22")]), "CONNECT")
    assert r.status == 403, r


def test_connect_early_data_and_half_close(topo, gateway):
    """Bytes the client sends right behind the CONNECT head (in the same segment) reach the
    destination; the client's half-close arrives there as EOF, and the echo comes back after it."""
    web_gateway(gateway, topo, web={"tunnel_ports": [443, 7]})
    early = b"early bytes behind the CONNECT head\n"
    later = os.urandom(300000)
    with proxy_conn(topo) as c:
        c.send(fwit.http_request("CONNECT", f"{EXTERNAL}:7", [("Host", f"{EXTERNAL}:7")]) + early)
        r = c.response("CONNECT")
        assert r.status == 200, r
        c.send(later)
        c.sock.shutdown(socket.SHUT_WR)
        got = c.closed(15)
    assert got == early + later, f"echo of {len(early) + len(later)} bytes: got {len(got)}, starts {got[:60]!r}"
    done = [e for e in topo.events("echo-done", 7)]
    assert done and done[-1]["bytes"] == len(early) + len(later), done


def test_connect_unresolvable_name_502(topo, gateway):
    gw = web_gateway(gateway, topo)
    target = f"{fwit.UNKNOWN_NAME}:443"
    r = raw(topo, fwit.http_request("CONNECT", target, [("Host", target)]), "CONNECT", timeout=15)
    assert r.status == 502, r
    assert "resolve" in r.text().lower() or "not found" in r.text().lower(), f"no reason in the body: {r.text()!r}"
    r = raw(topo, get_req(f"http://{fwit.UNKNOWN_NAME}/x", host=fwit.UNKNOWN_NAME), timeout=15)
    assert r.status == 502 and ("resolve" in r.text().lower() or "not found" in r.text().lower()), r
    rec = http_log(gw, method="CONNECT", host=fwit.UNKNOWN_NAME)
    assert rec["status"] == 502, rec


def test_502_refused(topo, gateway):
    gw = web_gateway(gateway, topo)
    r = raw(topo, get_req(f"http://{EXTERNAL}:81/nothing-here", host=f"{EXTERNAL}:81"))
    assert r.status == 502 and "refused" in r.text().lower(), r
    assert http_log(gw, port=81)["status"] == 502


def test_502_unreachable(topo, gateway):
    """A destination the gateway has no route to."""
    cp = topo.run_in("gateway", ["ip", "route", "add", "unreachable", "203.0.113.0/24"])
    assert cp.returncode == 0, err(cp)
    web_gateway(gateway, topo)
    r = raw(topo, get_req("http://203.0.113.9/x", host="203.0.113.9"))
    assert r.status == 502 and ("unreachable" in r.text().lower() or "no route" in r.text().lower()), r


def test_504_connect_timeout(topo, gateway):
    """An origin that drops SYNs: 504 after connect_timeout, not a hang."""
    fwit.require_tool("nft")
    rules = "table inet fwgate_it {\n chain input {\n  type filter hook input priority 0;\n  tcp dport 82 drop\n }\n}\n"
    cp = subprocess.run(["ip", "netns", "exec", topo.ns["external"], "nft", "-f", "-"], input=rules.encode(),
                        capture_output=True, timeout=15)
    assert cp.returncode == 0, cp.stderr
    gw = web_gateway(gateway, topo, limits={"connect_timeout": "2s"})
    start = time.monotonic()
    r = raw(topo, get_req(f"http://{EXTERNAL}:82/slow", host=f"{EXTERNAL}:82"), timeout=15)
    took = time.monotonic() - start
    assert r.status == 504, r
    assert 1.5 < took < 8 * fwit.SLOW, f"504 after {took:.1f}s with connect_timeout 2s"
    assert http_log(gw, port=82)["status"] == 504


def test_protected_destinations(topo, gateway):
    """A client on the internal host cannot reach the gateway's loopback, the unspecified address or
    the gateway's own listening sockets through the proxy, though `any` destination is allowed
    (docs/configuration.md, "Protected destinations")."""
    server = topo.spawn("gateway", [fwit.PYTHON, os.path.join(fwit.HELPER_DIR, "http_server.py"), "0.0.0.0", "8099",
                                    str(topo.tmp)])
    assert fwit.read_pipe(server.stdout, 16, 15, until=b"\n").strip() == b"ready"
    gw = web_gateway(gateway, topo)
    socks = f"{topo.gw_inside}:{gw.port}"
    cases = {
        "127.0.0.1 on the gateway": get_req("http://127.0.0.1:8099/", host="127.0.0.1:8099"),
        "127.0.0.2 (all of 127/8)": get_req("http://127.0.0.2:8099/", host="127.0.0.2:8099"),
        "0.0.0.0 (the gateway itself)": get_req("http://0.0.0.0:8099/", host="0.0.0.0:8099"),
        "a name for the gateway's loopback": get_req(f"http://{fwit.TEST_NAME}:8099/", host=f"{fwit.TEST_NAME}:8099"),
        "CONNECT to the gateway's loopback": fwit.http_request("CONNECT", "127.0.0.1:443", [("Host", "127.0.0.1:443")]),
        "the gateway's SOCKS listener": get_req(f"http://{socks}/", host=socks),
    }
    got = {name: raw(topo, data, "CONNECT" if data.startswith(b"CONNECT") else "GET").status
           for name, data in cases.items()}
    wrong = {k: v for k, v in got.items() if v != 403}
    assert not wrong, f"protected destinations not refused with 403: {wrong}"
    # The proxy's own listener by absolute URI: answered by the proxy itself (refused, a loop, or
    # "not here"), never forwarded to itself.
    own = f"{topo.gw_inside}:{topo.PROXY_PORT}"
    r = raw(topo, get_req(f"http://{own}/echo-loop", host=own))
    assert r.status in (403, 404, 508), f"a request for the proxy's own listener: {r}"
    assert not [r for r in gw.sessions() if r.get("protocol") != "http"], \
        f"the proxy connected to the gateway's own SOCKS listener: {gw.sessions()}"
    # The gateway host's server saw none of it.
    time.sleep(0.2)
    server.kill()
    server.wait(5)
    log = server.stderr.read().decode(errors="replace")
    assert "GET" not in log, f"the gateway's own server was reached: {log}"
    refused = [r for r in wait_http_logs(gw, len(cases)) if r.get("status") == 403]
    assert len(refused) >= len(cases), http_logs(gw)
    assert all(r.get("rule") in ("", "protected-destination", None) or r.get("result") == "protected-destination"
               for r in refused), refused


def test_pac_script_at_its_three_paths(topo, gateway):
    """The automatic configuration script from the proxy's own listener (origin-form requests)."""
    web_gateway(gateway, topo)
    for path in ("/wpad.dat", "/proxy.pac", "/array.dll?Get.Routing.Script"):
        r = raw(topo, fwit.http_request("GET", path, [("Host", f"{topo.gw_inside}:{topo.PROXY_PORT}")]))
        assert r.status == 200, f"{path}: {r}"
        assert (r.header("Content-Type") or "").startswith("application/x-ns-proxy-autoconfig"), r.headers
        assert "FindProxyForURL" in r.text() and f"PROXY {topo.gw_inside}:{topo.PROXY_PORT}" in r.text(), r.text()
    assert not topo.events("request"), "the script requests reached the origin"


def test_sighup_reaches_persistent_connections_and_the_script(topo, gateway):
    """A reload (SIGHUP) applies to an open keep-alive connection from its next request, and the
    script served afterwards has the new direct domains."""
    kw = web_kwargs(topo)
    gw = gateway(**kw)
    script = fwit.http_request("GET", "/wpad.dat", [("Host", f"{topo.gw_inside}:{topo.PROXY_PORT}")])
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/echo?reload=before"))
        assert c.response().status == 200
        c.send(script)
        assert "reloaded.example" not in c.response().text()
        rules = [{"name": "closed for the night", "action": "deny", "sources": ["internal"], "destinations": ["any"]},
                 INTERNAL_WEB]
        web = dict(kw["web_proxy"], direct_domains=["reloaded.example"])
        gw.write_config(gateway.config_text(**dict(kw, rules=rules, web_proxy=web), _workdir=gw.workdir))
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5 * fwit.SLOW
        r = None
        for n in range(100):
            c.send(get_req(f"http://{NAME}/echo?reload=after{n}"))
            r = c.response()
            if r.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status == 403 and "closed for the night" in r.text(), f"after SIGHUP, on the same connection: {r}"
        c.send(script)
        assert "reloaded.example" in c.response().text(), "the script after SIGHUP lacks the new direct domain"
    assert gw.proc.poll() is None


# ---------------------------------------------------------------------------------------------
# Malformed requests and limits: raw bytes no client would send


def smuggle(marker: str) -> dict[str, bytes]:
    host = f"Host: {NAME}\r\n"
    post = f"POST http://{NAME}/echo?{marker} HTTP/1.1\r\n{host}"
    return {
        "CL+TE": (post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG").encode(),
        "TE+CL": (post + "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG").encode(),
        "two different Content-Lengths": (post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!").encode(),
        "a Content-Length list of different values": (post + "Content-Length: 5, 6\r\n\r\nhello!").encode(),
        "a signed Content-Length": (post + "Content-Length: +5\r\n\r\nhello").encode(),
        "Transfer-Encoding gzip": (post + "Transfer-Encoding: gzip\r\n\r\nhello").encode(),
        "Transfer-Encoding chunked, gzip": (post + "Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode(),
        "obs-fold": (f"GET http://{NAME}/echo?{marker} HTTP/1.1\r\n{host}X-Folded: one\r\n  two\r\n\r\n").encode(),
        "obs-fold of Transfer-Encoding": (post + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello").encode(),
        "bare CR in a field": (f"GET http://{NAME}/echo?{marker} HTTP/1.1\r\n{host}X-Bare: a\rb\r\n\r\n").encode(),
        "bare CR as a line end": (f"GET http://{NAME}/echo?{marker} HTTP/1.1\r{host}\r\n").encode(),
        "space before the colon": (post + "Content-Length : 5\r\n\r\nhello").encode(),
        "tab before the colon": (f"GET http://{NAME}/echo?{marker} HTTP/1.1\r\n{host}Host\t: other\r\n\r\n").encode(),
    }


SMUGGLING = list(smuggle("x"))


@pytest.mark.parametrize("case", SMUGGLING)
def test_smuggling_ambiguity_is_400_and_close(topo, gateway, case):
    marker = f"smuggle-{SMUGGLING.index(case)}"
    data = smuggle(marker)[case]
    gw = web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(data)
        r = c.response(timeout=10)
        assert r.status == 400, f"{case}: sent {data!r}, got {r}"
        rest = c.closed()
    assert rest == b"", f"{case}: bytes after the 400: {rest!r}"
    assert not origin_requests(topo, marker), f"{case}: the origin got {origin_requests(topo, marker)}"
    error_log(gw, 400)


def test_request_line_too_long_414(topo, gateway):
    gw = web_gateway(gateway, topo, web={"max_request_line": 1024, "max_header_bytes": 8192})
    long_target = f"http://{NAME}/echo?" + "a" * 2000
    with proxy_conn(topo) as c:
        c.send(get_req(long_target))
        r = c.response()
        assert r.status == 414, r
        c.closed()
    # Just under the limit is served.
    ok_target = f"http://{NAME}/echo?" + "b" * (1024 - len(f"GET http://{NAME}/echo? HTTP/1.1") - 10)
    assert raw(topo, get_req(ok_target)).status == 200
    error_log(gw, 414)


def test_header_too_large_431(topo, gateway):
    web_gateway(gateway, topo, web={"max_header_bytes": 4096, "max_request_line": 1024, "max_header_count": 16})
    r = raw(topo, get_req(f"http://{NAME}/echo?big", extra=[("X-Big", "c" * 5000)]))
    assert r.status == 431, f"one 5000-byte field with max_header_bytes 4096: {r}"
    r = raw(topo, get_req(f"http://{NAME}/echo?many", extra=[(f"X-N{i}", "v") for i in range(20)]))
    assert r.status == 431, f"21 fields with max_header_count 16: {r}"
    r = raw(topo, get_req(f"http://{NAME}/echo?fine", extra=[(f"X-N{i}", "v") for i in range(10)]))
    assert r.status == 200, r


@pytest.mark.parametrize("case", ["TLS ClientHello", "no target", "HTTP/9.9", "NUL in a field value",
                                  "NUL in the target"])
def test_malformed_heads_get_an_error_and_close(topo, gateway, case):
    data = {
        "TLS ClientHello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(40)) + b"\r\n\r\n",
        "no target": b"GET\r\n\r\n",
        "HTTP/9.9": b"GET http://" + NAME.encode() + b"/echo?v99 HTTP/9.9\r\nHost: " + NAME.encode() + b"\r\n\r\n",
        "NUL in a field value": b"GET http://" + NAME.encode() + b"/echo?nospace HTTP/1.1\r\nHost:" + NAME.encode()
                                    + b"\r\nX:\x7f\x00\r\n\r\n",
        "NUL in the target": b"GET http://" + NAME.encode() + b"/echo?\x00nul HTTP/1.1\r\nHost: " + NAME.encode() + b"\r\n\r\n",
    }[case]
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(data)
        got = c.closed(10)
    status = got[9:12]
    assert got.startswith(b"HTTP/1.") and status in (b"400", b"505"), f"sent {data[:80]!r}: got {got[:300]!r}"
    assert not topo.events("request"), f"the origin got {topo.events('request')}"


def test_origin_form_request_for_another_path(topo, gateway):
    """An origin-form request (not for a proxy) for a path the proxy does not serve: 404 naming the
    script's paths; the connection stays usable."""
    web_gateway(gateway, topo)
    with proxy_conn(topo) as c:
        c.send(fwit.http_request("GET", "/not-the-script", [("Host", f"{topo.gw_inside}:{topo.PROXY_PORT}")]))
        r = c.response()
        assert r.status == 404 and "/wpad.dat" in r.text(), r
        c.send(get_req(f"http://{NAME}/echo?after404"))
        assert c.response().status == 200


SLOW_WRITERS = r"""
import json, socket, sys, time
host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for i in range(n):
    s = socket.socket()
    s.settimeout(5)
    s.connect((host, port))
    s.sendall(b"GET http://www.external.test/echo?slow HTTP/1.1\r\nHost: www.external.test\r\nX-Slow: ")
    socks.append(s)
print(json.dumps({"held": len(socks)}), flush=True)
deadline = time.monotonic() + hold
closed = set()
for s in socks:
    s.setblocking(False)
while time.monotonic() < deadline and len(closed) < len(socks):
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            data = s.recv(4096)
            if data == b"" or data:
                closed.add(i)
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.1)
print(json.dumps({"closed": len(closed), "of": len(socks)}), flush=True)
"""


def test_slow_header_writers(topo, gateway):
    """500 connections stall in their heads (slowloris) while a valid client on another address is
    served within a bound; the stalled ones are closed once header_timeout has passed."""
    gw = web_gateway(gateway, topo, web={"header_timeout": "4s", "max_connections_per_client": 1000})
    attack = topo.spawn("internal", [fwit.PYTHON, "-c", SLOW_WRITERS, topo.gw_inside, str(topo.PROXY_PORT), "500",
                                     str(12 * fwit.SLOW)])
    line = fwit.read_pipe(attack.stdout, 64, 30, until=b"\n")
    assert json.loads(line or b"{}").get("held") == 500, f"slow writers did not all connect: {line!r}"
    for n in range(3):
        start = time.monotonic()
        cp = in_internal(topo, ["curl", "-sS", "--max-time", "10", "--interface", topo.intranet, "-x", topo.proxy,
                                f"http://{NAME}/echo?valid={n}"], timeout=20)
        took = time.monotonic() - start
        assert cp.returncode == 0 and json.loads(out(cp))["target"] == f"/echo?valid={n}", err(cp)
        assert took < 2 * fwit.SLOW, f"the valid client took {took:.1f}s beside 500 stalled ones"
    line = fwit.read_pipe(attack.stdout, 128, 30, until=b"\n")
    result = json.loads(line or b"{}")
    assert result.get("closed") == 500, f"stalled connections closed by header_timeout (4s) within 12s: {result}"
    http_log(gw, path="/echo", status=200)


def test_silent_connection_closed_by_header_timeout(topo, gateway):
    """A connection that never sends a byte is a slow header writer too: closed once
    header_timeout has passed, not kept for keep_alive_timeout."""
    web_gateway(gateway, topo, web={"header_timeout": "2s", "keep_alive_timeout": "60s"})
    with proxy_conn(topo) as c:
        start = time.monotonic()
        got = c.closed(timeout=10)
        took = time.monotonic() - start
    assert 1.5 < took < 6 * fwit.SLOW, f"a silent connection closed after {took:.1f}s with header_timeout 2s"
    assert got == b"" or got.startswith(b"HTTP/1.1 408"), got


def test_idle_keep_alive_connection_closed(topo, gateway):
    web_gateway(gateway, topo, web={"keep_alive_timeout": "2s"})
    with proxy_conn(topo) as c:
        c.send(get_req(f"http://{NAME}/echo?idle"))
        assert c.response().status == 200
        start = time.monotonic()
        c.closed(timeout=8)
        took = time.monotonic() - start
    assert 1.5 < took < 6 * fwit.SLOW, f"closed after {took:.1f}s idle with keep_alive_timeout 2s"


def test_connections_per_client_limit(topo, gateway):
    """max_connections_per_client: a connection over the limit is not served (refused, closed or
    answered 429/503); one from another address is; once one closes, a new one is served again."""
    web_gateway(gateway, topo, web={"max_connections_per_client": 4})
    held = []
    try:
        for _ in range(4):
            c = proxy_conn(topo)
            held.append(c)
            c.send(get_req(f"http://{NAME}/echo?held"))
            assert c.response().status == 200
        try:
            extra = proxy_conn(topo)
        except OSError:
            extra = None  # refused outright: not served, as it should be
        if extra is not None:
            with extra:
                try:
                    extra.send(get_req(f"http://{NAME}/echo?over"))
                    r = extra.response(timeout=3)
                except (AssertionError, OSError):
                    r = None  # closed, or never answered while the four are held
                assert r is None or r.status in (429, 503), f"the fifth connection was served: {r}"
        with fwit.HttpConn(fwit.connect_in(topo.ns["internal"], topo.gw_inside, topo.PROXY_PORT,
                                           topo.intranet)) as other:
            other.send(get_req(f"http://{NAME}/echo?other"))
            assert other.response().status == 200, "a client on another address is not limited by this one"
    finally:
        for c in held:
            c.close()
    deadline = time.monotonic() + 5 * fwit.SLOW
    for _ in range(50):
        try:
            if raw(topo, get_req(f"http://{NAME}/echo?again")).status == 200:
                break
        except (AssertionError, OSError):
            pass
        assert time.monotonic() < deadline, "no connection served after the held ones closed"
        time.sleep(0.1)
    assert not origin_requests(topo, "over"), "the connection over the limit reached the origin"


# ---------------------------------------------------------------------------------------------
# The embedded default, on ports of its own (the machine's 8080 may be taken)


def test_embedded_default_serves_the_web_proxy(gateway, http_server):
    """No --config: the embedded default's Web Proxy, moved to port 0 with --web-listen, serves a
    loopback client."""
    gw = gateway(use_config=False, listen=["127.0.0.1:0"], control_listen=["127.0.0.1:0"],
                 web_listen=["127.0.0.1:0"])
    (host, port), = gw.web_addresses()
    assert host == "127.0.0.1" and port not in (0, 8080), gw.web_addresses()
    cp = fwit.run(["curl", "-sS", "--max-time", "10", "--noproxy", "", "-x", f"http://127.0.0.1:{port}",
                   http_server.url()], timeout=20)
    assert cp.returncode == 0 and cp.stdout == http_server.body, cp.stdout + cp.stderr
    deadline = time.monotonic() + 5 * fwit.SLOW
    lines = []
    while time.monotonic() < deadline and not lines:
        lines = [json.loads(ln) for ln in gw.stderr().splitlines()
                 if ln.startswith("{") and '"http"' in ln and http_server.path in ln]
        time.sleep(0.05)
    assert lines and lines[0]["status"] == 200 and lines[0]["method"] == "GET", gw.tail()
