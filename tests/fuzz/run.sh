#!/usr/bin/env bash
# Runs every libFuzzer target built in BUILD (configured with
# -DSTRIGIL_FUZZ=ON) for FUZZ_SECONDS each, starting from the committed
# seed corpus. Fails on the first crash, leak, sanitizer report or hang;
# the input that did it is left in BUILD/fuzz-artifacts/ (turn it into a
# regression: copy it into tests/fuzz/corpus/<target>/ and fix the bug).
#
#   tests/fuzz/run.sh BUILD [TARGET...]
#
# New inputs the fuzzer finds go to BUILD/fuzz-corpus/<target>/, never into
# the committed corpus (merge them by hand with -merge=1 if worth keeping).
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${1:?usage: tests/fuzz/run.sh BUILD [TARGET...]}
shift
seconds=${FUZZ_SECONDS:-20}
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in "$build"/tests/fuzz/fuzz_*; do
    [ -x "$f" ] && targets+=("$(basename "$f" | sed 's/^fuzz_//')")
  done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in $build" >&2; exit 1; }

mkdir -p "$build/fuzz-artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  work="$build/fuzz-corpus/$t"
  mkdir -p "$work"
  echo "== fuzz_$t for ${seconds}s"
  # -timeout: one input may take 10 s at most (the sandboxed config has
  # its own instruction budget far below that). -max_len 64 KiB: past the
  # limits of every parser under test.
  if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" \
      -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-artifacts/$t-" \
      "$work" "tests/fuzz/corpus/$t" >"$build/fuzz-artifacts/$t.log" 2>&1
  then
    tail -n 40 "$build/fuzz-artifacts/$t.log"
    failed+=("$t")
  else
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' \
      "$build/fuzz-artifacts/$t.log" | tr '\n' ' '; echo
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ran ${seconds}s each without a crash"
