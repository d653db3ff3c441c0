#!/usr/bin/env bash
# Usage: run-fuzzers.sh BUILD_DIR RUNS
# Runs every fuzz_* binary in BUILD_DIR/tests/fuzz for RUNS iterations, each on a temporary copy of
# its seed corpus (tests/fuzz/corpus/<target>/), so nothing is written into the repository.
# Prints one line per target; exits non-zero if any target fails or none is found.
set -uo pipefail

if [[ $# -ne 2 || ! "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 BUILD_DIR RUNS" >&2
  exit 2
fi
runs=$2
if ! build_dir=$(cd "$1" 2>/dev/null && pwd); then
  echo "no such build directory: $1" >&2
  exit 2
fi
fuzz_bin_dir="$build_dir/tests/fuzz"
corpus_root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/corpus"

work=$(mktemp -d "${TMPDIR:-/tmp}/fwgate-fuzz.XXXXXX")
keep_work=0
cleanup() { ((keep_work)) || rm -rf "$work"; }
trap cleanup EXIT

targets=()
for binary in "$fuzz_bin_dir"/fuzz_*; do
  [[ -f "$binary" && -x "$binary" ]] && targets+=("$binary")
done
if ((${#targets[@]} == 0)); then
  echo "no fuzz_* binaries in $fuzz_bin_dir" >&2
  exit 2
fi

failed=0
for binary in "${targets[@]}"; do
  name=$(basename "$binary")
  corpus="$work/$name/corpus"
  artifacts="$work/$name/artifacts"
  log="$work/$name/log"
  mkdir -p "$corpus" "$artifacts"
  seeds=0
  if [[ -d "$corpus_root/$name" ]]; then
    cp -R "$corpus_root/$name/." "$corpus/"
    seeds=$(find "$corpus" -type f | wc -l)
  fi

  # Run from the scratch directory: libFuzzer writes crash-*, leak-* and the like to the cwd too.
  start=$SECONDS
  (cd "$work/$name" && "$binary" -runs="$runs" -artifact_prefix="$artifacts/" "$corpus") \
    >"$log" 2>&1
  status=$?
  elapsed=$((SECONDS - start))
  if ((status == 0)); then
    final=$(find "$corpus" -type f | wc -l)
    printf '%-24s ok      %s runs, %d seeds -> %d corpus files, %ds\n' \
      "$name" "$runs" "$seeds" "$final" "$elapsed"
  else
    failed=1
    keep_work=1
    crash=$(find "$artifacts" -type f | head -n 1)
    printf '%-24s FAILED  exit %d after %ds; log %s%s\n' "$name" "$status" "$elapsed" "$log" \
      "${crash:+; reproducer $crash}"
  fi
done

if ((failed)); then
  echo "logs and reproducers kept in $work" >&2
fi
exit "$failed"
