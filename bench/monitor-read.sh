#!/usr/bin/env bash
# bench/monitor-read.sh: how fast `fwgate monitor -r` reads a capture, against `tshark -r` and
# `tcpdump -r` on the same file. Generates (once, cached) a deterministic ~1 GB classic pcap with a
# realistic mix of traffic (bench/monitor/make_pcap.py), then times each reader in interleaved
# rounds, output to /dev/null, pinned to one CPU, with the file in the page cache. Prints a
# Markdown table and writes it to bench/results/latest-monitor.md.
# See bench/README.md ("Reading captures") for what is measured and how to read it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GENERATOR="$ROOT/bench/monitor/make_pcap.py"

ROUNDS=""
SIZE_MB=""
DIR=/tmp/fwgate-bench-monitor
FWGATE="$ROOT/build-dev/apps/fwgate/fwgate"
TSHARK=""
TCPDUMP=""
TIMEOUT=600
SEED=20240521
FIELDS=1
CPU=""
OUT_DIR="$ROOT/bench/results"
QUICK=0

usage() {
  cat <<EOF
usage: bash bench/monitor-read.sh [options]
  --quick             a 100 MB file and 1 round (for checking the harness)
  --rounds N          rounds; each runs every command once, in rotated order (default 5)
  --size-mb N         capture size in MB of 10^6 bytes (default 1000: 10^9 bytes)
  --dir DIR           where the generated capture is kept between runs (default $DIR)
  --seed N            generator seed (default $SEED)
  --fwgate PATH       fwgate binary (default $FWGATE)
  --tshark PATH       tshark (default: from PATH)
  --tcpdump PATH      tcpdump (default: from PATH, /usr/sbin)
  --no-fields         leave out the tshark -T fields row
  --cpu N             CPU to pin every command to (default 1, or 0 on a one-CPU machine)
  --timeout S         hard limit of each command run (default $TIMEOUT)
  --out DIR           results directory (default bench/results)
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --size-mb) SIZE_MB=$2; shift ;;
    --dir) DIR=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --fwgate) FWGATE=$2; shift ;;
    --tshark) TSHARK=$2; shift ;;
    --tcpdump) TCPDUMP=$2; shift ;;
    --no-fields) FIELDS=0 ;;
    --cpu) CPU=$2; shift ;;
    --timeout) TIMEOUT=$2; shift ;;
    --out) OUT_DIR=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "monitor-read.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ $QUICK == 1 ]]; then
  ROUNDS=${ROUNDS:-1}; SIZE_MB=${SIZE_MB:-100}
