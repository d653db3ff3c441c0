#!/usr/bin/env bash
# Runs the README's Quick start on a stock Debian 12 system: a minimal debootstrap root (nothing
# installed but Debian's required packages), Debian's stock /etc/hosts (with "::1 localhost"), a
# clean clone of this repository's HEAD, and something already listening on 1080, 1745 and 8080
# (127.0.0.1 and ::1) while the test suite runs. As root, on a machine that reaches Debian's mirror:
#
#   scripts/fresh-machine.sh [--tests] [--gateway] [--keep] [--root=DIR]
#
#   --tests    command 2 (bash scripts/test.sh) in a fresh root; prints its summary and time
#   --gateway  command 1 (bash scripts/start-gateway.sh) in another fresh root; then curl fetches
#              a page through 127.0.0.1:1080 (SOCKS) and 127.0.0.1:8080 (the Web Proxy) from a
#              server on this host, and the gateway stops
# Both by default. Each root is made anew from one debootstrap (cached as a tarball in DIR) and
# removed afterwards unless --keep. The chroot shares this machine's kernel and network (so the
# squatter on 1080/1745/8080 is an ordinary process here); network namespaces made inside it are its
# own. Not part of CI: it downloads a few hundred MB and takes about as long as a CI run.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=/var/tmp/fwgate-fresh
tests=0 gateway=0 keep=0
for arg in "$@"; do
  case $arg in
    --tests) tests=1 ;;
    --gateway) gateway=1 ;;
    --keep) keep=1 ;;
    --root=*) work=${arg#--root=} ;;
    -h | --help)
      sed -n '2,16p' "$0"
      exit 0
      ;;
    *)
      echo "fresh-machine.sh: unknown argument $arg" >&2
      exit 2
      ;;
  esac
