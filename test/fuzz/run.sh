#!/usr/bin/env bash
# Runs every fuzz target built by build.sh for a short while (a smoke test,
# not a fuzzing campaign): each target starts from a fresh empty corpus plus
# test/fuzz/corpus/NAME/ (seeds) and test/fuzz/NAME.dict if present.
#
#   test/fuzz/run.sh [OUTDIR] [SECONDS]     (defaults: build/fuzz, 20)
#
# A target passes if libFuzzer finds nothing in the time. A target that
# failed to build (OUTDIR/failed) fails. Last line: "N passed, N failed".
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 2
ROOT=$PWD
OUT=${1:-$ROOT/build/fuzz}
SECS=${2:-${FUZZ_SECONDS:-20}}
pass=0
fail=0

if [ -f "$OUT/failed" ]; then
	while IFS= read -r name; do
		[ -n "$name" ] || continue
		echo "FAIL $name: did not build"
		fail=$((fail + 1))
	done <"$OUT/failed"
fi

targets=()
if [ -f "$OUT/targets" ]; then
	while IFS= read -r name; do
		[ -n "$name" ] && targets+=("$name")
	done <"$OUT/targets"
fi

for name in "${targets[@]}"; do
	corpus=$(mktemp -d "${TMPDIR:-/tmp}/parley-corpus-$name.XXXXXX")
	dirs=("$corpus")
	[ -d "test/fuzz/corpus/$name" ] && dirs+=("test/fuzz/corpus/$name")
	opts=(-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048
		-print_final_stats=1 -artifact_prefix="$OUT/$name-")
	[ -f "test/fuzz/$name.dict" ] && opts+=(-dict="test/fuzz/$name.dict")
	log=$OUT/$name.run.log
	# The hard limit catches a target that hangs outside libFuzzer's timer.
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		timeout -k 5 $((SECS + 60)) "$OUT/$name" "${opts[@]}" "${dirs[@]}" \
		</dev/null >"$log" 2>&1
	rc=$?
	rm -rf "$corpus"
	if [ $rc -eq 0 ]; then
		echo "PASS $name ($(grep -aoE 'stat::number_of_executed_units: *[0-9]+' "$log" |
			grep -oE '[0-9]+$') runs)"
		pass=$((pass + 1))
	else
		echo "FAIL $name: exit $rc; log: $log"
		grep -aE 'ERROR:|runtime error:|SUMMARY:|Test unit written' "$log" | head -n 8 |
			sed 's/^/    /'
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