fi
ROUNDS=${ROUNDS:-5}
SIZE_MB=${SIZE_MB:-1000}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "monitor-read.sh: --rounds wants a positive integer" >&2; exit 2; }
[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || { echo "monitor-read.sh: --size-mb wants a positive integer" >&2; exit 2; }
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || { echo "monitor-read.sh: --timeout wants seconds" >&2; exit 2; }

log() { printf '[monitor-read.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

TMP=$(mktemp -d /tmp/fwgate-bench-monitor-run.XXXXXX)
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- tools
[[ -x $FWGATE ]] || die "fwgate not executable: $FWGATE (ninja -C $ROOT/build-dev apps/fwgate/fwgate, or --fwgate PATH)"
"$FWGATE" monitor --help >/dev/null 2>&1 || die "$FWGATE has no working 'monitor' subcommand"
command -v python3 >/dev/null || die "python3 is needed to generate the capture"
[[ -z $TSHARK ]] && TSHARK=$(command -v tshark || true)
if [[ -z $TCPDUMP ]]; then
  TCPDUMP=$(command -v tcpdump || true)
  [[ -z $TCPDUMP && -x /usr/sbin/tcpdump ]] && TCPDUMP=/usr/sbin/tcpdump
fi
if [[ -z $CPU ]]; then
  CPU=$(($(nproc) > 1 ? 1 : 0))
fi
declare -a PIN=()
if command -v taskset >/dev/null; then
  PIN=(taskset -c "$CPU")
  PINNING="every command under taskset -c $CPU (one CPU, the same for all)"
else
  PINNING="NOT pinned: taskset not found"
  log "!!! taskset not found: commands are not pinned to one CPU"
fi
TIME_BIN=/usr/bin/time
if [[ ! -x $TIME_BIN ]]; then
  TIME_BIN=""
  log "!!! /usr/bin/time not found: the CPU column will say n/a"
fi

# ---------------------------------------------------------------- the capture (cached)
SIZE_BYTES=$((SIZE_MB * 1000000))
GEN_HASH=$(sha256sum "$GENERATOR" | cut -c1-12)
PCAP="$DIR/capture-${SIZE_BYTES}B-seed${SEED}-gen${GEN_HASH}.pcap"
mkdir -p "$DIR"
if [[ -s $PCAP && -s $PCAP.meta ]]; then
  log "reusing $PCAP ($(cat "$PCAP.meta"))"
else
  # Captures from an older generator can never be reused: remove them (our own files only).
  for old in "$DIR"/capture-*B-seed*-gen*.pcap; do
    [[ -e $old && $old != *"-gen$GEN_HASH.pcap" ]] || continue
    log "removing a capture from another generator version: $old"
    rm -f "$old" "$old.meta"
  done
  avail=$(df --output=avail -B1 "$DIR" | tail -1 | tr -d ' ')
  (( avail > SIZE_BYTES + 500000000 )) ||
    die "not enough space in $DIR for a $SIZE_MB MB capture ($avail bytes free); pass --dir"
  log "generating $PCAP ($SIZE_MB MB, seed $SEED)"
  timeout -k 5 1800 python3 "$GENERATOR" --out "$PCAP" --bytes "$SIZE_BYTES" --seed "$SEED" \
    >"$TMP/gen.out" 2>"$TMP/gen.err" || die "generator failed: $(tail -c 500 "$TMP/gen.err")"
  log "generated: $(cat "$TMP/gen.out")"
fi
json_num() { grep -o "\"$1\": *[0-9.]*" "$PCAP.meta" | head -1 | sed 's/.*: *//'; }
FRAMES=$(json_num frames)
FILE_BYTES=$(stat -c %s "$PCAP")
GEN_SECONDS=$(json_num generated_in_s)
[[ -n $FRAMES && $FILE_BYTES -gt 0 ]] || die "bad capture metadata in $PCAP.meta"
log "capture: $FILE_BYTES bytes, $FRAMES frames"

mem_avail_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
if (( FILE_BYTES * 2 > mem_avail_kib * 1024 )); then
  log "!!! WARNING: the capture ($FILE_BYTES bytes) is more than half of MemAvailable" \
    "(${mem_avail_kib} KiB): it may not stay in the page cache, and the runs would then measure the disk"
fi

FWGATE_DESCRIBE="git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) at start"
FWGATE_MTIME=$(date -u -r "$FWGATE" +%Y-%m-%dT%H:%M:%SZ)
FWGATE_DESCRIBE+=", binary built $FWGATE_MTIME"

# ---------------------------------------------------------------- the commands
declare -a IDS=(fwgate suggest tshark tcpdump)
[[ $FIELDS == 1 ]] && IDS+=(fields)
TSHARK_FIELDS=(-T fields -e frame.number -e tcp.srcport -e tcp.dstport -e tcp.flags -e tcp.seq_raw
  -e tcp.ack_raw)
declare -A LABEL=(
  [fwgate]="\`fwgate monitor -r FILE\`"
  [suggest]="\`fwgate monitor -r FILE --suggest\`"
  [tshark]="\`tshark -n -r FILE\`"
  [tcpdump]="\`tcpdump -n -r FILE\`"
  [fields]="\`tshark -n -r FILE ${TSHARK_FIELDS[*]}\`"
)
declare -A SKIP=()
[[ -n $TSHARK && -x $TSHARK ]] || SKIP[tshark]="tshark not found (apt-get install tshark, or --tshark PATH)"
[[ -n ${SKIP[tshark]:-} && $FIELDS == 1 ]] && SKIP[fields]=${SKIP[tshark]}
[[ -n $TCPDUMP && -x $TCPDUMP ]] || SKIP[tcpdump]="tcpdump not found (apt-get install tcpdump, or --tcpdump PATH)"
for id in "${!SKIP[@]}"; do log "!!! SKIPPING ${LABEL[$id]}: ${SKIP[$id]}"; done

# Sets CMD to the command line of one id.
declare -a CMD=()
set_cmd() {
  case "$1" in
    fwgate) CMD=("$FWGATE" monitor -r "$PCAP") ;;
    suggest) CMD=("$FWGATE" monitor -r "$PCAP" --suggest) ;;
    tshark) CMD=("$TSHARK" -n -r "$PCAP") ;;
    tcpdump) CMD=("$TCPDUMP" -n -r "$PCAP") ;;
    fields) CMD=("$TSHARK" -n -r "$PCAP" "${TSHARK_FIELDS[@]}") ;;
  esac
}

