#!/usr/bin/env bash
# The whole fwgate test suite (README quick start, command 2; .ci/run calls it):
#   dependencies -> clang-format -> Release build (the README's) -> unit tests -> integration tests
#   -> the quick start's gateway serves curl -> Debian package: lintian, install, run, purge
#   -> ASan+UBSan build -> unit + integration again -> libFuzzer targets, bounded runs.
# The release integration run sees Debian's stock /etc/hosts (with "::1 localhost"), the sanitized
# one a hosts file without it, and both run while something else listens on 1080, 1745 and 8080
# (tests/integration/isolated.sh): the suite may depend on neither. Every gateway of the release
# run has one event loop ([gateway] workers = 1), of the sanitized run four.
# Ends with "fwgate: N passed, M failed" alone on a line; exits non-zero if anything failed.
#
#   scripts/test.sh [--quick]     --quick: without the package, sanitizer and fuzz phases
# Environment: FWGATE_BUILD_DIR, FWGATE_ASAN_BUILD_DIR, FWGATE_FUZZ_BUILD_DIR (default build,
# build-asan, build-fuzz), FWGATE_JOBS (default 2), FWGATE_FUZZ_RUNS (default 20000),
# FWGATE_PYTEST_ARGS (extra pytest arguments, e.g. "-k socks5").
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    -h | --help)
      sed -n '2,14p' "$0"
      exit 0
      ;;
    *)
      echo "test.sh: unknown argument $arg" >&2
      exit 2
      ;;
  esac
done

build=${FWGATE_BUILD_DIR:-build}
build_asan=${FWGATE_ASAN_BUILD_DIR:-build-asan}
build_fuzz=${FWGATE_FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FWGATE_JOBS:-2}
fuzz_runs=${FWGATE_FUZZ_RUNS:-20000}
# Debian's Python: setup-deps.sh installs pytest, PySocks and pyftpdlib for it, not for another on PATH.
python=/usr/bin/python3
results="$repo/$build/test-results"

passed=0
failed=0
summary=()
suite_start=$SECONDS

phase_begin() {
  phase_name=$1
  phase_start=$SECONDS
  printf '\n==== %s ====\n' "$phase_name"
}

# phase_end PASSED FAILED [note]
phase_end() {
  local p=$1 f=$2 note=${3:-}
  local took=$((SECONDS - phase_start))
  passed=$((passed + p))
  failed=$((failed + f))
  summary+=("$(printf '%-56s %5ds  %5d passed  %4d failed  %s' "$phase_name" "$took" "$p" "$f" "$note")")
  printf '==== %s: %d passed, %d failed, %ds %s====\n' "$phase_name" "$p" "$f" "$took" "${note:+($note) }"
}

# A step that is not a test suite counts as one test: it passed or it failed.
step() {
  local name=$1
  shift
  phase_begin "$name"
  "$@"
  local rc=$?
  if ((rc == 0)); then
    phase_end 1 0
    return 0
  fi
  phase_end 0 1 "exit $rc"
  return 1
}

