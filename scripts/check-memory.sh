#!/bin/sh
# Memory checks of stackone.core; `make check-memory` builds what they need
# and runs all three:
#
#   valgrind  the whole busted suite under valgrind memcheck, once for each
#             Lua of MEMCHECK_LUAS (default: lua5.4, luajit and lua5.5),
#             each against that Lua's build (build/, build/luajit/...),
#             run on the interpreter's process itself (not busted --lua=,
#             which would re-exec); children (the local server, `sh`) are
#             not traced
#   asan      the whole suite, for each Lua of MEMCHECK_LUAS, against a
#             build of the module with -fsanitize=address,undefined for that
#             Lua (build/asan/ for 5.4, build/asan-<lua>/ for the others);
#             the interpreter is not instrumented, so the ASan runtime is
#             LD_PRELOADed; LeakSanitizer is on
#   embed     examples/embed/host (two lua_States, coroutines) and
#             examples/embed/poll_host (the engine in a C poll(2) loop)
#             under valgrind, each against a local server this script
#             starts (poll_host's with --latency 0.2)
#
# The suite runs get STACKONE_SLOW=1: specs that assert timing (the loop
# specs) then check their counts but not the clock.
#
# Under LuaJIT: Debian's luajit is built without its valgrind support, but
# needs none here. Its GC heap comes from its own allocator on mmap()ed
# pages, which memcheck sees as defined memory and never as leaks, so
# LuaJIT's own objects are not checked (under either tool) while every
# malloc of the module, libcurl and lua-cjson is; its JIT stays on (what
# users run), and --smc-check=all-non-file (amd64's default, made explicit)
# has valgrind notice the machine code the JIT writes and rewrites. No
# report comes from LuaJIT itself, so no suppression is needed for it.
#
# usage: sh scripts/check-memory.sh [valgrind] [asan] [embed]   (default: all)
#   valgrind-<lua> / asan-<lua> run that part for one Lua alone, e.g.
#   valgrind-luajit; MEMCHECK_LUAS="lua5.4" limits valgrind and asan to 5.4.
#   lua5.5 is the Lua 5.5 of build/lua5.5/ (make lua5.5), built with -g:
#   its frames are named, not folded, where it has debug information.
# Each part prints a summary line per Lua (embed: one per program) and the
# details of any error; logs are in build/memory/. Exits non-zero when any
# part found an error.
set -u
cd "$(dirname "$0")/.." || exit 2

OUT=build/memory
TIMEOUT=${MEMCHECK_TIMEOUT:-600}
SAN_CC=${SAN_CC:-cc}
MEMCHECK_LUAS=${MEMCHECK_LUAS:-lua5.4 luajit lua5.5}
SUPP=spec/support/valgrind.supp

# where a Lua's build of the module lives, as the Makefile builds it: its
# directory (for STACKONE_BUILD, see spec/helper.lua), and its ASan build
build_dir() { if [ "$1" = lua5.4 ]; then echo ./build; else echo "./build/$1"; fi; }
# the interpreter: lua5.5 is the one `make lua5.5` builds (scripts/lua55.sh)
interpreter() { if [ "$1" = lua5.5 ]; then echo ./build/lua5.5/bin/lua5.5; else echo "$1"; fi; }
asan_module() {
  if [ "$1" = lua5.4 ]; then echo build/asan/stackone/core.so
  else echo "build/asan-$1/stackone/core.so"; fi
}

mkdir -p "$OUT"

# busted's own runner, called the way /usr/bin/busted calls it, so that
# the interpreter valgrind watches is the one that runs the specs
RUNNER=$OUT/busted-runner.lua
echo "require('busted.runner')({ standalone = false })" > "$RUNNER"

