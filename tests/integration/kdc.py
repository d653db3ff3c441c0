"""A Kerberos realm of a test's own: MIT krb5's KDC (krb5kdc) on an address of a network namespace,
its database, principals and keytabs in the test's directory, and the krb5.conf every client of
the test is pointed at (KRB5_CONFIG). Nothing of the machine's /etc/krb5.conf, /var/lib/krb5kdc
or /var/tmp replay caches is read or written."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import fwit

REALM = "FWGATE.TEST"


class Realm:
    def __init__(self, tmp: Path, kdc_address: str, realm: str = REALM):
        fwit.require_tool("krb5kdc")
        fwit.require_tool("kdb5_util")
        fwit.require_tool("kadmin.local")
        fwit.require_tool("kinit")
        self.realm = realm
        self.dir = tmp / "krb5"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.address = kdc_address
        self.port = 88  # the namespace's own port 88
        self.conf = self.dir / "krb5.conf"
        self.kdc_conf = self.dir / "kdc.conf"
        self.rcache = self.dir / "rcache"
        self.rcache.mkdir(exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.conf.write_text(
            "[libdefaults]\n"
            f" default_realm = {realm}\n"
            " dns_lookup_kdc = false\n"
            " dns_lookup_realm = false\n"
            " dns_canonicalize_hostname = false\n"
            " rdns = false\n"
            " udp_preference_limit = 1\n"  # TCP: one kind of packet to look for in a capture
            "[realms]\n"
            f" {realm} = {{\n  kdc = {kdc_address}:{self.port}\n }}\n")
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            f" kdc_listen = {kdc_address}:{self.port}\n"
            f" kdc_tcp_listen = {kdc_address}:{self.port}\n"
            "[realms]\n"
            f" {realm} = {{\n"
            f"  database_name = {self.dir}/principal\n"
            f"  key_stash_file = {self.dir}/stash\n"
            f"  acl_file = {self.dir}/kadm5.acl\n"
            "  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
            " }\n"
            "[logging]\n"
            f" kdc = FILE:{self.dir}/kdc.log\n")
        (self.dir / "kadm5.acl").write_text("")
        self.env = dict(KRB5_CONFIG=str(self.conf), KRB5_KDC_PROFILE=str(self.kdc_conf),
                        KRB5RCACHEDIR=str(self.rcache), KRB5_TRACE="/dev/null")
        self._tool(["kdb5_util", "create", "-s", "-r", realm, "-P", "master-" + os.urandom(6).hex()])

    def _tool(self, argv: list[str]) -> str:
        cp = subprocess.run(argv, env=dict(os.environ, **self.env), capture_output=True, timeout=60,
                            stdin=subprocess.DEVNULL)
        assert cp.returncode == 0, (argv, cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace"))
        return cp.stdout.decode(errors="replace")

    def kadmin(self, query: str) -> str:
        return self._tool(["kadmin.local", "-r", self.realm, "-q", query])

    def add_user(self, name: str, password: str) -> None:
        self.kadmin(f"addprinc -pw {password} {name}")

    def add_service(self, principal: str, keytab: Path) -> None:
        """A service principal with a random key, written to `keytab` (added to it if it exists)."""
        self.kadmin(f"addprinc -randkey {principal}")
        self.kadmin(f"ktadd -k {keytab} {principal}")
        keytab.chmod(0o600)

    def start(self, ns: fwit.Namespaces, role: str) -> None:
        """The KDC in `role`'s namespace, in the foreground (-n), torn down with the namespaces."""
        self.proc = ns.spawn(role, ["krb5kdc", "-n", "-r", self.realm], env=dict(os.environ, **self.env),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        log = self.dir / "kdc.log"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"krb5kdc exited: {self.proc.stderr.read().decode(errors='replace')}")
            if log.exists() and b"commencing operation" in log.read_bytes():
                return
            time.sleep(0.05)
        raise AssertionError("krb5kdc did not start within 10 s")

    def client_env(self, ccache: Path) -> dict:
        """What a user's programs need: the realm's krb5.conf and a credential cache of their own."""
        return dict(KRB5_CONFIG=str(self.conf), KRB5CCNAME=f"FILE:{ccache}")

    def kinit(self, ns: fwit.Namespaces, role: str, user: str, password: str, ccache: Path) -> None:
        cp = subprocess.run(["ip", "netns", "exec", ns.ns[role], "kinit", user],
                            env=dict(os.environ, **self.client_env(ccache)), input=(password + "\n").encode(),
                            capture_output=True, timeout=30)
        assert cp.returncode == 0, cp.stderr.decode(errors="replace")
