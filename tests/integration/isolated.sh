#!/usr/bin/env bash
# Runs a command (the test suite) on a machine that looks like another one:
#
#   bash tests/integration/isolated.sh [--hosts stock|dev] [--squat] -- COMMAND ARGS...
#   bash tests/integration/isolated.sh --hosts stock|dev [--hostname NAME] --write-hosts FILE
#
# --hosts stock  /etc/hosts is the file Debian 12's installer writes (netcfg), with
#                "::1 localhost ip6-localhost ip6-loopback": localhost resolves to ::1 too
# --hosts dev    /etc/hosts is the development machine's: the same without the IPv6 lines
#                (without --hosts the machine's own file stays)
# --write-hosts  only write that file to FILE (for the host name NAME, default this machine's)
#                and exit: for a root of another machine (scripts/fresh-machine.sh)
# --squat        for the command's duration something already listens on 127.0.0.1 and [::1]
#                ports 1080, 1745 and 8080 (fwgate's default ports: SOCKS, the control channel,
#                the Web Proxy), as another gateway on the machine would; an address something
#                else holds already is left to it (just as good). The squatter accepts and closes
#                at once.
#
# The command runs in a private mount namespace (unshare --mount) where a temporary copy of the
# chosen file is bind-mounted over /etc/hosts; nothing outside that namespace sees it, and the
# machine's own /etc/hosts is never written. Needs root (as the namespace tests do).
# Exits with the command's status (125 when this script itself cannot set up). The squatter is
# stopped by its PID and the temporary files removed in an EXIT trap, whatever happens; should
# this script be killed outright, the squatter ends with it (PR_SET_PDEATHSIG).
set -uo pipefail

usage() {
  sed -n '2,24p' "$0" >&2
  exit 125
}

hosts_kind=
squat=0
write_to=
name=
while (($# > 0)); do
  case $1 in
    --write-hosts | --hostname)
      (($# >= 2)) || usage
      if [[ $1 == --write-hosts ]]; then write_to=$2; else name=$2; fi
      shift 2
      ;;
    --hosts)
      (($# >= 2)) || usage
      hosts_kind=$2
      shift 2
      ;;
    --hosts=*)
      hosts_kind=${1#--hosts=}
      shift
      ;;
    --squat)
      squat=1
      shift
      ;;
    --)
      shift
      break
      ;;
    -h | --help) usage ;;
    *)
      echo "isolated.sh: unknown argument $1" >&2
      usage
      ;;
  esac
done
case $hosts_kind in
  stock | dev) ;;
  "") [[ -z $write_to ]] || usage ;;
  *)
    echo "isolated.sh: --hosts must be stock or dev" >&2
    usage
    ;;
esac

# The installer's text (netcfg-common.c, IPV6_HOSTS in netcfg.h) for a DHCP install without a
# domain: the host's name on 127.0.1.1, then the IPv6 block.
write_hosts() {
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "${name:-$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)}"
  if [[ $hosts_kind == stock ]]; then
    printf '\n# The following lines are desirable for IPv6 capable hosts\n'
    printf '::1     localhost ip6-localhost ip6-loopback\n'
    printf 'ff02::1 ip6-allnodes\n'
    printf 'ff02::2 ip6-allrouters\n'
  fi
}
if [[ -n $write_to ]]; then
  write_hosts >"$write_to" && chmod 0644 "$write_to"
  exit
fi
(($# > 0)) || usage
if ((EUID != 0)); then
  echo "isolated.sh: needs root (a private mount namespace)" >&2
  exit 125
fi
for tool in unshare mount python3; do
  command -v "$tool" >/dev/null || {
    echo "isolated.sh: $tool is not installed" >&2
    exit 125
  }
done

work=$(mktemp -d /tmp/fwgate-isolated.XXXXXX) || exit 125
squatter_pid=
cleanup() {
  if [[ -n $squatter_pid ]]; then
    kill -TERM "$squatter_pid" 2>/dev/null
    # Bounded: 5 s for a clean exit, then SIGKILL.
    for _ in $(seq 50); do
      kill -0 "$squatter_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$squatter_pid" 2>/dev/null
    wait "$squatter_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

hosts=$work/hosts
write_hosts >"$hosts"
chmod 0644 "$hosts"

if ((squat)); then
  ready=$work/squatter.ready
  # shellcheck disable=SC2016
  python3 -c '
import ctypes, errno, os, select, signal, socket, sys, time
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[2]):
    sys.exit(0)  # the script is gone already
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
held, notes = [], []
for host, port in ((h, p) for h in ("127.0.0.1", "::1") for p in (1080, 1745, 8080)):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    # Past a connection in TIME_WAIT on the port (a gateway that was there a moment ago), not
    # past a listener: on Linux, SO_REUSEADDR still refuses a port something listens on.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        s.bind((host, port))
        s.listen(64)
    except OSError as e:
        s.close()
        if e.errno != errno.EADDRINUSE:
            print(f"isolated.sh: cannot squat {text}: {e}", file=sys.stderr, flush=True)
            sys.exit(1)
        notes.append(f"{text} (already taken)")
        continue
    s.setblocking(False)
    held.append(s)
    notes.append(text)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(", ".join(notes) + "\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
deadline = time.monotonic() + 24 * 3600  # a bound, should every other way to stop fail
while time.monotonic() < deadline:
    for s in select.select(held, [], [], 1.0)[0]:
        try:
            s.accept()[0].close()
        except OSError:
            pass
' "$ready" "$$" &
  squatter_pid=$!
  for _ in $(seq 100); do
    [[ -s $ready ]] && break
    kill -0 "$squatter_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ ! -s $ready ]]; then
    echo "isolated.sh: the squatter did not start" >&2
    exit 125
  fi
  echo "isolated.sh: squatting $(cat "$ready")" >&2
fi

if [[ -z $hosts_kind ]]; then
  "$@"
  exit
fi
echo "isolated.sh: /etc/hosts is the $hosts_kind file ($(grep -c . "$hosts") lines$([[ $hosts_kind == stock ]] && echo ', ::1 localhost'))" >&2
# shellcheck disable=SC2016
unshare --mount --propagation private -- /bin/sh -c '
hosts=$1
shift
mount --bind "$hosts" /etc/hosts || exit 125
cmp -s "$hosts" /etc/hosts || { echo "isolated.sh: /etc/hosts was not replaced" >&2; exit 125; }
exec "$@"
' isolated "$hosts" "$@"
rc=$?
exit "$rc"
