#!/bin/sh
# Memory checks of stackone.core; `make check-memory` builds what they need
# and runs all three:
#
#   valgrind  the whole busted suite under valgrind memcheck, run on the
#             lua5.4 process itself (not through busted --lua=, which would
#             re-exec); children (the local server, `sh`) are not traced
#   asan      the whole suite against build/asan/stackone/core.so, built
#             with -fsanitize=address,undefined; lua5.4 is not instrumented,
#             so the ASan runtime is LD_PRELOADed; LeakSanitizer is on
#   embed     examples/embed/host (two lua_States, coroutines) under
#             valgrind, against a local server this script starts
#
# usage: sh scripts/check-memory.sh [valgrind] [asan] [embed]   (default: all)
# Each part prints one summary line and the details of any error; logs are
# in build/memory/. Exits non-zero when any part found an error.
set -u
cd "$(dirname "$0")/.."

OUT=build/memory
TIMEOUT=${MEMCHECK_TIMEOUT:-600}
SAN_CC=${SAN_CC:-cc}
ASAN_MODULE=build/asan/stackone/core.so
EMBED_HOST=build/embed/host
SUPP=spec/support/valgrind.supp

mkdir -p "$OUT"

# busted's own runner, called the way /usr/bin/busted calls it, so that
# the interpreter valgrind watches is the one that runs the specs
RUNNER=$OUT/busted-runner.lua
echo "require('busted.runner')({ standalone = false })" > "$RUNNER"

# memcheck: definite and indirect leaks are errors; "possibly lost" is
# shown; still-reachable blocks (lua5.4's, libcurl's and OpenSSL's one-time
# init) are neither. --keep-debuginfo keeps stack traces into core.so
# readable after lua_close has dlclose()d it.
VALGRIND="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
  --show-leak-kinds=definite,indirect,possible
  --errors-for-leak-kinds=definite,indirect --track-origins=yes
  --num-callers=40 --keep-debuginfo=yes --trace-children=no
  --child-silent-after-fork=yes"
if [ -f "$SUPP" ]; then
  VALGRIND="$VALGRIND --suppressions=$SUPP"
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# "N passed, N failed, N skipped" from a TAP file, as scripts/test.sh counts
tap_counts() {
  passed=$(grep -c '^ok ' "$1")
  failed=$(grep -c '^not ok ' "$1")
  skipped=$(grep -c '^ok .*# SKIP' "$1")
  passed=$((passed - skipped))
}

# prints the failing tests of a TAP file, or its tail when busted itself
# failed before reporting any test
show_tap_failures() {
  if [ "$failed" -ne 0 ]; then
    awk '/^not ok /{p=1} /^ok /{p=0} p' "$1" | head -n 60
  else
    tail -n 30 "$1"
  fi
}

# the number before "bytes" on a valgrind LEAK SUMMARY line, 0 if absent
leak_bytes() {
  sed -n "s/.*$1: \([0-9,]*\) bytes.*/\1/p" "$2" | tail -n 1 | tr -d , |
    grep . || echo 0
}

# checks a valgrind log; sets vg_summary, returns non-zero on errors
check_valgrind_log() {
  log=$1
  if ! grep -q 'ERROR SUMMARY:' "$log"; then
    vg_summary="valgrind wrote no summary"
    return 1
  fi
  errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tail -n 1 | tr -d ,)
  definite=$(leak_bytes "definitely lost" "$log")
  indirect=$(leak_bytes "indirectly lost" "$log")
  possible=$(leak_bytes "possibly lost" "$log")
  reachable=$(leak_bytes "still reachable" "$log")
  vg_summary="$errors errors, definitely lost $definite B, indirectly lost $indirect B, possibly lost $possible B, still reachable $reachable B"
  [ "$errors" -eq 0 ] && [ "$definite" -eq 0 ] && [ "$indirect" -eq 0 ]
}

# the error records of a valgrind log, without its banner
show_valgrind_errors() {
  grep -v -e '^==[0-9]*== *$' "$1" |
    sed -n '/HEAP SUMMARY\|Invalid \|uninitialised\|lost in loss record\|Mismatched\|overlap\|Syscall param\|fishy\|Jump to/,$p' |
    head -n 150
}

part_valgrind() {
  start=$(now)
  log=$OUT/valgrind-suite.log
  tap=$OUT/valgrind-suite.tap
  rm -f "$log"
  # shellcheck disable=SC2086
  timeout -k 10 "$TIMEOUT" $VALGRIND --log-file="$log" \
    lua5.4 "$RUNNER" -o TAP > "$tap" 2>&1
  status=$?
  tap_counts "$tap"
  ok=1
  check_valgrind_log "$log" || ok=0
  [ "$status" -eq 124 ] && vg_summary="timed out after ${TIMEOUT} s; $vg_summary"
  if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then ok=0; fi
  echo "check-memory valgrind: $passed passed, $failed failed, $skipped skipped; $vg_summary; exit $status; $(since "$start")"
  if [ "$ok" -ne 1 ]; then
    show_tap_failures "$tap"
    show_valgrind_errors "$log"
    echo "check-memory valgrind: FAILED (log: $log, TAP: $tap)"
    return 1
  fi
}

