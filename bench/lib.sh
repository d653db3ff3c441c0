# Shared by bench/run.sh and bench/run-web.sh (sourced, not run): the processes a run owns and
# their cleanup, pinning, and building fwgate-bench. The caller defines log, die, NICE, ROOT,
# OWNED (an array) and TMP before sourcing it.

# Stops a process we started and any children it forked (Dante's pool), by PID only.
stop_tree() {
  local pid=$1 kids i
  kill -0 "$pid" 2>/dev/null || return 0
  kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for k in $kids; do kill -TERM "$k" 2>/dev/null || true; done
  sleep 0.1
  for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local pid
  for pid in "${OWNED[@]}"; do stop_tree "$pid"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs "$@" in the background on one CPU, records its PID in LAST_PID and OWNED.
start_on_cpu() {
  local cpu=$1 out=$2 err=$3
  shift 3
  nice -n "$NICE" taskset -c "$cpu" "$@" >"$out" 2>"$err" &
  LAST_PID=$!
  OWNED+=("$LAST_PID")
}

# Builds fwgate-bench (Release) in build-bench/ and sets BENCH, unless BENCH is given.
build_bench() {
  if [[ -z $BENCH ]]; then
    log "building fwgate-bench in $ROOT/build-bench"
    cmake -S "$ROOT" -B "$ROOT/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      >"$TMP/cmake.log" 2>&1 ||
      { cat "$TMP/cmake.log" >&2; die "cmake configure failed (or pass --bench PATH)"; }
    cmake --build "$ROOT/build-bench" --target fwgate-bench -j2 >>"$TMP/cmake.log" 2>&1 ||
      { tail -40 "$TMP/cmake.log" >&2; die "building fwgate-bench failed"; }
    BENCH="$ROOT/build-bench/bench/fwgate-bench"
  fi
  [[ -x $BENCH ]] || die "fwgate-bench not executable: $BENCH"
}
