"""The Web Proxy (issue 13) with real clients in a real topology (network namespaces, as root):

    internal ns  10.A.1.2/24, .3 --veth-- 10.A.1.1/24  gateway ns  198.51.100.1/24 --veth-- 198.51.100.7/24  external ns

IP forwarding is off on the gateway: the internal host reaches the external one only through the
proxy at 10.A.1.1:8080 (webit.WebTopology). The external host runs helpers/web_origin.py: HTTP on 80,
HTTPS on 443 and 8443 with a certificate of a throw-away CA made at test time, an SSH-like banner
on 22; it writes one JSON line per accepted connection and per request, so connection reuse and
refusals are counted at the origin. Clients: curl, wget, git, pip, npm, apt, python requests and
urllib, node with the npm proxy agents, and raw bytes for what no client sends (smuggling, limits,
pipelining, slow writers). Every assertion on the gateway's side reads its session log.
This file: the clients, the policy and its errors, the script's paths, reload, the embedded
default; test_web_proxy_http.py: bodies, persistence, framing, malformed requests and limits.
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
import webit
from webit import (EXTERNAL, INTERNAL_WEB, NAME, assert_forwarded_echo, err, get_req, http_log, http_logs,
                   in_internal, origin_header, origin_requests, out, proxy_conn, raw, wait_http_logs,
                   web_gateway, web_kwargs)
from webit import topo  # noqa: F401 (the fixture)

pytestmark = pytest.mark.fwgate_only


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
    digest = webit.sha256_file(wheel)
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
    assert os.path.exists(got) and webit.sha256_file(got) == digest, os.listdir(dest) if os.path.isdir(dest) else dest
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
    assert os.path.exists(got) and webit.sha256_file(got) == digest, os.listdir(os.path.join(root, "dl"))
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
        c.send(webit.http_request("CONNECT", f"{NAME}:443", [("Host", f"{NAME}:443"),
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
            data = webit.http_request("POST", f"http://{NAME}/echo?outer", [("Host", NAME)], inner)
        else:
            data = webit.http_request("POST", f"http://{NAME}/echo?outer", [("Host", NAME),
                                     ("Transfer-Encoding", "chunked")]) + webit.chunked(inner)
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
    r = raw(topo, webit.http_request("CONNECT", f"{NAME}:443", [("Host", f"{NAME}:443")]), "CONNECT")
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
    r = raw(topo, webit.http_request("CONNECT", f"{NAME}:443", [("Host", f"{NAME}:443")]), "CONNECT")
    assert r.status == 403, r


def test_connect_to_22_refused_by_default(topo, gateway):
    """tunnel_ports defaults to 443: CONNECT to the SSH port is refused, the origin never sees it."""
    gw = web_gateway(gateway, topo)
    for target in (f"{EXTERNAL}:22", f"{NAME}:22"):
        r = raw(topo, webit.http_request("CONNECT", target, [("Host", target)]), "CONNECT")
        assert r.status == 403, f"CONNECT {target}: {r}"
    assert not topo.events("accept", 22), f"the origin's port 22 was reached: {topo.events('accept', 22)}"
    # 8443 is not a tunnel port either until configured.
    r = raw(topo, webit.http_request("CONNECT", f"{NAME}:8443", [("Host", f"{NAME}:8443")]), "CONNECT")
    assert r.status == 403, r
    rec = http_log(gw, method="CONNECT", port=22)
    assert rec["status"] == 403, rec


def test_connect_tunnel_ports_configurable(topo, gateway):
    web_gateway(gateway, topo, web={"tunnel_ports": [443, "8440-8450"]})
    cp = in_internal(topo, ["curl", "-sS", "--max-time", "20", "-x", topo.proxy, "--cacert", topo.certs["ca"],
                            f"https://{NAME}:8443/echo?tp=1"])
    assert cp.returncode == 0 and json.loads(out(cp))["port"] == 8443, err(cp)
    r = raw(topo, webit.http_request("CONNECT", f"{EXTERNAL}:22", [("Host", f"{EXTERNAL}:22")]), "CONNECT")
    assert r.status == 403, r


def test_connect_early_data_and_half_close(topo, gateway):
    """Bytes the client sends right behind the CONNECT head (in the same segment) reach the
    destination; the client's half-close arrives there as EOF, and the echo comes back after it."""
    web_gateway(gateway, topo, web={"tunnel_ports": [443, 7]})
    early = b"early bytes behind the CONNECT head\n"
    later = os.urandom(300000)
    with proxy_conn(topo) as c:
        c.send(webit.http_request("CONNECT", f"{EXTERNAL}:7", [("Host", f"{EXTERNAL}:7")]) + early)
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
    r = raw(topo, webit.http_request("CONNECT", target, [("Host", target)]), "CONNECT", timeout=15)
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
        "CONNECT to the gateway's loopback": webit.http_request("CONNECT", "127.0.0.1:443", [("Host", "127.0.0.1:443")]),
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
        r = raw(topo, webit.http_request("GET", path, [("Host", f"{topo.gw_inside}:{topo.PROXY_PORT}")]))
        assert r.status == 200, f"{path}: {r}"
        assert (r.header("Content-Type") or "").startswith("application/x-ns-proxy-autoconfig"), r.headers
        assert "FindProxyForURL" in r.text() and f"PROXY {topo.gw_inside}:{topo.PROXY_PORT}" in r.text(), r.text()
    assert not topo.events("request"), "the script requests reached the origin"


def test_sighup_reaches_persistent_connections_and_the_script(topo, gateway):
    """A reload (SIGHUP) applies to an open keep-alive connection from its next request, and the
    script served afterwards has the new direct domains."""
    kw = web_kwargs(topo)
    gw = gateway(**kw)
    script = webit.http_request("GET", "/wpad.dat", [("Host", f"{topo.gw_inside}:{topo.PROXY_PORT}")])
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