# memcheck: definite and indirect leaks are errors; "possibly lost" is
# shown; still-reachable blocks are neither (today: the dynamic loader's,
# for libcurl and the libraries it pulls in, which stay loaded after
# lua_close, and libcurl's one-time init). No suppressions are needed; if
# one ever is, it goes in spec/support/valgrind.supp, for third-party
# one-time allocations only. --keep-debuginfo keeps stack traces into
# core.so readable after lua_close has dlclose()d it.
VALGRIND="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
  --show-leak-kinds=definite,indirect,possible
  --errors-for-leak-kinds=definite,indirect --track-origins=yes
  --num-callers=30 --keep-debuginfo=yes --trace-children=no
  --child-silent-after-fork=yes --smc-check=all-non-file"
if [ -f "$SUPP" ]; then
  VALGRIND="$VALGRIND --suppressions=$SUPP"
fi

# runs a command for at most $TIMEOUT seconds (exit status 124 then).
# timeout(1) gives it a process group of its own, ended whole on timeout;
# what is left of the group afterwards (the servers of a suite that
# aborted on a sanitizer report before its teardown) is ended here. It runs
# in the background so that the traps at the end can end it too.
bounded() {
  timeout -k 10 "$TIMEOUT" "$@" &
  bounded_pid=$!
  wait "$bounded_pid"
  bounded_status=$?
  kill -TERM "-$bounded_pid" 2>/dev/null
  bounded_pid=""
  return "$bounded_status"
}

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
  elif [ "$passed" -eq 0 ]; then
    tail -n 30 "$1"
  fi
}

# a report with each run of interpreter frames (lua5.4's or LuaJIT's, the
# executable or its shared library, named by valgrind "(in /usr/bin/luajit-
# 2.1.0-beta3)" or by ASan "(/usr/bin/lua5.4+0x...)") folded into one line;
# "???" frames in between are LuaJIT's machine code, folded with them
fold_interpreter_frames() {
  awk '/\(in \/usr\/bin\/lua5\.4\)|\(\/usr\/bin\/lua5\.4\+0x|liblua5\.4\.so/ {
         if (which != "lua5.4") print "      ... lua5.4 interpreter frames"; which = "lua5.4"; next }
       /\(in \/usr\/bin\/luajit[^)]*\)|\(\/usr\/bin\/luajit[^+]*\+0x|libluajit-5\.1\.so/ {
         if (which != "luajit") print "      ... luajit interpreter frames"; which = "luajit"; next }
       which == "luajit" && /: \?\?\?$|\(<unknown module>\)/ { next }
       /build\/lua5\.5\/bin\/lua5\.5[)+]/ {
         if (which != "lua5.5") print "      ... lua5.5 interpreter frames"; which = "lua5.5"; next }
       { which = ""; print }'
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
    fold_interpreter_frames | head -n 150
}

# part_valgrind LUA: the suite under valgrind, run by that interpreter
part_valgrind() {
  lua=$1
  start=$(now)
  log=$OUT/valgrind-suite-$lua.log
  tap=$OUT/valgrind-suite-$lua.tap
  rm -f "$log"
  if [ ! -f "$(build_dir "$lua")/stackone/core.so" ]; then
    echo "check-memory valgrind $lua: $(build_dir "$lua")/stackone/core.so is missing (make module-$lua)"
    return 1
  fi
  # shellcheck disable=SC2086
  bounded env STACKONE_SLOW=1 STACKONE_BUILD="$(build_dir "$lua")" $VALGRIND --log-file="$log" \
    "$(interpreter "$lua")" "$RUNNER" -o TAP > "$tap" 2>&1
  status=$?
  tap_counts "$tap"
  ok=1
  check_valgrind_log "$log" || ok=0
  [ "$status" -eq 124 ] && vg_summary="timed out after ${TIMEOUT} s; $vg_summary"
  if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then ok=0; fi
  echo "check-memory valgrind $lua: $passed passed, $failed failed, $skipped skipped; $vg_summary; exit $status; $(since "$start")"
  if [ "$ok" -ne 1 ]; then
    show_tap_failures "$tap"
    show_valgrind_errors "$log"
    echo "check-memory valgrind $lua: FAILED (log: $log, TAP: $tap)"
    return 1
  fi
}

# the ASan runtime of SAN_CC, to LD_PRELOAD into the uninstrumented Lua
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