# ---------------------------------------------------------------- warm the page cache
cached_pct() {
  command -v fincore >/dev/null || { echo "?"; return; }
  fincore -b -n -o RES "$PCAP" 2>/dev/null | awk -v s="$FILE_BYTES" '{printf "%.0f", 100 * $1 / s}'
}
log "warm read: cat FILE > /dev/null (untimed), so every run reads from the page cache"
timeout -k 5 "$TIMEOUT" cat "$PCAP" >/dev/null
CACHED_START=$(cached_pct)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- output lines (untimed)
# One counting run per command, stdout | wc -l: do they all print one line per frame? It also
# loads each program's binary and libraries into the cache before the timed rounds.
declare -A LINES=()
for id in "${IDS[@]}"; do
  [[ -n ${SKIP[$id]:-} ]] && continue
  set_cmd "$id"
  log "counting output lines: ${LABEL[$id]}"
  rc=0
  n=$(timeout -k 5 "$TIMEOUT" "${PIN[@]}" "${CMD[@]}" 2>"$TMP/count.err" | wc -l) || rc=$?
  if (( rc != 0 )); then
    LINES[$id]="$n (exit $rc)"
  else
    LINES[$id]=$n
  fi
done

# ---------------------------------------------------------------- timed rounds
declare -A WALL=() CPUS=() FAILS=()
declare -a PROBLEMS=()
declare -a RAW=()
time_one() {
  local id=$1 round=$2 t0 t1 rc=0 wall cpu=""
  set_cmd "$id"
  t0=$(date +%s%N)
  if [[ -n $TIME_BIN ]]; then
    "$TIME_BIN" -f '%U %S' -o "$TMP/time" timeout -k 5 "$TIMEOUT" "${PIN[@]}" "${CMD[@]}" \
      >/dev/null 2>"$TMP/err" || rc=$?
  else
    timeout -k 5 "$TIMEOUT" "${PIN[@]}" "${CMD[@]}" >/dev/null 2>"$TMP/err" || rc=$?
  fi
  t1=$(date +%s%N)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
  if (( rc != 0 )); then
    local why="exit $rc"
    (( rc == 124 )) && why="timed out after $TIMEOUT s"
    FAILS[$id]=$(( ${FAILS[$id]:-0} + 1 ))
    PROBLEMS+=("round $round, ${LABEL[$id]}: $why; stderr: $(tail -c 300 "$TMP/err" | tr '\n' ' ')")
    log "  round $round: $id FAILED ($why)"
    RAW+=("| $round | ${LABEL[$id]} | FAIL ($why) | |")
    return
  fi
  [[ -n $TIME_BIN ]] && cpu=$(tail -1 "$TMP/time" | awk '{printf "%.2f", $1 + $2}')
  WALL[$id]+="$wall "
  CPUS[$id]+="${cpu:-} "
  RAW+=("| $round | ${LABEL[$id]} | $wall | ${cpu:-n/a} |")
  log "  round $round: $id ${wall}s wall, ${cpu:-?}s CPU"
}

