#!/usr/bin/env bash
# Checks a fwgate .deb (made by scripts/package.sh) as an administrator would meet it:
#   1. lintian: every E: line fails the test; W: and I: lines are printed;
#   2. in a throw-away root (an overlay over this machine's / with a tmpfs upper layer, in mount,
#      PID and network namespaces of its own, without systemd): dpkg -i, the files where they
#      belong, the fwgate user and log directory, `fwgate config check` of the packaged
#      configuration, `fwgate run` loading the installed library, the gateway running as the
#      service would (privileges dropped, session log written, reload), a reinstallation that
#      keeps an edited conffile, dpkg -r (user, logs and conffiles kept), dpkg -P (all of it
#      gone); then nothing may be left in the upper layer beyond dpkg's own bookkeeping.
#
#   scripts/test-package.sh DEB      as root; the package's dependencies installed on this host
#
# One line per check ("ok ..." or "FAIL ..."), a summary last; exit 0 only if every check held.
# Everything runs under time limits, and the namespaces (with their mounts and processes) end
# with the script whatever happens.
set -uo pipefail

# -- inside the namespaces ---------------------------------------------------------------------

fails=0
checks=0
pass() { echo "ok    $*"; checks=$((checks + 1)); }
fail() { echo "FAIL  $*"; checks=$((checks + 1)) fails=$((fails + 1)); }
# check WHAT COMMAND...: the command's status decides.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

root="" # the throw-away root, once mounted
in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
# run_root WHAT TIMEOUT COMMAND...: a step in the root whose failure is a failed check, with its
# output shown when it fails.
run_root() {
  local what=$1 limit=$2 out rc
  shift 2
  out=$(in_root timeout --kill-after=5 "$limit" "$@" 2>&1)
  rc=$?
  if ((rc == 0)); then
    pass "$what"
  else
    fail "$what (exit $rc)"
    indent <<<"$out" | tail -25
  fi
  return $rc
}
# For a program started in the background: ( exec_root PROGRAM... ) & leaves its PID in $!.
exec_root() {
  exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C.UTF-8 "$@"
}
exists() { [[ -e $root$1 || -L $root$1 ]]; }
absent() { ! exists "$1"; }
# Owners by name as the root knows them (the host has no user fwgate).
stat_is() { [[ $(in_root stat -c "$2" "$1" 2>/dev/null) == "$3" ]]; }
has_user() { in_root getent passwd fwgate >/dev/null; }
has_group() { in_root getent group fwgate >/dev/null; }
no_user() { ! has_user; }
no_group() { ! has_group; }
# shellcheck disable=SC2016 # dpkg-query's own ${...}
status_is() { [[ $(in_root dpkg-query -W -f '${db:Status-Abbrev}' fwgate 2>/dev/null) == "$1"* ]]; }
unknown_to_dpkg() { ! in_root dpkg-query -W fwgate >/dev/null 2>&1; }
no_info_files() { ! compgen -G "$root/var/lib/dpkg/info/fwgate.*" >/dev/null; }
conffiles_listed() {
  local listed
  # shellcheck disable=SC2016
  listed=$(in_root dpkg-query -W -f '${Conffiles}' fwgate)
  [[ $listed == *"/etc/fwgate/gateway.toml "*"/etc/logrotate.d/fwgate "* ]]
}
system_user() {
  local uid home shell
  IFS=: read -r _ _ uid _ _ home shell < <(in_root getent passwd fwgate) &&
    ((uid < 1000)) && [[ $home == /nonexistent && $shell == */nologin ]]
}
service_settings() {
  grep -qx 'user = "fwgate"' "$root/etc/fwgate/gateway.toml" &&
    grep -qx 'sessions = "/var/log/fwgate/sessions.log"' "$root/etc/fwgate/gateway.toml"
}
runs_as() { [[ $(in_root stat -c %U "/proc/$1" 2>/dev/null) == "$2" ]]; }
reloaded() { grep -q 'SIGHUP: reloaded' "$1" && ! grep -q 'log.sessions:' "$1"; }
indent() { sed 's/^/      | /'; }

mount_root() {
  local work=$1
  mkdir -p "$work/t" || return 1
  mount -t tmpfs -o mode=0700 fwgate-test "$work/t" || return 1
  mkdir "$work/t/upper" "$work/t/work" "$work/t/root" "$work/t/baseline"
  mount -t overlay fwgate-test -o "lowerdir=/,upperdir=$work/t/upper,workdir=$work/t/work" \
    "$work/t/root" || return 1
  root=$work/t/root
  mount -t proc proc "$root/proc" &&
    mount --rbind /dev "$root/dev" &&
    mount --rbind /sys "$root/sys" &&
    mount -t tmpfs -o mode=0755 run "$root/run" &&
    mount -t tmpfs -o mode=1777 tmp "$root/tmp" &&
    ip link set lo up
}

