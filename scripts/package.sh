#!/usr/bin/env bash
# The Debian package, from a build directory that is already built (and tested): nothing is
# compiled here.
#
#   scripts/package.sh BUILD_DIR     e.g. after cmake -S . -B build -G Ninja
#                                    -DCMAKE_BUILD_TYPE=Release && cmake --build build
#
# Refuses a sanitized, fuzzing or Debug build.
# Writes BUILD_DIR/package/fwgate_VERSION_ARCH.deb (cmake/Packaging.cmake: CPack's DEB
# generator) and prints its path on the last line of standard output.
set -euo pipefail

die() {
  echo "package.sh: $*" >&2
  exit 1
}

(($# == 1)) || die "usage: scripts/package.sh BUILD_DIR"
build=$(cd "$1" 2>/dev/null && pwd) || die "no directory $1"
cache=$build/CMakeCache.txt
[[ -f $cache ]] || die "$1 is not a CMake build directory (no CMakeCache.txt)"

cached() { sed -n "s/^$1:[A-Z]*=//p" "$cache"; }

type=$(cached CMAKE_BUILD_TYPE)
case $type in
  Release | RelWithDebInfo | MinSizeRel) ;;
  *) die "$1 is a '$type' build; package a Release build (-DCMAKE_BUILD_TYPE=Release)" ;;
esac
for option in FWGATE_SANITIZE FWGATE_FUZZ; do
  case $(cached $option) in
    ON | TRUE | 1 | YES) die "$1 has $option=ON: package a plain build" ;;
  esac
done
[[ -f $build/CPackConfig.cmake ]] ||
  die "$1 has no CPackConfig.cmake: configure it again (cmake -S . -B $1)"

# The package holds what was built (and tested): the build is normally complete, and this is a
# no-op. Should sources have changed since, what they need is built now, and said so.
log=$(cmake --build "$build" 2>&1) || {
  printf '%s\n' "$log" | tail -20 >&2
  die "cmake --build $1 failed"
}
steps=$(grep -E '^\[[0-9]+/[0-9]+\] ' <<<"$log" | grep -cv 'Re-checking globbed directories' || true)
if ((steps > 0)); then
  echo "package.sh: $1 was not up to date with the sources: built $steps steps now" >&2
fi
# What the install rules need that only a complete build makes.
for made in apps/fwgate/fwgate src/client/libfwgate-client.so packaging/gateway.toml \
  packaging/man/fwgate.1.gz packaging/man/fwgate.toml.5.gz packaging/changelog.gz; do
  [[ -f $build/$made ]] || die "$1/$made is missing: build every target (cmake --build $1)"
done

outdir=$build/package
rm -rf "$outdir/_CPack_Packages"
rm -f "$outdir"/fwgate_*.deb
start=$SECONDS
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$outdir" >&2 ||
  die "cpack failed"

debs=("$outdir"/fwgate_*.deb)
if ((${#debs[@]} != 1)) || [[ ! -f ${debs[0]} ]]; then
  die "cpack made no fwgate_*.deb in $outdir"
fi
rm -rf "$outdir/_CPack_Packages"
echo "package.sh: ${debs[0]} ($(du -h "${debs[0]}" | cut -f1), $((SECONDS - start)) s)" >&2
echo "${debs[0]}"