declare -a ACTIVE=()
for id in "${IDS[@]}"; do [[ -n ${SKIP[$id]:-} ]] || ACTIVE+=("$id"); done
log "rounds $ROUNDS; commands: ${ACTIVE[*]}; timeout $TIMEOUT s each"
for round in $(seq 1 "$ROUNDS"); do
  # Rotate the starting command each round so none always runs first or last.
  for i in "${!ACTIVE[@]}"; do
    time_one "${ACTIVE[$(( (i + round - 1) % ${#ACTIVE[@]} ))]}" "$round"
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CACHED_END=$(cached_pct)
if [[ $(date -u -r "$FWGATE" +%Y-%m-%dT%H:%M:%SZ) != "$FWGATE_MTIME" ]]; then
  PROBLEMS+=("the fwgate binary was rebuilt during the run (was $FWGATE_MTIME, now $(date -u -r "$FWGATE" +%Y-%m-%dT%H:%M:%SZ)): the rounds may have run different builds")
  log "!!! the fwgate binary changed during the run"
fi

# ---------------------------------------------------------------- report
# stats "v v v" -> "median min max" (median of an even count: mean of the middle two)
stats() {
  tr ' ' '\n' | grep -v '^$' | sort -g |
    awk '{a[NR] = $1} END {
      if (NR == 0) { print ""; exit }
      m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      printf "%s %s %s\n", m, a[1], a[NR] }'
}
read -r FW_MED _ _ <<<"$(stats <<<"${WALL[fwgate]:-}")"