done
((tests + gateway > 0)) || tests=1 gateway=1
[[ $(id -u) -eq 0 ]] || {
  echo "fresh-machine.sh: run as root (debootstrap, chroot, mounts)" >&2
  exit 1
}
command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap
mirror=${FWGATE_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$work"
base="$work/bookworm-minbase.tar"

if [[ ! -f $base ]]; then
  echo "fresh-machine: debootstrap --variant=minbase bookworm ($mirror)"
  rm -rf "$work/base"
  debootstrap --variant=minbase bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$work/base" -cf "$base" .
  rm -rf "$work/base"
fi

pids=()
mounted=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Whatever still runs inside a root (a chroot started in the background is a child of the
  # subshell whose PID $! names): every process whose root directory is one of ours.
  local proc top
  for proc in /proc/[0-9]*; do
    top=$(readlink "$proc/root" 2>/dev/null) || continue
    [[ $top == "$work"/* ]] && kill -9 "${proc#/proc/}" 2>/dev/null
  done
  sleep 0.5
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  mounted=()
}
trap cleanup EXIT

# Removes a root only when nothing is mounted below it any more (a bind of /dev or /sys left
# there would take the host's with it).
remove_root() {
  local root=$1
  if grep -qF " $root/" /proc/mounts; then
    echo "fresh-machine: $root still has mounts; not removing it" >&2
    return 1
  fi
  rm -rf "$root"
}

# new_root NAME: sets $root to a fresh root from the tarball, with a stock hosts file, apt sources, the kernel
# file systems, and a clean clone of HEAD in /root/fwgate.
new_root() {
  root="$work/$1"
  [[ ! -e $root ]] || remove_root "$root"
  mkdir -p "$root"
  tar -C "$root" -xf "$base"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
EOF
  echo "fwgate-fresh" >"$root/etc/hostname"
  # Debian's installer (netcfg) writes this file: the same text the test suite runs under.
  bash "$repo/tests/integration/isolated.sh" --hosts stock --hostname fwgate-fresh --write-hosts "$root/etc/hosts"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # What this machine trusts beyond Debian's CAs (a registry reached through a TLS proxy): a new
  # machine here has it too. update-ca-certificates adds it once ca-certificates is installed.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  # A root file system is a mount point (unshare --propagation, which the suite uses, needs that).
  mount --bind "$root" "$root" && mounted+=("$root")
  mount -t proc proc "$root/proc" && mounted+=("$root/proc")
  mount --rbind /sys "$root/sys" && mounted+=("$root/sys")
  mount --rbind /dev "$root/dev" && mounted+=("$root/dev")
  mount -t tmpfs tmpfs "$root/run" && mounted+=("$root/run")
  mount -t tmpfs tmpfs "$root/tmp" && mounted+=("$root/tmp")
  git clone -q "$repo" "$root/root/fwgate"
}

# Sets in_root to the prefix that runs a command in $root with a clean environment, as CI's, but
# for this machine's certificate settings (NODE_EXTRA_CA_CERTS and the like name /etc/ssl/certs
# files, which the root has too). An array, not a function: it can follow isolated.sh's "--",
# and a background command's $! is the chroot itself.
root_command() {
  local certs=()
  mapfile -t certs < <(env | grep -E '^(NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|CURL_CA_BUNDLE|REQUESTS_CA_BUNDLE|GIT_SSL_CAINFO)=' || true)
  in_root=(chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 CI=true "${certs[@]}")
}

status=0
if ((tests)); then
  new_root tests
  echo "fresh-machine: command 2 in $root (stock /etc/hosts, 1080, 1745 and 8080 taken)"
  start=$SECONDS
  set +e
  # Something else on 1080, 1745 and 8080 (the issue's "another fwgate already listening"), held by a
  # process of this machine, which the chroot shares: isolated.sh's squatter, /etc/hosts untouched.
  root_command
  bash "$repo/tests/integration/isolated.sh" --squat -- \
    "${in_root[@]}" bash -c 'cd /root/fwgate && bash scripts/test.sh' </dev/null >"$work/tests.log" 2>&1
  rc=$?
  set -e
  echo "fresh-machine: command 2 exited $rc after $((SECONDS - start)) s (log: $work/tests.log)"
  sed -n '/^==== summary/,$p' "$work/tests.log"
  ((rc == 0)) || status=1
  cleanup
  ((keep)) || remove_root "$root"
fi

if ((gateway)); then
  new_root gateway
  echo "fresh-machine: command 1 in $root"
  start=$SECONDS
  root_command
  "${in_root[@]}" bash -c 'cd /root/fwgate && exec bash scripts/start-gateway.sh' </dev/null >"$work/gateway.log" 2>&1 &
  pids+=($!)
  www=$(mktemp -d)
  echo "fresh machine page" >"$www/index.html"
  python3 -u -m http.server --bind 127.0.0.1 --directory "$www" 0 >"$work/http.log" 2>&1 &
  pids+=($!)
  ok=0
  for ((i = 0; i < 3600; i++)); do
    if grep -q 'socks listening on 127.0.0.1:1080' "$work/gateway.log" 2>/dev/null &&
      grep -q 'web proxy listening on 127.0.0.1:8080' "$work/gateway.log" 2>/dev/null; then
      port=$(sed -nE 's/.*Serving HTTP on 127\.0\.0\.1 port ([0-9]+).*/\1/p' "$work/http.log" | head -1)
      if body=$(curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 "http://127.0.0.1:$port/") &&
        [[ $body == "fresh machine page" ]] &&
        body=$(curl -sS --max-time 10 --noproxy '' -x http://127.0.0.1:8080 "http://127.0.0.1:$port/") &&
        [[ $body == "fresh machine page" ]]; then
        ok=1
      fi
      break
    fi
    kill -0 "${pids[-2]}" 2>/dev/null || break
    sleep 1
  done
  if ((ok)); then
    echo "fresh-machine: command 1 served curl through 127.0.0.1:1080 and 127.0.0.1:8080 after $((SECONDS - start)) s"
  else
    echo "fresh-machine: command 1 did not serve curl (log: $work/gateway.log):" >&2
    tail -n 30 "$work/gateway.log" >&2
    status=1
  fi
  cleanup
  rm -rf "$www"
  ((keep)) || remove_root "$root"
fi
exit $status