# part_asan LUA: the suite, run by that interpreter, against its ASan build
part_asan() {
  lua=$1
  start=$(now)
  tap=$OUT/asan-suite-$lua.tap
  err=$OUT/asan-suite-$lua.stderr
  logs=$OUT/asan-reports-$lua
  asan_module=$(asan_module "$lua")
  rm -rf "$logs"
  mkdir -p "$logs"
  if [ ! -f "$asan_module" ]; then
    echo "check-memory asan $lua: $asan_module is missing (make asan LUA=$lua)"
    return 1
  fi
  rt=$(asan_runtime) || return 1
  # Run by busted (-e) before spec/helper.lua puts that Lua's build first
  # on the cpath:
  # - a package.preload entry makes every require of stackone.core load the
  #   instrumented build, and fails loudly if it cannot be loaded;
  # - commands the specs run (sh, the local server, Prism's node) start
  #   without the ASan runtime: only the test process is instrumented;
  # - the pid it writes tells the test process's reports from others'.
  setup=$OUT/asan-setup-$lua.lua
  pidfile=$OUT/asan-suite-$lua.pid
  rm -f "$pidfile"
  cat > "$setup" <<LUA
package.preload["stackone.core"] =
  assert(package.loadlib("$PWD/$asan_module", "luaopen_stackone_core"))
local unset = "unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS; "
local popen, execute = io.popen, os.execute
io.popen = function(cmd, ...) return popen(unset .. cmd, ...) end
os.execute = function(cmd, ...)
  if cmd == nil then return execute() end
  return execute(unset .. cmd, ...)
end
local stat = io.open("/proc/self/stat")
if stat then
  local f = assert(io.open("$pidfile", "w")) -- (5.1's write returns no file)
  f:write(stat:read("*n"))
  f:close()
  stat:close()
end
LUA
  # Lua frees everything at lua_close (lua5.4, luajit and lua5.5 close their state
  # at exit, busted exits with os.exit(code, true)), so LeakSanitizer needs
  # no suppressions: any leak it reports is real.
  bounded env STACKONE_SLOW=1 STACKONE_BUILD="$(build_dir "$lua")" LD_PRELOAD="$rt" \
    ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:log_path=$PWD/$logs/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$(interpreter "$lua")" "$RUNNER" -o TAP -e "dofile('$setup')" > "$tap" 2> "$err"
  status=$?
  tap_counts "$tap"
  # gcc's UBSan runtime ignores log_path: its reports are on stderr
  reports=$(( $(find "$logs" -type f | wc -l) + $(grep -c 'runtime error:' "$err") ))
  ok=1
  if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$reports" -ne 0 ]; then ok=0; fi
  extra=""
  [ "$status" -eq 124 ] && extra=" (timed out after ${TIMEOUT} s)"
  echo "check-memory asan $lua: $passed passed, $failed failed, $skipped skipped; $reports sanitizer reports; exit $status$extra; $SAN_CC, $(basename "$rt"); $(since "$start")"
  if [ "$ok" -ne 1 ]; then
    show_tap_failures "$tap"
    fold_interpreter_frames < "$err" | head -n 80
    test_pid=$(cat "$pidfile" 2>/dev/null)
    for f in $(find "$logs" -type f | sort); do
      case $f in
        *".$test_pid") echo "--- $f: the test process" ;;
        *) echo "--- $f: a shell the test process started" ;;
      esac
      fold_interpreter_frames < "$f" | head -n 80
    done
    echo "check-memory asan $lua: FAILED (reports: $logs, stderr: $err, TAP: $tap)"
    return 1
  fi
}

# starts the local server with the options given; sets server_pid and
# port, or prints why not and returns 1. Its output goes to $1.out/.err.
start_server() {
  srv=$1
  shift
  rm -f "$srv.out" "$srv.err"
  lua5.4 server/stackone_server.lua "$@" > "$srv.out" 2> "$srv.err" &
  server_pid=$!
  port=""
  i=0
  while [ -z "$port" ] && [ "$i" -lt 200 ]; do
    port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$srv.out")
    [ -n "$port" ] || sleep 0.05
    i=$((i + 1))
  done
  if [ -z "$port" ]; then
    stop_server
    echo "check-memory embed: the local server did not start:"
    cat "$srv.err"
    return 1
  fi
}

stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  server_pid=""
}

# embed_run NAME DESCRIBE [server options]: runs build/embed/NAME under
# valgrind against a server of its own; it must print "NAME: ok..." and
# exit 0, valgrind must find no error and no definite or indirect leak.
# DESCRIBE is a function that prints what the run did, from its output.
embed_run() {
  name=$1
  describe=$2
  shift 2
  start=$(now)
  bin=build/embed/$name
  log=$OUT/valgrind-embed-$name.log
  out=$OUT/embed-$name.out
  key=embed-check-key
  rm -f "$log"
  start_server "$OUT/embed-$name-server" --api-key "$key" "$@" || return 1
  # shellcheck disable=SC2086
  bounded env STACKONE_BASE_URL="http://127.0.0.1:$port" STACKONE_API_KEY=$key \
    $VALGRIND --log-file="$log" "$bin" "$PWD" > "$out" 2>&1
  status=$?
  stop_server
  ok=1
  check_valgrind_log "$log" || ok=0
  [ "$status" -eq 124 ] && vg_summary="timed out after ${TIMEOUT} s; $vg_summary"
  if [ "$status" -ne 0 ] || ! grep -q "^$name: ok" "$out"; then ok=0; fi
  echo "check-memory embed: $name: $($describe "$out"); $vg_summary; exit $status; $(since "$start")"
  if [ "$ok" -ne 1 ]; then
    grep -q "^$name: ok" "$out" || cat "$out"
    show_valgrind_errors "$log"
    echo "check-memory embed: $name FAILED (log: $log, output: $out)"
    return 1
  fi
}

describe_host() {
  echo "$(grep -c ' created ' "$1") contacts from 2 lua_States"
}

# "38 contacts, up to 9 calls in flight, 142 frames (120 idle), ..." from
# poll_host's summary line
describe_poll_host() {
  sed -n 's/^poll_host: ok: \([0-9]*\) contacts.* up to \([0-9]*\) calls in flight; \([0-9]*\) frames, .*(\([0-9]*\) idle); close() ended a suspended call with kind \([a-z]*\).*/\1 contacts, up to \2 calls in flight, \3 frames of its poll loop (\4 idle), a call cut by close() ended with kind \5/p' "$1" |
    grep . || echo "no summary"
}

part_embed() {
  for f in build/embed/host build/embed/poll_host build/stackone/core.so; do
    if [ ! -f "$f" ]; then
      echo "check-memory embed: $f is missing (make embed all)"
      return 1
    fi
  done
  embed_ok=0
  embed_run host describe_host || embed_ok=1
  # latency: every request is out for 0.2 s, so poll_host's loop turns
  # many frames while its calls are suspended
  embed_run poll_host describe_poll_host --latency 0.2 || embed_ok=1
  return "$embed_ok"
}

server_pid=""
bounded_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null' EXIT
trap '[ -n "$bounded_pid" ] && kill -TERM "-$bounded_pid" 2>/dev/null; exit 130' INT TERM

[ "$#" -eq 0 ] && set -- valgrind asan embed
failures=""
for part in "$@"; do
  case $part in
    valgrind | asan)
      for lua in $MEMCHECK_LUAS; do
        "part_$part" "$lua" || failures="$failures $part-$lua"
      done ;;
    valgrind-?* | asan-?*)
      lua=${part#*-}
      "part_${part%%-*}" "$lua" || failures="$failures $part" ;;
    embed) part_embed || failures="$failures $part" ;;
    *) echo "usage: $0 [valgrind] [asan] [embed] [valgrind-<lua>] [asan-<lua>]" >&2; exit 2 ;;
  esac
done
if [ -n "$failures" ]; then
  echo "check-memory: FAILED:$failures"
  exit 1
fi
echo "check-memory: ok ($*)"
