#!/usr/bin/env bash
# Builds every test/fuzz/fuzz_*.c into OUTDIR (default build/fuzz) with clang
# and libFuzzer, ASan and UBSan.
#
# A target is one file with one LLVMFuzzerTestOneInput. Its first line names
# the project sources to compile with it, e.g.
#   /* fuzz-sources: ice/stun.c core/buf.c core/pl.c */
# (paths relative to the repository; a target that #includes a .c itself
# must not list it again). Flags and libraries are the project's pkg-config
# set, so any core file links.
#
# Prints "built NAME" or "FAILED NAME" per target; writes OUTDIR/targets
# (the names that built) and OUTDIR/failed (those that did not). Exit 1 if
# any target failed to build.
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
OUT=${1:-$ROOT/build/fuzz}
CC=${FUZZ_CC:-clang}
mkdir -p "$OUT"
: >"$OUT/targets"
: >"$OUT/failed"

# The same pkg-config modules as configure.ac (which also links
# libunistring, that has no .pc file: see CONF_LIBS below).
PKGS=(libxml-2.0 openssl zlib libwebsockets libuv libosip2 nice libsrtp2 libpq
	sqlite3 yaml-0.1 libidn2)
if ! PKG_CFLAGS=$(pkg-config --cflags "${PKGS[@]}") ||
	! PKG_LIBS=$(pkg-config --libs "${PKGS[@]}"); then
	echo "fuzz: pkg-config failed (run tools/install-deps)" >&2
	exit 1
fi

# config.h, and the libraries configure adds without pkg-config (its LIBS),
# come from a configured build directory if there is one; without one,
# LIBS is what configure.ac is known to add.
CONFIG_INC=
CONF_LIBS=-lunistring
for d in "$ROOT/build/asan" "$ROOT/build/release" "$ROOT"; do
	if [ -f "$d/config.h" ] && [ -f "$d/Makefile" ]; then
		CONFIG_INC="-I$d"
		CONF_LIBS=$(sed -n 's/^LIBS = //p' "$d/Makefile" | head -n 1)
		break
	fi
done

CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined -D_GNU_SOURCE -pthread -Wall -Wextra
	-Wno-unused-parameter -I$ROOT $CONFIG_INC"

status=0
shopt -s nullglob
for src in test/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	sources=$(head -n 1 "$src" | sed -n 's|.*fuzz-sources:\(.*\)\*/.*|\1|p')
	extra=()
	for s in $sources; do
		extra+=("$ROOT/$s")
	done
	# shellcheck disable=SC2086 # word splitting of flag lists is intended
	if $CC $CFLAGS $PKG_CFLAGS -o "$OUT/$name" "$ROOT/$src" "${extra[@]}" \
		$PKG_LIBS $CONF_LIBS -lm >"$OUT/$name.build.log" 2>&1; then
		echo "built $name"
		echo "$name" >>"$OUT/targets"
	else
		echo "FAILED $name (compile/link; log: $OUT/$name.build.log)"
		tail -n 20 "$OUT/$name.build.log"
		echo "$name" >>"$OUT/failed"
		status=1
	fi
done
exit $status