# Every C++ file the repository tracks is clang-formatted (.clang-format at the top).
check_format() {
  local files
  mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.cc')
  ((${#files[@]} > 0)) || return 0
  clang-format --dry-run -Werror "${files[@]}"
}

configure_and_build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@" && cmake --build "$dir" -j "$jobs"
}

# run_ctest DIR: unit tests; counts from ctest's own summary line.
run_ctest() {
  local dir=$1 log
  log=$(mktemp)
  ctest --test-dir "$dir" -j "$jobs" --output-on-failure --no-tests=error --timeout 300 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line total nfail
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  rm -f "$log"
  if [[ -z $line ]]; then
    phase_end 0 1 "ctest ran no test (exit $rc)"
    return
  fi
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  nfail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  if ((rc != 0 && nfail == 0)); then
    phase_end $((total - nfail)) 1 "ctest exit $rc"
  else
    phase_end $((total - nfail)) "$nfail"
  fi
}

# run_pytest BINARY NAME HOSTS [extra env assignments...]: the integration suite, counted from
# JUnit XML, in a mount namespace whose /etc/hosts is Debian's stock one (HOSTS=stock) or one
# without "::1 localhost" (HOSTS=dev), while something else listens on 1080, 1745 and 8080.
run_pytest() {
  local bin=$1 name=$2 hosts=$3
  shift 3
  mkdir -p "$results"
  local xml="$results/integration-$name.xml"
  rm -f "$xml"
  # shellcheck disable=SC2086
  bash tests/integration/isolated.sh --hosts "$hosts" --squat -- \
    env FWGATE_BIN="$repo/$bin" FWGATE_IT_TARGET=fwgate "$@" \
    "$python" -m pytest -q tests/integration --junitxml="$xml" ${FWGATE_PYTEST_ARGS:-} </dev/null
  local rc=$?
  if [[ ! -s $xml ]]; then
    phase_end 0 1 "pytest exit $rc, no report"
    return
  fi
  local counts
  counts=$("$python" - "$xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
# One verdict per test: a test with a failure in its call and an error in its teardown is one
# failed test. A skipped test counts as failed: this suite has no optional parts.
verdict = {}
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    key = (case.get("classname"), case.get("name"))
    bad = any(child.tag in ("failure", "error", "skipped") for child in case)
    verdict[key] = verdict.get(key, False) or bad
failed = sum(verdict.values())
print(len(verdict) - failed, failed)
EOF
  )
  local p=${counts% *} f=${counts#* }
  if ((p + f == 0)); then
    phase_end 0 1 "pytest ran no test (exit $rc)"
  elif ((rc != 0 && f == 0)); then
    phase_end "$p" 1 "pytest exit $rc"
  else
    phase_end "$p" "$f"
  fi
}

fuzz_targets() {
  ninja -C "$build_fuzz" -t targets all 2>/dev/null | sed -nE 's#^(tests/fuzz/)?(fuzz_[A-Za-z0-9_]+): .*#\2#p' | sort -u
}

build_fuzzers() {
  cmake -S . -B "$build_fuzz" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFWGATE_FUZZ=ON -DFWGATE_TESTS=OFF -DFWGATE_BENCH=OFF || return 1
  local targets
  mapfile -t targets < <(fuzz_targets)
  if ((${#targets[@]} == 0)); then
    echo "no fuzz_* targets in $build_fuzz" >&2
    return 1
  fi
  echo "fuzz targets: ${targets[*]}"
  cmake --build "$build_fuzz" -j "$jobs" --target "${targets[@]}"
}

# run_fuzzers: one test per fuzz target, from run-fuzzers.sh's "NAME ok|FAILED ..." lines.
run_fuzzers() {
  local log
  log=$(mktemp)
  bash tests/fuzz/run-fuzzers.sh "$build_fuzz" "$fuzz_runs" </dev/null 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local ok bad
  ok=$(grep -cE '^fuzz_[A-Za-z0-9_]+ +ok ' "$log")
  bad=$(grep -cE '^fuzz_[A-Za-z0-9_]+ +FAILED ' "$log")
  rm -f "$log"
  if ((rc != 0 && bad == 0)); then
    bad=1
  fi
  if ((ok + bad == 0)); then
    phase_end 0 1 "no fuzz target ran (exit $rc)"
  else
    phase_end "$ok" "$bad"
  fi
}

sanitizer_env=(
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:halt_on_error=1
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  LSAN_OPTIONS=report_objects=1
)

# Quick start command 1 as a user runs it (scripts/start-gateway.sh: dependencies, the Release
# build, then the gateway on its embedded default), on ports the kernel picks instead of 1080, 1745
# and 8080, which may be taken on this machine; curl must get a page from a local server through
# it, once over SOCKS and once through the Web Proxy, and each must be logged.
quickstart_gateway() (
  dir=$(mktemp -d)
  pids=()
  # shellcheck disable=SC2317
  cleanup() {
    for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$dir"
  }
  trap cleanup EXIT
  mkdir "$dir/www" && echo "fwgate quick start $$" >"$dir/www/index.html"
  setsid "$python" -u -m http.server --bind 127.0.0.1 --directory "$dir/www" 0 >"$dir/http.log" 2>&1 </dev/null &
  pids+=($!)
  setsid bash scripts/start-gateway.sh --listen 127.0.0.1:0 --control-listen 127.0.0.1:0 \
    --web-listen 127.0.0.1:0 >"$dir/gw.log" 2>&1 </dev/null &
  pids+=($!)
  socks="" proxy="" web=""
  for ((i = 0; i < 1200 && (${#socks} == 0 || ${#proxy} == 0 || ${#web} == 0); i++)); do
    socks=$(sed -nE 's/.*socks listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$dir/gw.log" | head -1)
    proxy=$(sed -nE 's/.*web proxy listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$dir/gw.log" | head -1)
    web=$(sed -nE 's/.*Serving HTTP on 127\.0\.0\.1 port ([0-9]+).*/\1/p' "$dir/http.log" | head -1)
    kill -0 "${pids[1]}" 2>/dev/null || break
    sleep 0.25
  done
  if [[ -z $socks || -z $proxy || -z $web ]]; then
    echo "start-gateway.sh: no 'socks listening' or 'web proxy listening' line (or no web server) within 300 s:" >&2
    tail -n 30 "$dir/gw.log" "$dir/http.log" >&2
    exit 1
  fi
  if [[ $proxy == 8080 ]]; then
    echo "start-gateway.sh --web-listen 127.0.0.1:0 still listens on 8080" >&2
    exit 1
  fi
  if ! body=$(curl -sS --max-time 10 --socks5-hostname "127.0.0.1:$socks" "http://127.0.0.1:$web/index.html"); then
    tail -n 30 "$dir/gw.log" >&2
    exit 1
  fi
  if [[ $body != "fwgate quick start $$" ]]; then
    echo "curl through the quick start gateway got: $body" >&2
    exit 1
  fi
  if ! grep -Eq '"command": ?"connect"' "$dir/gw.log"; then
    echo "the gateway logged no connect session:" >&2
    tail -n 30 "$dir/gw.log" >&2
    exit 1
  fi
  if ! body=$(curl -sS --max-time 10 --noproxy '' -x "http://127.0.0.1:$proxy" "http://127.0.0.1:$web/index.html"); then
    tail -n 30 "$dir/gw.log" >&2
    exit 1
  fi
  if [[ $body != "fwgate quick start $$" ]]; then
    echo "curl -x http://127.0.0.1:$proxy (the quick start gateway's Web Proxy) got: $body" >&2
    exit 1
  fi
  if ! grep -Eq '"protocol": ?"http"' "$dir/gw.log"; then
    echo "the gateway logged no Web Proxy request:" >&2
    tail -n 30 "$dir/gw.log" >&2
    exit 1
  fi
  echo "curl through 127.0.0.1:$socks (SOCKS) and 127.0.0.1:$proxy (Web Proxy) of scripts/start-gateway.sh got the page; both were logged"
)

# The Debian package, made from the tested Release build: lintian, then installed, run, removed and
# purged in a throw-away root (scripts/test-package.sh). One test per "ok"/"FAIL" line it prints.
run_package() {
  local log rc
  log=$(mktemp)
  {
    deb=$(bash scripts/package.sh "$build" | tail -1) &&
      if [[ -f $deb ]]; then
        bash scripts/test-package.sh "$deb"
      else
        echo "scripts/package.sh printed no package path ($deb)" >&2
        false
      fi
  } </dev/null 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local ok bad
  ok=$(grep -cE '^ok ' "$log")
  bad=$(grep -cE '^FAIL ' "$log")
  rm -f "$log"
  if ((rc != 0 && bad == 0)); then
    phase_end "$ok" 1 "exit $rc"
  else
    phase_end "$ok" "$bad"
  fi
}

# ---------------------------------------------------------------------------------------------

# Not a test: without the packages nothing else can run.
phase_begin "dependencies"
if ! bash scripts/setup-deps.sh; then
  echo "test.sh: cannot install the dependencies (scripts/setup-deps.sh); stopping" >&2
  echo "fwgate: 0 passed, 1 failed"
  exit 1
fi
printf '==== dependencies: %ds ====\n' $((SECONDS - phase_start))
summary+=("$(printf '%-56s %5ds' "dependencies" $((SECONDS - phase_start)))")

step "clang-format" check_format
# The configuration the README's Quick start and install steps build.
if step "build Release ($build)" configure_and_build "$build" -DCMAKE_BUILD_TYPE=Release; then
  phase_begin "unit tests"
  run_ctest "$build"
  # The suite runs twice in all, with one event loop here and with four under ASan below
  # (where a session touching another loop's state would show as a use after free).
  phase_begin "integration tests (stock /etc/hosts, 1 worker)"
  run_pytest "$build/apps/fwgate/fwgate" release stock FWGATE_IT_WORKERS=1
  if [[ $build == build ]]; then
    step "quick start: start-gateway.sh serves curl" quickstart_gateway
  fi
  if ((quick == 0)); then
    phase_begin "Debian package: lintian, install, run, purge"
    run_package
  fi
fi

if ((quick == 0)); then
  if step "build ASan+UBSan ($build_asan)" configure_and_build "$build_asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFWGATE_SANITIZE=ON -DFWGATE_BENCH=OFF; then
    for kv in "${sanitizer_env[@]}"; do export "${kv?}"; done
    phase_begin "unit tests (ASan+UBSan)"
    run_ctest "$build_asan"
    phase_begin "integration tests (ASan+UBSan, /etc/hosts without ::1, 4 workers)"
    # The preload library is loaded into uninstrumented programs: the regular build's one.
    run_pytest "$build_asan/apps/fwgate/fwgate" asan dev FWGATE_IT_SANITIZED=1 FWGATE_IT_WORKERS=4 \
      FWGATE_CLIENT_LIB="$repo/$build/src/client/libfwgate-client.so"
    unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
  fi

  if step "build fuzzers ($build_fuzz)" build_fuzzers; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    if [[ -f tests/fuzz/run-fuzzers.sh ]]; then
      phase_begin "fuzz ($fuzz_runs runs each)"
      run_fuzzers
    else
      phase_begin "fuzz"
      echo "tests/fuzz/run-fuzzers.sh is missing" >&2
      phase_end 0 1 "run-fuzzers.sh missing"
    fi
    unset ASAN_OPTIONS UBSAN_OPTIONS
  fi
fi

printf '\n==== summary (%ds) ====\n' $((SECONDS - suite_start))
printf '%s\n' "${summary[@]}"
echo "fwgate: $passed passed, $failed failed"
((failed == 0))