# the ASan runtime of SAN_CC, to LD_PRELOAD into the uninstrumented lua5.4
asan_runtime() {
  if "$SAN_CC" --version 2>/dev/null | head -n 1 | grep -q clang; then
    name="libclang_rt.asan-$(uname -m).so"
  else
    name=libasan.so
  fi
  rt=$("$SAN_CC" -print-file-name="$name")
  case $rt in
    /*) [ -e "$rt" ] && readlink -f "$rt" && return 0 ;;
  esac
  echo "check-memory asan: no $name for $SAN_CC (Debian: gcc's libasan8, or libclang-rt-14-dev for clang)" >&2
  return 1
}

part_asan() {
  start=$(now)
  tap=$OUT/asan-suite.tap
  logs=$OUT/asan-reports
  rm -rf "$logs"
  mkdir -p "$logs"
  if [ ! -f "$ASAN_MODULE" ]; then
    echo "check-memory asan: $ASAN_MODULE is missing (make asan)"
    return 1
  fi
  rt=$(asan_runtime) || return 1
  # The specs reach stackone.core through require: a package.preload
  # entry, set before spec/helper.lua puts ./build/?.so first on the cpath,
  # makes every require load the instrumented build (it fails loudly if
  # that build cannot be loaded).
  preload="package.preload['stackone.core'] = assert(package.loadlib('$PWD/$ASAN_MODULE', 'luaopen_stackone_core'))"
  # Lua frees everything at lua_close (lua5.4 closes its state at exit,
  # busted exits with os.exit(code, true)), so LeakSanitizer needs no
  # suppressions: any leak it reports is real. Children (sh, the local
  # server) inherit the preload; the server is killed by a signal, which
  # skips leak checking, and reports from any process land in $logs.
  LD_PRELOAD=$rt \
  ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$PWD/$logs/asan" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$PWD/$logs/ubsan" \
    timeout -k 10 "$TIMEOUT" lua5.4 "$RUNNER" -o TAP -e "$preload" > "$tap" 2>&1
  status=$?
  tap_counts "$tap"
  reports=$(find "$logs" -type f | wc -l)
  ok=1
  if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$reports" -ne 0 ]; then ok=0; fi
  extra=""
  [ "$status" -eq 124 ] && extra=" (timed out after ${TIMEOUT} s)"
  echo "check-memory asan: $passed passed, $failed failed, $skipped skipped; $reports sanitizer reports; exit $status$extra; $SAN_CC, $(basename "$rt"); $(since "$start")"
  if [ "$ok" -ne 1 ]; then
    show_tap_failures "$tap"
    for f in $(find "$logs" -type f | sort); do
      echo "--- $f"
      head -n 80 "$f"
    done
    echo "check-memory asan: FAILED (reports: $logs, TAP: $tap)"
    return 1
  fi
}

part_embed() {
  start=$(now)
  log=$OUT/valgrind-embed.log
  out=$OUT/embed.out
  srv=$OUT/embed-server
  key=embed-check-key
  for f in "$EMBED_HOST" build/stackone/core.so; do
    if [ ! -f "$f" ]; then
      echo "check-memory embed: $f is missing (make embed all)"
      return 1
    fi
  done
  rm -f "$log" "$srv.out" "$srv.err"
  lua5.4 server/stackone_server.lua --api-key "$key" > "$srv.out" 2> "$srv.err" &
  server_pid=$!
  port=""
  i=0
  while [ -z "$port" ] && [ "$i" -lt 200 ]; do
    port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$srv.out")
    [ -n "$port" ] || sleep 0.05
    i=$((i + 1))
  done
  if [ -z "$port" ]; then
    kill "$server_pid" 2>/dev/null
    echo "check-memory embed: the local server did not start:"
    cat "$srv.err"
    return 1
  fi
  # shellcheck disable=SC2086
  STACKONE_BASE_URL="http://127.0.0.1:$port" STACKONE_API_KEY=$key \
    timeout -k 10 "$TIMEOUT" $VALGRIND --log-file="$log" \
    "$EMBED_HOST" "$PWD" > "$out" 2>&1
  status=$?
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  ok=1
  check_valgrind_log "$log" || ok=0
  [ "$status" -eq 124 ] && vg_summary="timed out after ${TIMEOUT} s; $vg_summary"
  requests=$(grep -c ' created ' "$out")
  if [ "$status" -ne 0 ] || ! grep -q '^host: ok$' "$out"; then ok=0; fi
  echo "check-memory embed: $requests contacts from 2 lua_States; $vg_summary; exit $status; $(since "$start")"
  if [ "$ok" -ne 1 ]; then
    cat "$out"
    show_valgrind_errors "$log"
    echo "check-memory embed: FAILED (log: $log, output: $out)"
    return 1
  fi
}

server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

[ "$#" -eq 0 ] && set -- valgrind asan embed
failures=""
for part in "$@"; do
  case $part in
    valgrind) part_valgrind || failures="$failures $part" ;;
    asan) part_asan || failures="$failures $part" ;;
    embed) part_embed || failures="$failures $part" ;;
    *) echo "usage: $0 [valgrind] [asan] [embed]" >&2; exit 2 ;;
  esac
done
if [ -n "$failures" ]; then
  echo "check-memory: FAILED:$failures"
  exit 1
fi
echo "check-memory: ok ($*)"