# What the root holds of fwgate before the package comes (a manual installation on this host, say)
# goes first, so that the package meets a clean system; the upper layer's state after that is the
# baseline the end state is compared with.
clear_host_leftovers() {
  local path
  if has_user; then
    echo "note  this host has a user fwgate: deleted in the throw-away root first"
    in_root userdel fwgate || return 1
  fi
  if has_group; then
    echo "note  this host has a group fwgate: deleted in the throw-away root first"
    in_root groupdel fwgate || return 1
  fi
  for path in /etc/fwgate /var/log/fwgate /var/cache/fwgate /var/lib/fwgate /etc/logrotate.d/fwgate \
    /etc/systemd/system/fwgate-gateway.service /etc/systemd/system/fwgate-agent.service \
    /etc/systemd/system/fwgate-kernel.service; do
    if exists "$path"; then
      echo "note  this host has $path: removed in the throw-away root first"
      rm -rf "${root:?}$path"
    fi
  done
}

snapshot_baseline() {
  local work=$1 f
  for f in passwd group shadow gshadow subuid subgid; do
    [[ -e $root/etc/$f ]] && cp -p "$root/etc/$f" "$work/t/baseline/$f"
  done
  (cd "$work/t/upper" && find . -mindepth 1 | LC_ALL=C sort) >"$work/t/baseline/upper.list"
}

check_installed() {
  local f
  for f in /usr/bin/fwgate /usr/lib/fwgate/libfwgate-client.so /etc/fwgate/gateway.toml \
    /etc/logrotate.d/fwgate /lib/systemd/system/fwgate-gateway.service \
    /lib/systemd/system/fwgate-agent.service /lib/systemd/system/fwgate-kernel.service \
    /usr/share/man/man8/fwgate-kernel.8.gz /usr/share/doc/fwgate/copyright \
    /usr/share/doc/fwgate/changelog.gz /usr/share/man/man1/fwgate.1.gz \
    /usr/share/man/man5/fwgate.toml.5.gz /usr/share/man/man8/fwgate-gateway.8.gz \
    /usr/share/man/man1/fwgate-run.1.gz; do
    check "installed: $f" test -f "$root$f"
  done
  check "fwgate is executable, 0755 root:root" stat_is /usr/bin/fwgate '%a %U:%G' '755 root:root'
  check "the units run /usr/bin/fwgate" grep -q '^ExecStart=/usr/bin/fwgate gateway --config /etc/fwgate/gateway.toml$' \
    "$root/lib/systemd/system/fwgate-gateway.service"
  check "the agent unit runs /usr/bin/fwgate agent" grep -q '^ExecStart=/usr/bin/fwgate agent$' \
    "$root/lib/systemd/system/fwgate-agent.service"
  check "the kernel unit runs /usr/bin/fwgate kernel start" grep -q '^ExecStart=/usr/bin/fwgate kernel start$' \
    "$root/lib/systemd/system/fwgate-kernel.service"
  if [[ -x $root/usr/bin/systemd-analyze ]]; then
    run_root "systemd-analyze verify finds nothing wrong with the units" 60 \
      systemd-analyze verify /lib/systemd/system/fwgate-gateway.service \
      /lib/systemd/system/fwgate-agent.service /lib/systemd/system/fwgate-kernel.service
  else
    echo "note  no systemd-analyze on this host: the units are not verified"
  fi
  check "gateway.toml and the logrotate snippet are conffiles" conffiles_listed
  check "package status: installed" status_is ii
  run_root "dpkg --verify fwgate: every file as its md5sums say" 60 dpkg --verify fwgate
  check "user fwgate exists" has_user
  check "group fwgate exists" has_group
  check "fwgate is a system user without a login or a home" system_user
  check "/var/log/fwgate is fwgate:adm 0750" stat_is /var/log/fwgate '%U:%G %a' 'fwgate:adm 750'
  check "/var/log/fwgate/sessions.log is fwgate:adm 0640" \
    stat_is /var/log/fwgate/sessions.log '%U:%G %a' 'fwgate:adm 640'
  check "the packaged configuration runs as fwgate and logs to /var/log/fwgate" service_settings
  run_root "fwgate config check /etc/fwgate/gateway.toml" 30 fwgate config check /etc/fwgate/gateway.toml
  run_root "fwgate run -- true" 30 fwgate run -- true
  run_root "fwgate run loads /usr/lib/fwgate/libfwgate-client.so" 30 \
    fwgate run -- sh -c 'grep -q " /usr/lib/fwgate/libfwgate-client.so$" /proc/self/maps'
  check_preload
  run_root "man finds fwgate(1), fwgate-gateway(8) and fwgate.toml(5)" 30 \
    sh -c 'man -w fwgate && man -w 8 fwgate-gateway && man -w 5 fwgate.toml' >/dev/null
}

