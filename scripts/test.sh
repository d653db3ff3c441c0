#!/usr/bin/env bash
# The whole fwgate test suite (README quick start, command 2; .ci/run calls it):
#   dependencies -> build (RelWithDebInfo) -> unit tests -> integration tests
#   -> ASan+UBSan build -> unit + integration again -> libFuzzer targets, bounded runs.
# Ends with "fwgate: N passed, M failed" alone on a line; exits non-zero if anything failed.
#
#   scripts/test.sh [--quick]     --quick skips the sanitizer and fuzz phases
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
      sed -n '2,10p' "$0"
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
  summary+=("$(printf '%-36s %5ds  %5d passed  %4d failed  %s' "$phase_name" "$took" "$p" "$f" "$note")")
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

# run_pytest BINARY NAME [extra env assignments...]: the integration suite, counted from JUnit XML.
run_pytest() {
  local bin=$1 name=$2
  shift 2
  mkdir -p "$results"
  local xml="$results/integration-$name.xml"
  rm -f "$xml"
  # shellcheck disable=SC2086
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

# ---------------------------------------------------------------------------------------------

step "dependencies" bash scripts/setup-deps.sh || {
  echo "test.sh: cannot install dependencies; stopping" >&2
}

step "clang-format" check_format
if step "build ($build)" configure_and_build "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
  phase_begin "unit tests"
  run_ctest "$build"
  phase_begin "integration tests"
  run_pytest "$build/apps/fwgate/fwgate" release
fi

if ((quick == 0)); then
  if step "build ASan+UBSan ($build_asan)" configure_and_build "$build_asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFWGATE_SANITIZE=ON -DFWGATE_BENCH=OFF; then
    for kv in "${sanitizer_env[@]}"; do export "${kv?}"; done
    phase_begin "unit tests (ASan+UBSan)"
    run_ctest "$build_asan"
    phase_begin "integration tests (ASan+UBSan)"
    # The preload library is loaded into uninstrumented programs: the regular build's one.
    run_pytest "$build_asan/apps/fwgate/fwgate" asan FWGATE_IT_SANITIZED=1 \
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