MD="$TMP/report.md"
{
  echo "## fwgate monitor -r against tshark and tcpdump: reading one capture"
  echo
  echo "### Setup"
  echo
  echo "- Date: $(date -u +%Y-%m-%dT%H:%MZ); host: $(uname -r), $(nproc) CPUs," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "- Pinning: $PINNING; load average at start $LOAD_START, at end $LOAD_END"
  echo "- Capture: \`$PCAP\`, $FILE_BYTES bytes, $FRAMES frames, classic pcap, Ethernet" \
    "(bench/monitor/make_pcap.py, seed $SEED, generator $GEN_HASH; generated in ${GEN_SECONDS:-?} s)"
  echo "- Page cache: one untimed \`cat FILE > /dev/null\` first; resident in the page cache:" \
    "${CACHED_START}% before the rounds, ${CACHED_END}% after (fincore)"
  echo "- Rounds: $ROUNDS, commands interleaved, starting command rotated per round; stdout to" \
    "/dev/null, stderr to a file; each run bounded by \`timeout $TIMEOUT\`"
  echo "- fwgate: \`$FWGATE\` ($("$FWGATE" --version 2>/dev/null | head -1)," \
    "$FWGATE_DESCRIBE," \
    "$(grep -s '^CMAKE_BUILD_TYPE:' "$(dirname "$FWGATE")/../../CMakeCache.txt" | cut -d= -f2 || true))"
  fw_pcap=$(ldd "$FWGATE" 2>/dev/null | awk '/libpcap/ {print $3}' | head -1)
  echo "- libpcap: fwgate links \`${fw_pcap:-?}\` ($(dpkg-query -W -f '${Package} ${Version}' libpcap0.8 2>/dev/null || echo "package version unknown"))"
  if [[ -z ${SKIP[tshark]:-} ]]; then
    echo "- tshark: \`$TSHARK\` ($("$TSHARK" --version 2>/dev/null | head -1))"
  else
    echo "- tshark: **SKIPPED**: ${SKIP[tshark]}"
  fi
  if [[ -z ${SKIP[tcpdump]:-} ]]; then
    echo "- tcpdump: \`$TCPDUMP\` ($("$TCPDUMP" --version 2>&1 | head -2 | paste -sd ', ' | sed 's/,/, /'))"
  else
    echo "- tcpdump: **SKIPPED**: ${SKIP[tcpdump]}"
  fi
  load1=${LOAD_START%% *}
  if awk "BEGIN{exit !($load1 > 0.5)}"; then
    echo "- **WARNING**: the machine was busy at the start (load $load1): expect noise; look at the min–max spread"
  fi
  echo
  echo "### Result"
  echo
  echo "| Command | Wall s, median (min–max) | MB/s | frames/s | CPU s (user+sys), median (min–max) | Wall ÷ fwgate's | Output lines |"
  echo "|---|---|---|---|---|---|---|"
  for id in "${IDS[@]}"; do
    if [[ -n ${SKIP[$id]:-} ]]; then
      echo "| ${LABEL[$id]} | **SKIPPED**: ${SKIP[$id]} | | | | | |"
      continue
    fi
    read -r med lo hi <<<"$(stats <<<"${WALL[$id]:-}")"
    if [[ -z ${med:-} ]]; then
      echo "| ${LABEL[$id]} | **FAIL**: every run failed (see Problems) | | | | | ${LINES[$id]} |"
      continue
    fi
    read -r cmed clo chi <<<"$(stats <<<"${CPUS[$id]:-}")"
    cpu_cell="n/a"
    [[ -n ${cmed:-} ]] && cpu_cell=$(awk -v m="$cmed" -v l="$clo" -v h="$chi" 'BEGIN {printf "%.2f (%.2f–%.2f)", m, l, h}')
    ratio="—"
    if [[ $id == fwgate ]]; then
      ratio="1 (reference)"
    elif [[ -n ${FW_MED:-} ]]; then
      ratio=$(awk -v a="$med" -v b="$FW_MED" 'BEGIN {printf "×%.1f", a / b}')
    fi
    lines=${LINES[$id]:-?}
    if [[ $id == suggest ]]; then
      lines="$lines (the suggestion)"
    elif [[ $lines =~ ^[0-9]+$ ]]; then
      if [[ $lines == "$FRAMES" ]]; then lines="$lines (= frames)"; else lines="**$lines ≠ $FRAMES frames**"; fi
    fi
    failed=""
    [[ -n ${FAILS[$id]:-} ]] && failed=" ⚠ ${FAILS[$id]} of $ROUNDS runs failed"
    awk -v l="${LABEL[$id]}" -v m="$med" -v lo="$lo" -v hi="$hi" -v b="$FILE_BYTES" -v f="$FRAMES" \
      -v c="$cpu_cell" -v r="$ratio" -v n="$lines" -v x="$failed" 'BEGIN {
        printf "| %s | %.2f (%.2f–%.2f)%s | %.0f | %.0f | %s | %s | %s |\n",
          l, m, lo, hi, x, b / 1e6 / m, f / m, c, r, n }'
  done
  echo
  if [[ -n ${FW_MED:-} ]]; then
    for id in tshark tcpdump; do
      [[ -n ${SKIP[$id]:-} ]] && { echo "- ${LABEL[$id]} ÷ fwgate: **SKIPPED** (${SKIP[$id]})"; continue; }
      read -r med _ _ <<<"$(stats <<<"${WALL[$id]:-}")"
      [[ -z ${med:-} ]] && { echo "- ${LABEL[$id]} ÷ fwgate: **FAIL** (no successful run)"; continue; }
      awk -v l="${LABEL[$id]}" -v a="$med" -v b="$FW_MED" \
        'BEGIN {printf "- %s ÷ `fwgate monitor -r FILE`: **×%.1f** (fwgate reads the file %.1f times as fast)\n", l, a / b, a / b}'
    done
    echo
  fi
  echo "MB = 10⁶ bytes. MB/s and frames/s are the file's size and frame count ÷ the median wall time."
  echo "Wall time is from before the command starts to after it exits (\`date +%s%N\`); CPU is"
  echo "user + sys of the command (\`/usr/bin/time -f '%U %S'\`, 10 ms resolution). Output lines come"
  echo "from one separate, untimed run of each command piped to \`wc -l\`."
  if (( ${#PROBLEMS[@]} > 0 )); then
    echo
    echo "### Problems during the run"
    echo
    for p in "${PROBLEMS[@]}"; do echo "- $p"; done
  fi
  echo
  echo "<details><summary>Every run</summary>"
  echo
  echo "| Round | Command | Wall s | CPU s |"
  echo "|---|---|---|---|"
  for r in "${RAW[@]}"; do echo "$r"; done
  echo
  echo "</details>"
} >"$MD"

mkdir -p "$OUT_DIR"
cp "$MD" "$OUT_DIR/latest-monitor.md"
cat "$MD"
log "wrote $OUT_DIR/latest-monitor.md"