# The documented system-wide installation: the library's path in /etc/ld.so.preload loads it into
# every program (with FWGATE_DISABLE=1 it passes everything through). Undone at once.
check_preload() {
  local preload=$root/etc/ld.so.preload had=0
  if [[ -e $preload ]]; then
    had=1
    cp -p "$preload" "$root/tmp/ld.so.preload.orig"
  fi
  echo /usr/lib/fwgate/libfwgate-client.so >>"$preload"
  run_root "/usr/lib/fwgate/libfwgate-client.so in /etc/ld.so.preload is loaded" 30 \
    env FWGATE_DISABLE=1 sh -c 'grep -q " /usr/lib/fwgate/libfwgate-client.so$" /proc/self/maps'
  if ((had)); then
    cp -p "$root/tmp/ld.so.preload.orig" "$preload"
  else
    rm -f "$preload"
  fi
}

# The gateway as fwgate-gateway.service starts it: root, the packaged configuration; it must drop
# to fwgate, serve SOCKS (1080) and the Web Proxy (8080), write the session log, and reopen it on
# reload. Loopback of this network namespace: the page server takes 8081, beside the gateway's ports.
check_gateway() {
  local log=$root/tmp/gateway.log pid web i body status
  mkdir -p "$root/tmp/www" && echo "fwgate package $$" >"$root/tmp/www/index.html"
  (exec_root python3 -m http.server --bind 127.0.0.1 --directory /tmp/www 8081 >"$root/tmp/http.log" 2>&1) &
  web=$!
  (exec_root fwgate gateway --config /etc/fwgate/gateway.toml >"$log" 2>&1) &
  pid=$!
  for ((i = 0; i < 100; i++)); do
    grep -q 'socks listening on 127.0.0.1:1080' "$log" && grep -q 'web proxy listening on 127.0.0.1:8080' "$log" &&
      grep -q 'Serving HTTP' "$root/tmp/http.log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q 'socks listening on 127.0.0.1:1080' "$log"; then
    fail "fwgate gateway --config /etc/fwgate/gateway.toml listens on 127.0.0.1:1080"
    indent <"$log" | tail -20
    kill "$pid" "$web" 2>/dev/null
    wait
    return
  fi
  pass "fwgate gateway --config /etc/fwgate/gateway.toml listens on 127.0.0.1:1080"
  check "the gateway dropped its privileges to fwgate" runs_as "$pid" fwgate
  body=$(in_root curl -sS --max-time 10 --socks5-hostname 127.0.0.1:1080 http://127.0.0.1:8081/index.html 2>&1)
  check "curl through the packaged gateway gets a page" test "$body" == "fwgate package $$"
  check "the packaged gateway's Web Proxy listens on 127.0.0.1:8080" \
    grep -q 'web proxy listening on 127.0.0.1:8080' "$log"
  body=$(in_root curl -sS --max-time 10 -x http://127.0.0.1:8080 http://127.0.0.1:8081/index.html 2>&1)
  check "curl -x http://127.0.0.1:8080 (the Web Proxy) gets the page" test "$body" == "fwgate package $$"
  sleep 0.2
  check "the session is in /var/log/fwgate/sessions.log" \
    grep -q '"command": *"connect"' "$root/var/log/fwgate/sessions.log"
  check "the Web Proxy request is in /var/log/fwgate/sessions.log" \
    grep -q '"protocol": *"http"' "$root/var/log/fwgate/sessions.log"
  kill -HUP "$pid"
  for ((i = 0; i < 50; i++)); do
    grep -q 'SIGHUP' "$log" && break
    sleep 0.1
  done
  sleep 0.2
  check "a reload (SIGHUP) reopens the session log as fwgate" reloaded "$log"
  kill -TERM "$pid"
  wait "$pid"
  status=$?
  check "SIGTERM stops the gateway cleanly (exit $status)" test $status -eq 0
  kill "$web" 2>/dev/null
  wait "$web" 2>/dev/null
  grep -q '"command": *"connect"' "$root/var/log/fwgate/sessions.log" || indent <"$log" | tail -20
}

check_reinstall() {
  echo "# edited by test-package.sh" >>"$root/etc/fwgate/gateway.toml"
  run_root "dpkg -i again (reinstallation)" 300 dpkg -i "/tmp/$(basename "$deb")" || return
  check "the reinstallation keeps the edited /etc/fwgate/gateway.toml" \
    grep -qx '# edited by test-package.sh' "$root/etc/fwgate/gateway.toml"
  check "still installed" status_is ii
}

check_removed() {
  local f
  for f in /usr/bin/fwgate /usr/lib/fwgate /lib/systemd/system/fwgate-gateway.service \
    /lib/systemd/system/fwgate-agent.service /usr/share/man/man1/fwgate.1.gz /usr/share/doc/fwgate; do
    check "removed: $f" absent "$f"
  done
  check "package status: removed, configuration kept" status_is rc
  check "remove keeps the user fwgate" has_user
  check "remove keeps /etc/fwgate/gateway.toml" test -f "$root/etc/fwgate/gateway.toml"
  check "remove keeps /etc/logrotate.d/fwgate" test -f "$root/etc/logrotate.d/fwgate"
  check "remove keeps /var/log/fwgate" test -d "$root/var/log/fwgate"
}

check_purged() {
  local f
  check "purge removes the user fwgate" no_user
  check "purge removes the group fwgate" no_group
  for f in /etc/fwgate /etc/logrotate.d/fwgate /var/log/fwgate /var/cache/fwgate /var/lib/fwgate; do
    check "purge removes $f" absent "$f"
  done
  check "dpkg no longer knows fwgate" unknown_to_dpkg
  check "no fwgate files in /var/lib/dpkg/info" no_info_files
}

# What the upper layer holds now that the baseline did not: dpkg's bookkeeping, the man-db
# trigger's index, and the backups shadow's tools write, only. The account files must read as
# they did before.
check_leftovers() {
  local work=$1 upper=$1/t/upper entry rel f leftover=0 kept=()
  for f in passwd group shadow gshadow subuid subgid; do
    if [[ -e $work/t/baseline/$f || -e $root/etc/$f ]]; then
      check "/etc/$f is as it was" cmp -s "$work/t/baseline/$f" "$root/etc/$f"
    fi
  done
  while IFS= read -r entry; do
    rel=${entry#.}
    case $rel in
      /var/lib/dpkg | /var/lib/dpkg/* | /var/log/dpkg.log | /var/cache/debconf/* | \
        /var/cache/man | /var/cache/man/* | /etc/passwd | /etc/group | /etc/shadow | /etc/gshadow | \
        /etc/subuid | /etc/subgid | /etc/passwd- | /etc/group- | /etc/shadow- | /etc/gshadow- | \
        /etc/subuid- | /etc/subgid- | /etc/.pwd.lock)
        [[ -d $upper$rel ]] || kept+=("$rel")
        continue
        ;;
    esac
    # A directory copied up because something inside changed is no leftover if it was there.
    if [[ -d $upper$rel && ! -L $upper$rel && -d $rel ]]; then
      continue
    fi
    # So is a file copied up unchanged.
    if [[ -f $upper$rel && -f $rel ]] && cmp -s "$upper$rel" "$rel"; then
      continue
    fi
    if [[ -c $upper$rel ]]; then
      echo "      left: $rel deleted (a file of this host's)"
    else
      echo "      left: $rel ($(stat -c %F "$upper$rel"))"
    fi
    leftover=$((leftover + 1))
  done < <(cd "$upper" && find . -mindepth 1 | LC_ALL=C sort | LC_ALL=C comm -13 "$work/t/baseline/upper.list" -)
  local man=0 listed=()
  for f in "${kept[@]}"; do
    if [[ $f == /var/cache/man/* ]]; then man=$((man + 1)); else listed+=("$f"); fi
  done
  echo "      kept: ${listed[*]} and $man files of man-db's cache in /var/cache/man" |
    fold -s -w 100 | sed '2,$s/^/            /'
  check "nothing left behind but dpkg's bookkeeping ($leftover other entries)" test $leftover -eq 0
}

in_namespace() {
  deb=$1
  local work=$2
  if ! mount_root "$work"; then
    fail "set up the throw-away root (overlay over /, proc, dev, sys)"
    return 1
  fi
  pass "throw-away root: overlay over / in $work/t/root, without systemd"
  clear_host_leftovers || fail "clear the host's fwgate files from the throw-away root"
  snapshot_baseline "$work"
  cp "$deb" "$root/tmp/"

  if run_root "dpkg -i $(basename "$deb")" 300 dpkg -i "/tmp/$(basename "$deb")"; then
    check_installed
    check_gateway
    check_reinstall
  fi
  if run_root "dpkg -r fwgate" 300 dpkg -r fwgate; then
    check_removed
  fi
  if run_root "dpkg -P fwgate" 300 dpkg -P fwgate; then
    check_purged
  fi
  check_leftovers "$work"
  echo "throw-away root: $((checks - fails)) of $checks checks held"
  ((fails == 0))
}

# -- on the host -------------------------------------------------------------------------------

run_lintian() {
  local deb=$1 dir=$2 out rc errors
  # As nobody, since lintian advises against root, from a copy nobody can read.
  install -m 0644 "$deb" "$dir/lintian/"
  if id nobody >/dev/null 2>&1; then
    chown -R nobody "$dir/lintian"
    out=$(cd "$dir/lintian" && timeout 600 setpriv --reuid=nobody --regid=nogroup --clear-groups \
      env HOME="$dir/lintian" lintian --display-info --tag-display-limit 0 "$dir/lintian/$(basename "$deb")" 2>&1)
  else
    out=$(timeout 600 lintian --display-info --tag-display-limit 0 "$deb" 2>&1)
  fi
  rc=$?
  [[ -n $out ]] && indent <<<"$out"
  errors=$(grep -c '^E: ' <<<"$out")
  if ((errors > 0)); then
    echo "FAIL  lintian: $errors errors"
    return 1
  fi
  if ((rc != 0)); then
    echo "FAIL  lintian did not run (exit $rc)"
    return 1
  fi
  echo "ok    lintian: no errors ($(grep -c '^W: ' <<<"$out") warnings, $(grep -c '^I: ' <<<"$out") notes)"
}

namespace=""
stop_namespace() {
  local unshare
  unshare=$(pgrep -P "$namespace")
  [[ -n $unshare ]] && kill -KILL "$unshare"
  wait "$namespace" 2>/dev/null
  echo "test-package.sh: interrupted; the throw-away root is gone"
  exit 130
}

main() {
  if (($# != 1)) || [[ ! -f $1 ]]; then
    echo "usage: scripts/test-package.sh DEB" >&2
    return 2
  fi
  local deb work rc=0 tool start=$SECONDS
  deb=$(realpath "$1")
  if [[ $(id -u) -ne 0 ]]; then
    echo "FAIL  test-package.sh needs root (namespaces, overlay, chroot)"
    return 1
  fi
  for tool in lintian unshare setpriv dpkg-deb ip curl python3 timeout; do
    if ! command -v "$tool" >/dev/null; then
      echo "FAIL  $tool is not installed (scripts/setup-deps.sh installs it)"
      return 1
    fi
  done
  if [[ $(dpkg-deb -f "$deb" Package) != fwgate ]]; then
    echo "FAIL  $deb is not the fwgate package"
    return 1
  fi
  if dpkg-query -W fwgate >/dev/null 2>&1; then
    echo "FAIL  the fwgate package is installed on this host: the test needs a root without it" \
      "(dpkg -P fwgate)"
    return 1
  fi
  for dir in /usr /var /etc; do
    if mountpoint -q "$dir"; then
      echo "FAIL  $dir is a mount of its own: the overlay over / would not hold it"
      return 1
    fi
  done

  work=$(mktemp -d /tmp/fwgate-test-package.XXXXXX) || return 1
  chmod 0755 "$work"
  mkdir "$work/lintian"
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT

  echo "== lintian $(basename "$deb")"
  run_lintian "$deb" "$work" || rc=1

  echo "== install, run, remove and purge in a throw-away root"
  # A PID namespace, so that whatever runs inside ends with it; a network namespace with only
  # loopback; mounts that no one else sees and that go with the namespace.
  # Interrupted, the script kills unshare (blocking SIGTERM, it waits for its child), and with it
  # the namespace's first process (--kill-child), and with that everything in the namespace.
  timeout --kill-after=10 900 unshare --mount --propagation private --pid --fork --kill-child \
    --net -- bash "${BASH_SOURCE[0]}" --in-namespace "$deb" "$work" &
  namespace=$!
  trap stop_namespace INT TERM HUP
  wait "$namespace" || rc=1
  trap - INT TERM HUP

  if ((rc == 0)); then
    echo "test-package.sh: $(basename "$deb") passed ($((SECONDS - start)) s)"
  else
    echo "test-package.sh: $(basename "$deb") FAILED ($((SECONDS - start)) s)"
  fi
  return $rc
}

if [[ ${1:-} == --in-namespace ]]; then
  in_namespace "$2" "$3"
  exit
fi
main "$@"
