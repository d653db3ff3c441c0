#!/usr/bin/env bash
# README quick start, command 1: install the Debian packages, build fwgate (Release) into build/,
# and run `fwgate gateway` on its embedded default configuration (SOCKS 4/4a/5 on 127.0.0.1:1080,
# the firewall-client control channel on 127.0.0.1:1745, the Web Proxy on 127.0.0.1:8080; loopback
# clients only, no authentication, sessions logged to standard error).
# Arguments are passed to `fwgate gateway`, e.g. --config gateway.toml, --listen 127.0.0.1:1081 or
# --web-listen 127.0.0.1:3128.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash scripts/setup-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j 2 --target fwgate

cat <<'USAGE'

fwgate is starting (Ctrl-C stops it). From another terminal on this host:
  curl --socks5 127.0.0.1:1080 http://example.com/            # SOCKS 5, name resolved by curl
  curl --socks5-hostname 127.0.0.1:1080 http://example.com/   # SOCKS 5, name resolved by the gateway
  curl --socks4a 127.0.0.1:1080 http://example.com/           # SOCKS 4a
  ncat --proxy 127.0.0.1:1080 --proxy-type socks5 HOST PORT
  curl -x http://127.0.0.1:8080 http://example.com/          # the Web Proxy (https:// through CONNECT)
  http_proxy=http://127.0.0.1:8080 https_proxy=http://127.0.0.1:8080 wget https://example.com/
  chromium --proxy-pac-url=http://127.0.0.1:8080/wpad.dat   # the automatic configuration script
  proxychains4 PROGRAM ...     # with "socks5 127.0.0.1 1080" in /etc/proxychains4.conf
Your own configuration:
  build/apps/fwgate/fwgate config default > gateway.toml      # start from the embedded default
  build/apps/fwgate/fwgate config check gateway.toml
  scripts/start-gateway.sh --config gateway.toml              # kill -HUP <pid> reloads it

USAGE
exec build/apps/fwgate/fwgate gateway "$@"
