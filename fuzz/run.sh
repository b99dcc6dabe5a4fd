#!/bin/sh
# fuzz/run.sh MODE N TARGET...: runs the libFuzzer targets that mk/fuzz.mk
# built into build/fuzz.
#   smoke N   N runs each, seed 1, on a copy of fuzz/corpus/<target>
#   long N    N seconds each; inputs that cover something new go to
#             build/fuzz/work/<target>, fuzz/corpus/<target> is only read
#   merge     adds the inputs of build/fuzz/work/<target> that reach code
#             fuzz/corpus/<target> does not to fuzz/corpus/<target>
# Prints one line per target. A crash, sanitizer report, leak or broken
# invariant prints the end of the log and the command that reproduces it,
# and the script exits 1.
set -u
mode=$1
n=$2
shift 2
out=build/fuzz
mkdir -p "$out/logs" "$out/artifacts"
status=0
for t in "$@"; do
  bin=$out/$t
  log=$out/logs/$t-$mode.log
  # the loop's list was read already: "$@" now holds the libFuzzer flags
  set -- -artifact_prefix="$out/artifacts/$t-" -timeout=10 -rss_limit_mb=2048 \
         -print_final_stats=1
  if [ -f "fuzz/dict/$t.dict" ]; then
    set -- "$@" -dict="fuzz/dict/$t.dict"
  fi
  start=$(date +%s)
  case $mode in
    smoke)
      dir=$out/smoke/$t
      rm -rf "$dir"
      mkdir -p "$dir"
      cp fuzz/corpus/"$t"/* "$dir"/
      "$bin" "$@" -seed=1 -runs="$n" "$dir" > "$log" 2>&1
      ;;
    long)
      dir=$out/work/$t
      mkdir -p "$dir"
      "$bin" "$@" -max_total_time="$n" "$dir" "fuzz/corpus/$t" > "$log" 2>&1
      ;;
    merge)
      dir=$out/work/$t
      mkdir -p "$dir"
      # new edges only (not new hit counts), to keep the corpus small
      "$bin" "$@" -merge=1 -use_counters=0 "fuzz/corpus/$t" "$dir" > "$log" 2>&1
      ;;
    *)
      echo "fuzz/run.sh: unknown mode '$mode'" >&2
      exit 2
      ;;
  esac
  rc=$?
  # sanitizers abort (-fno-sanitize-recover=all); a report with exit 0
  # would still be a failure
  if [ "$rc" -eq 0 ] && grep -q -E '^==[0-9]+==ERROR|runtime error:|invariant broken' "$log"; then
    rc=1
  fi
  secs=$(( $(date +%s) - start ))
  files=$(find "fuzz/corpus/$t" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then
    echo "fuzz $mode: $t FAILED (exit $rc after ${secs}s); log: $log" >&2
    tail -n 60 "$log" >&2
    # shellcheck disable=SC2012 # the newest; libFuzzer names them by hash
    crash=$(ls -t "$out/artifacts/$t-"* 2>/dev/null | head -n 1)
    if [ -n "$crash" ]; then
      echo "reproduce: make fuzz-build && $bin $crash" >&2
    fi
    status=1
  else
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    echo "fuzz $mode: $t ok (${runs:-?} runs, cov ${cov:-?}, ${secs}s, corpus $files files)"
  fi
done
exit $status
