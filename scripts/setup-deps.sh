#!/usr/bin/env bash
# Installs everything fwgate's build, tests and benchmark need on Debian 12 (as root), then the npm
# packages of the integration tests. Idempotent: when all is in place it only checks and returns.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(
  # build
  build-essential cmake ninja-build clang lld libclang-rt-14-dev clang-format pkg-config
  libasio-dev libtomlplusplus-dev libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev
  libsodium-dev libgtest-dev libgmock-dev libbenchmark-dev libpcap-dev libnftables-dev
  # integration tests: real clients, peers, namespaces
  nftables curl ncat openssl tshark proxychains4 python3 python3-pytest python3-pytest-timeout python3-socks
  nodejs npm ca-certificates iproute2 tcpdump procps util-linux dnsmasq-base wget git
  lftp tnftp python3-pyftpdlib bind9-dnsutils tftp-hpa tftpd-hpa
  # the control channel's Noise handshake checked against an independent implementation
  # (tests/unit/crypto/noise_peer.py)
  python3-dissononce
  # Kerberos: the GSS-API acceptor and initiator (libkrb5-dev), and a realm of the tests' own
  # (tests/integration/kdc.py: krb5kdc, kdb5_util, kadmin.local, kinit)
  libkrb5-dev krb5-kdc krb5-admin-server krb5-user
  # an RFC 1961 client of the tests own on MIT krb5 (Debian 12's curl 7.88 cannot finish SOCKS 5
  # GSS-API with any server: fixed in curl 8.17; its dante-client is built without GSS-API)
  python3-gssapi
  # the kernel-level firewall client (src/kernel): eBPF programs built with clang, their libbpf
  # skeleton (bpftool), DNS messages (ldns); its tests' programs that bypass libc: busybox-static's
  # wget and Go programs built offline from the standard library
  libbpf-dev bpftool libldns-dev busybox-static golang-go
  # the Web Proxy's clients (tests/integration/test_web_proxy*.py): a headless browser, Python's
  # requests, pip, git, wget and apt against servers of the test's own
  chromium python3-requests python3-pip apt
  # benchmark peers (SOCKS: Dante, microsocks; HTTP proxies: squid, tinyproxy)
  dante-server dante-client microsocks squid tinyproxy
  # the Debian package: man pages from --help, checks (scripts/package.sh, scripts/test-package.sh)
  help2man lintian systemd   # systemd-analyze verify of the packaged units; nothing is started
)

missing=()
for pkg in "${packages[@]}"; do
  # A nodejs build that bundles npm (and conflicts with Debian's npm package) is enough.
  if [[ $pkg == npm ]] && command -v npm >/dev/null 2>&1; then
    continue
  fi
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  if [[ $status != ii* ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup-deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup-deps: need root to apt-get install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  unknown=()
  for pkg in "${missing[@]}"; do
    candidate=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ -z $candidate || $candidate == "(none)" ]]; then
      unknown+=("$pkg")
    fi
  done
  if ((${#unknown[@]} > 0)); then
    echo "setup-deps: no installation candidate for: ${unknown[*]}" >&2
    exit 1
  fi
  # Some of these are servers (dante-server, tftpd-hpa, squid, tinyproxy, krb5-kdc): the tests and the
  # benchmark start their own, inside network namespaces or on ports of their own; none of them is
  # started as a service of this machine.
  guard=/usr/sbin/policy-rc.d
  if [[ ! -e $guard ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$guard"
    chmod 755 "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "setup-deps: all ${#packages[@]} Debian packages present"
fi

# The npm `socks` client and HTTP proxy agents (http-proxy-agent, https-proxy-agent) for the
# integration tests, pinned by package-lock.json. A stamp holding the lockfile's hash lets repeated
# runs skip npm.
node_dir="$repo/tests/integration/node"
stamp="$node_dir/node_modules/.fwgate-lock-sha256"
want=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" && -f $node_dir/node_modules/socks/package.json &&
  -f $node_dir/node_modules/https-proxy-agent/package.json && -f $node_dir/node_modules/http-proxy-agent/package.json ]]; then
  echo "setup-deps: npm packages present"
else
  echo "setup-deps: npm ci in tests/integration/node"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
